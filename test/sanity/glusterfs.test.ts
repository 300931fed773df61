// csi-sanity v5.4.0 against the glusterfs backend on a real glusterd (test/helpers/gluster.ts), mount access
// type (the backend refuses block), once per layout: `subdir` (the default) and `volume` (passed with
// -csi.testvolumeparameters). Runner and reports: test/helpers/sanity.ts.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { startGlusterd, type Glusterd } from '../helpers/gluster.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { expectSanityPassed, killSanity, runCsiSanity, SANITY_TIMEOUT_MS } from '../helpers/sanity.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const HOSTING = 'sanity-hosting';

let glusterd: Glusterd | undefined;
let dir: string | undefined;
let plugin: PluginProcess | undefined;

beforeAll(async () => {
  glusterd = await startGlusterd();
  await glusterd.createHostingVolume(HOSTING);
  dir = await makeTempDir('glusterfs-sanity');
}, 120_000);

afterEach(async () => {
  killSanity();
  await plugin?.cleanup();
  plugin = undefined;
});

afterAll(async () => {
  try {
    await glusterd?.stop();
  } finally {
    if (dir) await removeTempDir(dir);
  }
}, 120_000);

describe('csi-sanity v5.4.0 (glusterfs backend, mount access)', () => {
  for (const layout of ['subdir', 'volume'] as const) {
    it(
      `passes with layout ${layout}`,
      async () => {
        const g = glusterd!;
        const bricks = join(dir!, `bricks-${layout}`);
        await mkdir(bricks);
        const params = join(dir!, `params-${layout}.yaml`);
        await writeFile(params, `layout: ${layout}\n`);
        plugin = await startPlugin({
          backend: 'glusterfs',
          name: `sanity-glusterfs-${layout}`,
          args: [
            '--gluster-server',
            g.host,
            '--hosting-volume',
            HOSTING,
            '--brick-root',
            bricks,
            '--glusterd-socket',
            g.socket,
            '--gluster-work-dir',
            join(dir!, `work-${layout}`),
          ],
          readyTimeoutMs: 60_000,
        });
        const label = `glusterfs-${layout}`;
        const result = await runCsiSanity({
          label,
          plugin,
          args: [
            '-csi.testvolumeaccesstype',
            'mount',
            '-csi.testvolumesize',
            String(64 * 1024 * 1024),
            '-csi.testvolumeexpandsize',
            String(128 * 1024 * 1024),
            '-csi.testvolumeparameters',
            params,
          ],
        });
        expectSanityPassed(label, result);
      },
      SANITY_TIMEOUT_MS + 2 * 60_000,
    );
  }
});
