// The JSON descriptors `npm run gen` writes (proto/gen/) must describe exactly what parsing the .proto
// files gives: same services, methods, message and enum descriptors, and the same bytes on the wire.
import { existsSync } from 'node:fs';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { LOADER_OPTIONS, PROTO_JSON_PATH, PROTO_PATH, loadProtoDefinition } from '../../src/csi/proto.js';
import { PROTO_V0_JSON_PATH, PROTO_V0_PATH } from '../../src/v0/proto.js';

/** Everything of a package definition but its functions and per-file descriptor bytes, for comparison. */
function shape(def: PackageDefinition): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(def)) {
    if ('format' in value) {
      out[name] = { format: value.format, type: value.type };
    } else {
      out[name] = Object.fromEntries(
        Object.entries(value).map(([method, m]) => [
          method,
          {
            path: m.path,
            requestStream: m.requestStream,
            responseStream: m.responseStream,
            originalName: m.originalName,
            request: m.requestType.type,
            response: m.responseType.type,
          },
        ]),
      );
    }
  }
  return out;
}

describe.each([
  ['csi.v1', PROTO_PATH, PROTO_JSON_PATH, 'csi.v1.NodePublishVolumeRequest'],
  ['csi.v0', PROTO_V0_PATH, PROTO_V0_JSON_PATH, 'csi.v0.NodePublishVolumeRequest'],
])('%s JSON descriptor', (_name, protoPath, jsonPath, requestType) => {
  it('is built by npm run gen', () => {
    expect(existsSync(jsonPath), `${jsonPath} missing: run npm run build`).toBe(true);
  });

  it('gives the same definitions as parsing the .proto', () => {
    const fromProto = loadSync(protoPath, LOADER_OPTIONS);
    const fromJson = loadProtoDefinition(protoPath, jsonPath);
    expect(Object.keys(fromJson).sort()).toEqual(Object.keys(fromProto).sort());
    expect(shape(fromJson)).toEqual(shape(fromProto));
  });

  it('encodes and decodes a request the same way', () => {
    const fromProto = loadSync(protoPath, LOADER_OPTIONS);
    const fromJson = loadProtoDefinition(protoPath, jsonPath);
    const service = Object.values(fromProto).find((v) => !('format' in v) && 'NodePublishVolume' in v);
    const jsonService = Object.values(fromJson).find((v) => !('format' in v) && 'NodePublishVolume' in v);
    if (!service || 'format' in service || !jsonService || 'format' in jsonService) throw new Error('no Node service');
    const a = service['NodePublishVolume'];
    const b = jsonService['NodePublishVolume'];
    expect(a?.path).toMatch(/NodePublishVolume$/);
    const request = { volume_id: 'vol-1', target_path: '/t', readonly: true, secrets: { k: 'v' }, volume_context: { a: 'b' } };
    const bytes = a!.requestSerialize(request);
    expect(b!.requestSerialize(request)).toEqual(bytes);
    expect(b!.requestDeserialize(bytes)).toEqual(a!.requestDeserialize(bytes));
    expect(requestType).toContain('NodePublishVolumeRequest');
  });

  it('falls back to the .proto when there is no JSON descriptor', () => {
    const def = loadProtoDefinition(protoPath, `${jsonPath}.absent`);
    expect(Object.keys(def)).toContain(requestType);
  });
});
