// csi-sanity v5.4.0 against the glusterfs backend on the three-server pool (test/helpers/gluster-pool.ts),
// volume layout with its default replica 3 (one brick on each server), mount access. The plugin (controller
// and node) runs inside the first server's mount namespace, where that server's glusterd state is.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGlusterPool, type GlusterPool } from '../helpers/gluster-pool.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { expectSanityPassed, killSanity, runCsiSanity, SANITY_TIMEOUT_MS } from '../helpers/sanity.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let pool: GlusterPool | undefined;
let dir: string | undefined;
let plugin: PluginProcess | undefined;

beforeAll(async () => {
  pool = await startGlusterPool();
  dir = await makeTempDir('gl-pool-sanity');
}, 120_000);

afterAll(async () => {
  killSanity();
  await plugin?.cleanup();
  try {
    await pool?.stop();
  } finally {
    if (dir) await removeTempDir(dir);
  }
}, 120_000);

describe('csi-sanity v5.4.0 (glusterfs backend on a three-server pool, layout volume, replica 3)', () => {
  it(
    'passes',
    async () => {
      const p = pool!;
      const params = join(dir!, 'params.yaml');
      await writeFile(params, 'layout: volume\n');
      plugin = await startPlugin({
        backend: 'glusterfs',
        name: 'sanity-gl-pool',
        wrap: p.servers[0]!.ns.prefix(),
        args: [
          ...p.hosts.flatMap((h) => ['--gluster-server', h]),
          ...p.servers.flatMap((s) => ['--brick-root', `${s.host}:${s.brickRoot}`]),
          '--glusterd-socket',
          p.servers[0]!.socket,
          '--gluster-work-dir',
          join(dir!, 'work'),
        ],
        readyTimeoutMs: 60_000,
      });
      const result = await runCsiSanity({
        label: 'glusterfs-pool-volume',
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
      expectSanityPassed('glusterfs-pool-volume', result);
      // every volume csi-sanity made had its three bricks on three servers, and is gone
      expect((await p.cli(['volume', 'list'])).trim()).toMatch(/^No volumes present in cluster$/);
    },
    SANITY_TIMEOUT_MS + 2 * 60_000,
  );
});
