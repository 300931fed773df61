import { fileURLToPath } from 'node:url';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadProtoDefinition } from '../csi/proto.js';
import type { ProtoGrpcType } from './gen/csi.js';

// The csi.v0 wire definition (spec v0.2/v0.3), loaded with the same options as csi.v1 so the generated
// types in src/v0/gen describe what the translators receive.
export const PROTO_V0_PATH = fileURLToPath(new URL('../../proto/csi/v0/csi.proto', import.meta.url));
export const PROTO_V0_JSON_PATH = fileURLToPath(new URL('../../proto/gen/csi.v0.json', import.meta.url));

let cached: ProtoGrpcType | undefined;

export function csiProtoV0(): ProtoGrpcType {
  cached ??= loadPackageDefinition(loadProtoDefinition(PROTO_V0_PATH, PROTO_V0_JSON_PATH)) as unknown as ProtoGrpcType;
  return cached;
}
