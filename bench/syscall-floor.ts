// The syscall floor: a volume's life with the floor's own steps, but every mount and unmount a direct
// mount(2)/umount2(2) (through koffi, as the syscall mounter calls them) and every file operation a direct
// call, in a tight loop with no checks. What cannot be a system call here stays a child process, started
// the cheapest way Node has (child_process.execFile): losetup, blkid, mkfs.ext4. Plus the bare physical
// limit of the mount work: bind mount(2) + umount2(2) pairs back to back.

import { execFile } from 'node:child_process';
import { mkdir, open, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MKFS_ARGS } from '../src/os/format.js';
import { loadLibc } from '../src/os/native-mount.js';
import type { Teardown } from './cleanup.js';
import { nowMs } from './stats.js';
import { emptyLatencies, onWorkers, volumeDirs, type LifecycleOptions, type LifecycleResult, type LifecycleRpc } from './workloads.js';

const MS_BIND = 0x1000;
const UMOUNT_NOFOLLOW = 0x8;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let libc: ReturnType<typeof loadLibc> | undefined;
const sys = (): ReturnType<typeof loadLibc> => (libc ??= loadLibc());

function check(what: string, result: number): void {
  if (result !== 0) throw new Error(`${what} failed: errno ${sys().errno()}`);
}

function mountAsync(source: string, target: string, fsType: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sys().mount.async(source, target, fsType, 0, null, (err, res) => {
      if (err) reject(new Error(`koffi: ${JSON.stringify(err)}`));
      else if (res !== 0) reject(new Error(`mount ${source} ${target} failed: errno ${sys().errno()}`));
      else resolve();
    });
  });
}

function umountAsync(target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sys().umount2.async(target, UMOUNT_NOFOLLOW, (err, res) => {
      if (err) reject(new Error(`koffi: ${JSON.stringify(err)}`));
      else if (res !== 0) reject(new Error(`umount2 ${target} failed: errno ${sys().errno()}`));
      else resolve();
    });
  });
}

function exec(cmd: string, args: string[], teardown: Teardown, okCodes = [0]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env: { LC_ALL: 'C', PATH } }, (err, stdout) => {
      const code = err ? ((err as { code?: unknown }).code ?? 1) : 0;
      if (typeof code === 'number' && okCodes.includes(code)) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')}: ${err?.message ?? 'failed'}`));
    });
    teardown.addChild(child);
  });
}

/** One volume's life, each phase timed like floor.sh's laps. */
async function oneVolume(
  image: string,
  staging: string,
  target: string,
  sizeBytes: number,
  teardown: Teardown,
): Promise<[LifecycleRpc, number][]> {
  const laps: [LifecycleRpc, number][] = [];
  let t = nowMs();
  const lap = (rpc: LifecycleRpc): void => {
    const now = nowMs();
    laps.push([rpc, now - t]);
    t = now;
  };
  const file = await open(image, 'wx', 0o600);
  await file.truncate(sizeBytes);
  await file.close();
  lap('CreateVolume');
  const device = (await exec('losetup', ['--find', '--show', image], teardown)).trim();
  await exec('blkid', ['--probe', device], teardown, [2]); // 2: nothing found, the only answer that allows mkfs
  await exec('mkfs.ext4', [...MKFS_ARGS.ext4, device], teardown);
  await mountAsync(device, staging, 'ext4');
  lap('NodeStageVolume');
  await mkdir(target);
  check('bind mount', sys().mount(staging, target, null, MS_BIND, null));
  lap('NodePublishVolume');
  await umountAsync(target);
  await rmdir(target);
  lap('NodeUnpublishVolume');
  await umountAsync(staging);
  await exec('losetup', ['--detach', device], teardown);
  lap('NodeUnstageVolume');
  await unlink(image);
  lap('DeleteVolume');
  return laps;
}

export async function syscallFloorLifecycle(o: LifecycleOptions): Promise<LifecycleResult> {
  const latencies = emptyLatencies();
  const perVolume: number[] = [];
  const images = join(o.dir, `sysfloor-${o.tag}`, 'images');
  await mkdir(images, { recursive: true });
  const wallMs = await onWorkers(o.volumes, o.concurrency, o.teardown, async (i) => {
    const { staging, target } = await volumeDirs(o, 'sysfloor', i);
    let total = 0;
    for (const [rpc, ms] of await oneVolume(join(images, `${i}.img`), staging, target, o.sizeBytes, o.teardown)) {
      latencies[rpc].push(ms);
      total += ms;
    }
    perVolume.push(total);
    await rmdir(staging);
  });
  return { latencies, perVolume, wallMs, volumes: o.volumes };
}

/** `count` bind mount(2) + umount2(2) pairs back to back, synchronous: microseconds per pair, each. */
export async function bindPairs(dir: string, count: number): Promise<number[]> {
  const source = join(dir, 'pair-source');
  const target = join(dir, 'pair-target');
  await mkdir(source, { recursive: true });
  await mkdir(target, { recursive: true });
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    check('bind mount', sys().mount(source, target, null, MS_BIND, null));
    check('umount2', sys().umount2(target, UMOUNT_NOFOLLOW));
    out.push((nowMs() - t0) * 1000);
  }
  await rmdir(target);
  await rmdir(source);
  return out;
}
