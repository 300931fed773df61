import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { fromJSON, loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import type { ProtoGrpcType } from './gen/csi.js';

// The wire definition is loaded at run time from proto/ (the same file the types are generated from),
// with the options the type generator was given, so the generated types describe what handlers receive.
// `npm run gen` also writes it as a JSON descriptor (proto/gen/), which loads in about half the time of
// parsing the .proto text; without one (a checkout never built) the .proto is parsed.
export const PROTO_PATH = fileURLToPath(new URL('../../proto/csi/v1/csi.proto', import.meta.url));
export const PROTO_JSON_PATH = fileURLToPath(new URL('../../proto/gen/csi.v1.json', import.meta.url));

export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The package definition from the JSON descriptor built from protoPath, or from protoPath itself when there is none. */
export function loadProtoDefinition(protoPath: string, jsonPath: string): PackageDefinition {
  let json: string;
  try {
    json = readFileSync(jsonPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return loadSync(protoPath, LOADER_OPTIONS);
  }
  return fromJSON(JSON.parse(json) as Parameters<typeof fromJSON>[0], LOADER_OPTIONS);
}

let cached: ProtoGrpcType | undefined;

export function csiProto(): ProtoGrpcType {
  cached ??= loadPackageDefinition(loadProtoDefinition(PROTO_PATH, PROTO_JSON_PATH)) as unknown as ProtoGrpcType;
  return cached;
}
