import { fileURLToPath } from 'node:url';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import type { ProtoGrpcType } from './gen/csi.js';

// The wire definition is loaded at run time from proto/ (the same file the types are generated from),
// with the options the type generator was given, so the generated types describe what handlers receive.
export const PROTO_PATH = fileURLToPath(new URL('../../proto/csi/v1/csi.proto', import.meta.url));

export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: ProtoGrpcType | undefined;

export function csiProto(): ProtoGrpcType {
  cached ??= loadPackageDefinition(loadSync(PROTO_PATH, LOADER_OPTIONS)) as unknown as ProtoGrpcType;
  return cached;
}
