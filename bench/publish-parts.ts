// `npx tsx bench/publish-parts.ts`: what NodePublishVolume's own work costs, part by part, without gRPC:
// each step it takes for one staged loop volume, run 300 times alone (p50, us), then the whole
// NodeService.publish + unpublish pair with each mounter. Needs root; everything lives under REXCSI_TEST_ROOT.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LoopBackend } from '../src/backends/loop/loop.js';
import { Pool } from '../src/backends/loop/pool.js';
import { Inflight } from '../src/csi/inflight.js';
import { NodeService } from '../src/node/node.js';
import { createTarget, removeTarget, requireLiteralPath } from '../src/node/paths.js';
import { chooseMounter, execMounter, loopDevicesOf, readMountInfo, type Mounter } from '../src/os/index.js';
import { makeTempDir } from '../test/helpers/tmp.js';
import { fmt } from './report.js';
import { nowMs, percentile } from './stats.js';

const N = 300;
const CAP = { access_type: 'mount', mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } };

async function p50us(fn: () => Promise<unknown>, n = N): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = nowMs();
    await fn();
    xs.push((nowMs() - t) * 1000);
  }
  return percentile(xs, 50);
}

const dir = await makeTempDir('publish-parts');
const backend = new LoopBackend({ poolDir: join(dir, 'pool'), nodeId: 'parts', maxVolumesPerNode: 0 });
await backend.init();
const syscall = chooseMounter('syscall').mounter;
const staging = join(dir, 'staging');
const target = join(dir, 'target');
await mkdir(staging);
const volume = await backend.createVolume({
  name: 'parts',
  capacityBytes: 64 * 2 ** 20,
  limitBytes: 0,
  capabilities: [{ accessType: 'mount', accessMode: 'SINGLE_NODE_WRITER', fsType: 'ext4', mountFlags: [] }],
  accessType: 'mount',
  fsType: 'ext4',
  parameters: {},
  secrets: {},
});
const node = (m: Mounter): NodeService => new NodeService(backend, new Inflight(), m);
const id = volume.id;
const image = new Pool(join(dir, 'pool')).imagePath(id);
try {
  await node(syscall).stage({ volume_id: id, staging_target_path: staging, volume_capability: CAP } as never);
  const rows: [string, number][] = [
    ['backend.volumeExists (metadata read)', await p50us(() => backend.volumeExists(id))],
    ['loopDevicesOf (scan of every loop device in sysfs)', await p50us(() => loopDevicesOf(image))],
    ['backend.locateVolume (remembered device checked + metadata)', await p50us(() => backend.locateVolume(id))],
    ['readMountInfo (one read of the table, parsed)', await p50us(() => readMountInfo())],
    ['requireLiteralPath (realpath + lstat)', await p50us(() => requireLiteralPath(target, 'target_path'))],
    [
      'createTarget + removeTarget (lstat x2, mkdir, lstat, rmdir)',
      await p50us(async () => {
        await createTarget(target, 'directory');
        await removeTarget(target);
      }),
    ],
  ];
  for (const [name, m] of [
    ['syscall', syscall],
    ['mount(8)', execMounter],
  ] as const) {
    await mkdir(target, { recursive: true });
    rows.push([
      `mounter.bindMount + unmount (${name})`,
      await p50us(
        async () => {
          await m.bindMount(staging, target, { readOnly: false });
          await m.unmount(target, []);
        },
        name === 'syscall' ? N : 50,
      ),
    ]);
    await rm(target, { recursive: true, force: true });
    const svc = node(m);
    const req = { volume_id: id, staging_target_path: staging, target_path: target, volume_capability: CAP, readonly: false };
    rows.push([`NodeService.publish (${name})`, 0], [`NodeService.unpublish (${name})`, 0]);
    const pub: number[] = [];
    const unpub: number[] = [];
    for (let i = 0; i < (name === 'syscall' ? N : 50); i++) {
      let t = nowMs();
      await svc.publish(req as never);
      pub.push((nowMs() - t) * 1000);
      t = nowMs();
      await svc.unpublish({ volume_id: id, target_path: target });
      unpub.push((nowMs() - t) * 1000);
    }
    rows[rows.length - 2]![1] = percentile(pub, 50);
    rows[rows.length - 1]![1] = percentile(unpub, 50);
  }
  for (const [name, us] of rows) process.stdout.write(`  ${name.padEnd(62)} ${fmt(us).padStart(8)} us\n`);
} finally {
  await node(syscall).unstage({ volume_id: id, staging_target_path: staging });
  await backend.deleteVolume(id);
  await rm(dir, { recursive: true, force: true });
}
