// Data mobility with glusterfs (a real glusterd and the FUSE client; the machine's one glusterd, so this
// file is kept short): a loop backup restored onto glusterfs, migrations loop -> glusterfs and back, and a
// live glusterfs source (no snapshots) that is mounted elsewhere refused with where it is.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { csiClients } from '../helpers/client.js';
import { startGlusterd, type Glusterd } from '../helpers/gluster.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { lastJson, rexcsi, treeOf, treeVolume, volumeIds, withVolume, type Side } from './world.js';

let glusterd: Glusterd;
let gluster: PluginProcess;
let loop: PluginProcess;
let gSide: Side;
let lSide: Side;
let dir: string;

beforeAll(async () => {
  glusterd = await startGlusterd();
  await glusterd.createHostingVolume('mobhost');
  dir = await makeTempDir('mobility-gluster');
  await mkdir(join(dir, 'bricks'));
  gluster = await startPlugin({
    backend: 'glusterfs',
    name: 'mob-gluster',
    args: [
      '--gluster-server',
      glusterd.host,
      '--hosting-volume',
      'mobhost',
      '--brick-root',
      join(dir, 'bricks'),
      '--glusterd-socket',
      glusterd.socket,
      '--gluster-work-dir',
      join(dir, 'gwork'),
    ],
    readyTimeoutMs: 60_000,
  });
  loop = await startPlugin({ name: 'mob-gl-loop' });
  gSide = { csi: csiClients(gluster.endpoint), endpoint: gluster.endpoint };
  lSide = { csi: csiClients(loop.endpoint), endpoint: loop.endpoint };
}, 180_000);

afterAll(async () => {
  gSide?.csi.close();
  lSide?.csi.close();
  await gluster?.stop();
  await loop?.stop();
  await glusterd?.stop();
  if (dir) await removeTempDir(dir);
});

it('restores a loop backup onto glusterfs, and migrates loop -> glusterfs -> loop; trees identical, sources unchanged', async () => {
  const work = join(dir, 'work');
  const repo = join(dir, 'repo');
  const src = await treeVolume(lSide, 'gl-src', dir);
  const b = lastJson<{ backupId: string }>(
    await rexcsi(['volume', 'backup', src.id, '--endpoint', loop.endpoint, '--repo', repo, '--work-dir', work, '--json']),
  );
  const r = lastJson<{ volumeId: string }>(
    await rexcsi([
      'volume',
      'restore',
      b.backupId,
      '--repo',
      repo,
      '--endpoint',
      gluster.endpoint,
      '--name',
      'gl-restored',
      '--work-dir',
      work,
      '--json',
    ]),
  );
  expect(await treeOf(gSide, r.volumeId, dir)).toEqual(src.tree);

  const toGluster = lastJson<{ destinationId: string; how: string }>(
    await rexcsi([
      'volume',
      'migrate',
      src.id,
      '--from',
      loop.endpoint,
      '--to',
      gluster.endpoint,
      '--name',
      'gl-migrated',
      '--work-dir',
      work,
      '--json',
    ]),
  );
  expect(toGluster.how).toBe('snapshot');
  expect(await treeOf(gSide, toGluster.destinationId, dir)).toEqual(src.tree);

  const back = lastJson<{ destinationId: string; how: string }>(
    await rexcsi([
      'volume',
      'migrate',
      toGluster.destinationId,
      '--from',
      gluster.endpoint,
      '--to',
      loop.endpoint,
      '--name',
      'back-on-loop',
      '--work-dir',
      work,
      '--json',
    ]),
  );
  expect(back.how).toBe('live');
  expect(await treeOf(lSide, back.destinationId, dir)).toEqual(src.tree);
  expect(await treeOf(gSide, toGluster.destinationId, dir)).toEqual(src.tree);
  expect(await treeOf(lSide, src.id, dir)).toEqual(src.tree);
  for (const id of [r.volumeId, toGluster.destinationId]) await gSide.csi.controller.DeleteVolume({ volume_id: id });
  for (const id of [src.id, back.destinationId]) await lSide.csi.controller.DeleteVolume({ volume_id: id });
});

it('refuses a live glusterfs source mounted elsewhere on this node, naming where; nothing is left', async () => {
  const work = join(dir, 'work');
  const src = await treeVolume(gSide, 'gl-busy', dir, 64 * 1024 * 1024);
  const before = { g: await volumeIds(gSide), l: await volumeIds(lSide) };
  await withVolume(gSide, src.id, dir, false, async (mountedAt) => {
    const r = await rexcsi(['volume', 'migrate', src.id, '--from', gluster.endpoint, '--to', loop.endpoint, '--work-dir', work]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('FAILED_PRECONDITION');
    expect(r.stderr).toContain(`mounted at ${mountedAt}`);
  });
  expect({ g: await volumeIds(gSide), l: await volumeIds(lSide) }).toEqual(before);
  const backup = lastJson<{ pointInTime: boolean }>(
    await rexcsi(['volume', 'backup', src.id, '--endpoint', gluster.endpoint, '--repo', join(dir, 'repo'), '--work-dir', work, '--json']),
  );
  expect(backup.pointInTime).toBe(false);
  await gSide.csi.controller.DeleteVolume({ volume_id: src.id });
});
