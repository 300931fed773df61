// `npm run gen` (part of `npm run build`): writes the CSI v1 and v0 protos as protobufjs JSON descriptors to
// proto/gen/, so the plugin loads them with proto-loader's fromJSON at start instead of parsing the .proto
// text each time. Parsed here with the loader and the options the plugin uses; the generated TypeScript types
// come from the same .proto files in the same `gen` step.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import '@grpc/proto-loader'; // registers the google/protobuf common protos the CSI protos import
import { loadProtosWithOptionsSync } from '@grpc/proto-loader/build/src/util.js';
import { LOADER_OPTIONS, PROTO_JSON_PATH, PROTO_PATH } from '../src/csi/proto.js';
import { PROTO_V0_JSON_PATH, PROTO_V0_PATH } from '../src/v0/proto.js';

for (const [proto, json] of [
  [PROTO_PATH, PROTO_JSON_PATH],
  [PROTO_V0_PATH, PROTO_V0_JSON_PATH],
] as const) {
  const root = loadProtosWithOptionsSync(proto, LOADER_OPTIONS);
  mkdirSync(dirname(json), { recursive: true });
  const tmp = `${json}.tmp`;
  writeFileSync(tmp, JSON.stringify(root.toJSON({ keepComments: false })));
  renameSync(tmp, json);
}
