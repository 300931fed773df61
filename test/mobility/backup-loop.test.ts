// `rexcsi volume backup/backups/restore` with real restic against a local repository and against moto's S3
// (moto_server over HTTP, path-style), on real loop volumes: the restored tree matches byte for byte and
// metadata for metadata (hard links, xattrs, sparse file, modes, owners), a block volume by checksum.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients } from '../helpers/client.js';
import { startMoto, type MotoServer } from '../helpers/moto.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { SPARSE_SIZE, allocatedBytes } from './tree.js';
import {
  MiB,
  PASSWORD,
  blockSumOf,
  dataBlockVolume,
  lastJson,
  rexcsi,
  snapshotIds,
  treeOf,
  treeVolume,
  volumeIds,
  withVolume,
  type Side,
} from './world.js';

let plugin: PluginProcess;
let side: Side;
let moto: MotoServer;
let dir: string;

beforeAll(async () => {
  plugin = await startPlugin({ name: 'mob-loop' });
  side = { csi: csiClients(plugin.endpoint), endpoint: plugin.endpoint };
  moto = await startMoto();
  dir = await makeTempDir('mobility');
});

afterAll(async () => {
  side?.csi.close();
  await moto?.stop();
  if (dir) await removeTempDir(dir);
});

/** mtime (ns) of every entry under root but lost+found and the root itself, directories and symlinks included. */
async function mtimesOf(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      if (rel === '' && name === 'lost+found') continue;
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(root, r), { bigint: true });
      out[r] = st.mtimeNs.toString();
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

const s3Env = (): Record<string, string> => ({
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing-secret',
  AWS_DEFAULT_REGION: 'us-east-1',
});

describe.each([
  ['a local repository', () => ({ repo: join(dir, 'repo-local'), env: {} })],
  ['moto S3', () => ({ repo: `s3:${moto.endpoint}/rexcsi-backups/loop`, env: s3Env() })],
])('backup and restore through %s', (_label, where) => {
  it('a mount volume with hard links, xattrs, a sparse file, odd modes and owners comes back identical on loop', async () => {
    const { repo, env } = where();
    const work = join(dir, 'work');
    const before = { volumes: await volumeIds(side), snapshots: await snapshotIds(side) };
    const { id, tree } = await treeVolume(side, `tree-${repo.length}`, dir);

    const b = lastJson<{ backupId: string; pointInTime: boolean }>(
      await rexcsi(['volume', 'backup', id, '--endpoint', plugin.endpoint, '--repo', repo, '--work-dir', work, '--json'], env),
    );
    expect(b.pointInTime).toBe(true);
    const list = lastJson<{ shortId: string; volumeId: string; backend: string; accessType: string; fsType: string; sizeBytes: number }[]>(
      await rexcsi(['volume', 'backups', '--repo', repo, '--volume', id, '--json'], env),
    );
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ volumeId: id, backend: 'loop', accessType: 'mount', fsType: 'ext4', sizeBytes: 128 * MiB });
    // the snapshot and the temporary volume are gone again; nothing left in the work dir
    expect(await snapshotIds(side)).toEqual(before.snapshots);
    expect(await volumeIds(side)).toEqual([...before.volumes, id].sort());
    expect(await readdir(work)).toEqual([]);

    const restored = lastJson<{ volumeId: string }>(
      await rexcsi(
        [
          'volume',
          'restore',
          list[0]!.shortId,
          '--repo',
          repo,
          '--endpoint',
          plugin.endpoint,
          '--name',
          `back-${repo.length}`,
          '--work-dir',
          work,
          '--json',
        ],
        env,
      ),
    );
    expect(await treeOf(side, restored.volumeId, dir)).toEqual(tree);
    const sparse = await withVolume(side, restored.volumeId, dir, false, (p) => allocatedBytes(join(p, 'sparse.img')));
    expect(sparse).toBeLessThan(SPARSE_SIZE / 8);
    expect(await withVolume(side, restored.volumeId, dir, false, (p) => mtimesOf(p))).toEqual(
      await withVolume(side, id, dir, false, (p) => mtimesOf(p)),
    );
    expect(await treeOf(side, id, dir)).toEqual(tree); // the source, untouched
    for (const v of [id, restored.volumeId]) await side.csi.controller.DeleteVolume({ volume_id: v });
  });

  it('a block volume round-trips by checksum', async () => {
    const { repo, env } = where();
    const work = join(dir, 'work');
    const { id, sha256 } = await dataBlockVolume(side, `blk-${repo.length}`, dir);
    const b = lastJson<{ backupId: string }>(
      await rexcsi(['volume', 'backup', id, '--endpoint', plugin.endpoint, '--repo', repo, '--work-dir', work, '--json'], env),
    );
    const r = lastJson<{ volumeId: string }>(
      await rexcsi(
        [
          'volume',
          'restore',
          b.backupId,
          '--repo',
          repo,
          '--endpoint',
          plugin.endpoint,
          '--name',
          `blk-back-${repo.length}`,
          '--work-dir',
          work,
          '--json',
        ],
        env,
      ),
    );
    expect(await blockSumOf(side, r.volumeId, dir, 64 * MiB)).toBe(sha256);
    expect(await blockSumOf(side, id, dir, 64 * MiB)).toBe(sha256);
    for (const v of [id, r.volumeId]) await side.csi.controller.DeleteVolume({ volume_id: v });
  });
});

it('a mount volume migrated loop -> loop on real ext4 keeps its sparse file sparse and every mtime, directories included', async () => {
  const work = join(dir, 'work');
  const { id, tree } = await treeVolume(side, 'sparse-src', dir);
  const srcAlloc = await withVolume(side, id, dir, false, (p) => allocatedBytes(join(p, 'sparse.img')));
  const srcTimes = await withVolume(side, id, dir, false, (p) => mtimesOf(p));
  const m = lastJson<{ destinationId: string }>(
    await rexcsi([
      'volume',
      'migrate',
      id,
      '--from',
      plugin.endpoint,
      '--to',
      plugin.endpoint,
      '--name',
      'sparse-dst',
      '--work-dir',
      work,
      '--json',
    ]),
  );
  expect(await treeOf(side, m.destinationId, dir)).toEqual(tree);
  const dstAlloc = await withVolume(side, m.destinationId, dir, false, (p) => allocatedBytes(join(p, 'sparse.img')));
  // ext4 may round an island of data up to its block or extent size differently; the holes stay holes
  expect(dstAlloc).toBeLessThan(SPARSE_SIZE / 8);
  expect(dstAlloc).toBeLessThanOrEqual(srcAlloc + 1 * MiB);
  expect(await withVolume(side, m.destinationId, dir, false, (p) => mtimesOf(p))).toEqual(srcTimes);
  expect(await treeOf(side, id, dir)).toEqual(tree); // the source, untouched
  for (const v of [id, m.destinationId]) await side.csi.controller.DeleteVolume({ volume_id: v });
});

it('never shows the repository password', async () => {
  const repo = join(dir, 'repo-local');
  const r = await rexcsi(['volume', 'backups', '--repo', repo], {});
  expect(r.code).toBe(0);
  expect(r.stdout + r.stderr).not.toContain(PASSWORD);
});
