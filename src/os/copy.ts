// Whole-file copies for snapshots and clones, and the filesystem sizes that tell whether a grown device
// still needs its filesystem grown.
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { failedPrecondition } from '../errors.js';
import { run, SLOW_TIMEOUT_MS } from './exec.js';
import { statOrNotFound } from './fs.js';

/**
 * Copies src to a new file dst: a reflink (shared extents, instant) where the filesystem supports it,
 * else a sparse copy (holes stay holes). dst is fsynced, and its directory too, before this returns.
 */
export async function copyFileSparse(src: string, dst: string): Promise<void> {
  await statOrNotFound(src, 'source file');
  // --no-clobber would exit 0 without copying; callers remove leftovers, so refuse an existing dst instead.
  const exists = await statOrNotFound(dst).then(
    () => true,
    () => false,
  );
  if (exists) throw failedPrecondition(`${dst} already exists; not overwriting it`);
  await run('cp', ['--reflink=auto', '--sparse=always', '--', src, dst], { timeoutMs: SLOW_TIMEOUT_MS });
  await fsyncPath(dst);
  await fsyncPath(dirname(dst));
}

/** Flushes a block device's buffered writes to what lies below it (a loop device: its backing file). */
export async function flushBlockDevice(device: string): Promise<void> {
  await run('blockdev', ['--flushbufs', device]);
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The size in bytes the filesystem on device spans (not the device's size). ext2/3/4 is read from the
 * superblock, mounted or not; xfs only while mounted (xfs_info asks the mounted filesystem).
 */
export async function filesystemSize(device: string, mountPoint: string | undefined, fsType: string): Promise<number> {
  if (fsType === 'ext2' || fsType === 'ext3' || fsType === 'ext4') {
    const { stdout } = await run('dumpe2fs', ['-h', device]);
    return superblockNumber(stdout, 'Block count') * superblockNumber(stdout, 'Block size');
  }
  if (fsType === 'xfs') {
    if (mountPoint === undefined) throw failedPrecondition(`the size of xfs on ${device} can only be read while it is mounted`);
    const { stdout } = await run('xfs_info', [mountPoint]);
    const m = /^data\s+=.*?bsize=(\d+)\s+blocks=(\d+)/m.exec(stdout);
    if (!m) throw new Error(`xfs_info ${mountPoint}: no data section in its output`);
    return Number(m[1]) * Number(m[2]);
  }
  throw failedPrecondition(`cannot tell the size of a ${fsType} filesystem (${device})`);
}

function superblockNumber(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`dumpe2fs: no "${field}" in the superblock`);
  return Number(m[1]);
}
