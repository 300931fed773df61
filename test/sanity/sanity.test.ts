// csi-sanity (kubernetes-csi/csi-test v5.4.0, built into .bin/ by scripts/install-deps.sh) against each backend
// in TARGETS (loop; ebs on moto_server with the attach simulator), once with mount volumes and once with block.
// Passes when no spec fails and some pass. The skipped specs are printed with their reasons: each should be for
// a capability the plugin does not advertise; where a backend offers the data services (snapshots, clones,
// expansion, group snapshots), their specs must run and pass. Reports: test-results/csi-sanity-<tag>.xml
// (JUnit), .log (csi-sanity output), plugin-sanity-<tag>.log (the plugin's own log). Runner: helpers/sanity.ts.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'vitest';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { startEbsWorld, GiB, type EbsWorld } from '../helpers/ebs.js';
import {
  DATA_SERVICE_SPECS,
  expectGroupsPassed,
  expectSanityPassed,
  killSanity,
  runCsiSanity,
  SANITY_TIMEOUT_MS,
} from '../helpers/sanity.js';

const MiB = 1024 * 1024;

let plugin: PluginProcess | undefined;
let world: EbsWorld | undefined;

afterEach(async () => {
  killSanity();
  await plugin?.cleanup();
  plugin = undefined;
  await world?.stop();
  world = undefined;
});

/** A backend under test: how to start its plugin, and the sizes and parameters csi-sanity should use. */
interface SanityTarget {
  backend: string;
  volumeSize: number;
  expandSize: number;
  /** csi-sanity's -csi.testvolumemutableparameters (a YAML map), if the backend can modify volumes */
  mutableParameters?: Record<string, string>;
  /** spec groups that must run and pass, not be skipped */
  requiredGroups: (keyof typeof DATA_SERVICE_SPECS)[];
  start(name: string): Promise<PluginProcess>;
}

const TARGETS: SanityTarget[] = [
  {
    backend: 'loop',
    volumeSize: 64 * MiB,
    expandSize: 128 * MiB,
    requiredGroups: ['snapshots', 'clones', 'expansion', 'group snapshots'],
    start: (name) => startPlugin({ name }),
  },
  {
    // moto_server for the EC2 API, and the attach simulator (test/helpers/ebs-sim.ts, the simulated part:
    // loop devices with NVMe by-id links and serials stand in for the hypervisor's attach). EBS sizes are
    // whole GiB; the simulator's backing files are sparse.
    backend: 'ebs',
    volumeSize: GiB,
    expandSize: 2 * GiB,
    mutableParameters: { throughput: '200' },
    requiredGroups: [],
    async start(name) {
      world = await startEbsWorld(name);
      return world.startPlugin({ name });
    },
  },
];

for (const target of TARGETS) {
  describe(`csi-sanity v5.4.0 (${target.backend} backend)`, () => {
    for (const accessType of ['mount', 'block'] as const) {
      it(
        `passes with access type ${accessType}`,
        async () => {
          const tag = target.backend === 'loop' ? accessType : `${target.backend}-${accessType}`;
          plugin = await target.start(`sanity-${tag}`);
          const mutableFile = join(plugin.dir, 'mutable-parameters.yaml');
          if (target.mutableParameters) {
            await writeFile(
              mutableFile,
              Object.entries(target.mutableParameters)
                .map(([k, v]) => `${k}: "${v}"\n`)
                .join(''),
            );
          }
          const result = await runCsiSanity({
            label: tag,
            plugin,
            args: [
              '-csi.testvolumeaccesstype',
              accessType,
              '-csi.testvolumesize',
              String(target.volumeSize),
              '-csi.testvolumeexpandsize',
              String(target.expandSize),
              ...(target.mutableParameters ? ['-csi.testvolumemutableparameters', mutableFile] : []),
            ],
          });
          expectSanityPassed(tag, result);
          const required = Object.fromEntries(target.requiredGroups.map((g) => [g, DATA_SERVICE_SPECS[g]!]));
          expectGroupsPassed(tag, result.summary, required);
        },
        SANITY_TIMEOUT_MS + 2 * 60_000,
      );
    }
  });
}
