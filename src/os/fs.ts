// Files and mounted filesystems: durable writes, statistics, growth, freeze.
import { randomBytes } from 'node:crypto';
import { open, rename, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CsiError, alreadyExists, failedPrecondition, notFound, outOfRange } from '../errors.js';
import { run, isExecError, SLOW_TIMEOUT_MS } from './exec.js';
import { hasCapability } from './privileges.js';

export interface VolumeStats {
  totalBytes: number;
  availableBytes: number;
  usedBytes: number;
  totalInodes: number;
  freeInodes: number;
  usedInodes: number;
}

/** Replaces path with data so that a crash leaves either the old or the new content, never a mix. */
export async function atomicWriteFile(path: string, data: string | Buffer, opts: { mode?: number } = {}): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await withFile(temp, 'wx', opts.mode ?? 0o644, async (fh) => {
      await fh.writeFile(data);
      await fh.sync();
    });
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw mapMissing(e, dir);
  }
  await syncDirectory(dir); // makes the rename itself durable
}

export async function volumeStats(path: string): Promise<VolumeStats> {
  const s = await statfs(path).catch((e: unknown) => {
    throw mapMissing(e, path);
  });
  return {
    totalBytes: s.blocks * s.bsize,
    availableBytes: s.bavail * s.bsize,
    usedBytes: (s.blocks - s.bfree) * s.bsize,
    totalInodes: s.files,
    freeInodes: s.ffree,
    usedInodes: s.files - s.ffree,
  };
}

/**
 * Grows a filesystem to fill its (already grown) device. With a mount point it grows online; without
 * one only ext2/3/4 can grow (offline, after a forced check, as resize2fs requires).
 */
export async function resizeFilesystem(device: string, mountPoint: string | undefined, fsType: string): Promise<void> {
  switch (fsType) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
      return mountPoint === undefined ? resizeExtOffline(device) : resizeExtOnline(device);
    case 'xfs':
      if (mountPoint === undefined) throw failedPrecondition(`xfs on ${device} can only grow while mounted`);
      await run('xfs_growfs', ['-d', mountPoint], { timeoutMs: SLOW_TIMEOUT_MS });
      return;
    default:
      throw new CsiError('UNIMPLEMENTED', `cannot resize a ${fsType} filesystem (${device})`);
  }
}

// resize2fs works on the device even online; the kernel's resize ioctl demands CAP_SYS_RESOURCE.
async function resizeExtOnline(device: string): Promise<void> {
  try {
    await run('resize2fs', [device], { timeoutMs: SLOW_TIMEOUT_MS });
  } catch (e) {
    if (isExecError(e) && /Permission denied to resize/.test(e.stderr) && !(await hasCapability('CAP_SYS_RESOURCE'))) {
      throw new CsiError('FAILED_PRECONDITION', `online resize of ${device} needs CAP_SYS_RESOURCE`, { cause: e });
    }
    throw e;
  }
}

async function resizeExtOffline(device: string): Promise<void> {
  const slow = { timeoutMs: SLOW_TIMEOUT_MS };
  await run('e2fsck', ['-f', '-p', device], { ...slow, okExitCodes: [0, 1] }); // 1 = errors fixed, safe to go on
  await run('resize2fs', [device], slow);
}

/** Blocks writes and flushes the filesystem, e.g. for a consistent snapshot. */
export async function freezeFilesystem(mountPoint: string): Promise<void> {
  try {
    await run('fsfreeze', ['--freeze', mountPoint]);
  } catch (e) {
    if (isExecError(e) && /busy/i.test(e.stderr)) throw failedPrecondition(`${mountPoint} is already frozen`);
    throw e;
  }
}

/** Thaws a frozen filesystem; fine when it is not frozen (the kernel answers EINVAL). */
export async function thawFilesystem(mountPoint: string): Promise<void> {
  try {
    await run('fsfreeze', ['--unfreeze', mountPoint]);
  } catch (e) {
    if (isExecError(e) && /Invalid argument/.test(e.stderr)) return;
    throw e;
  }
}

/** True when something exists at path; a dead mount (ENOTCONN, EIO) still counts as existing. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code !== 'ENOENT' && code !== 'ENOTDIR';
  }
}

/** stat() that turns a missing path into NOT_FOUND naming what was expected there. */
export async function statOrNotFound(path: string, what = 'path'): Promise<Stats> {
  try {
    return await stat(path);
  } catch (e) {
    throw mapMissing(e, path, what);
  }
}

/** Creates a new sparse file; never touches an existing one (ALREADY_EXISTS). */
export async function createSparseFile(path: string, bytes: number): Promise<void> {
  try {
    await withFile(path, 'wx', 0o600, async (fh) => {
      await fh.truncate(bytes);
      await fh.sync();
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(`${path} already exists`);
    throw mapMissing(e, dirname(path), 'directory');
  }
  await syncDirectory(dirname(path));
}

/** Grows a file to bytes, keeping it sparse; shrinking is refused (OUT_OF_RANGE), equal size is a no-op. */
export async function growFile(path: string, bytes: number): Promise<void> {
  try {
    await withFile(path, 'r+', undefined, async (fh) => {
      const { size } = await fh.stat();
      if (bytes < size) throw outOfRange(`${path} is ${size} bytes; cannot shrink it to ${bytes}`);
      if (bytes === size) return;
      await fh.truncate(bytes);
      await fh.sync();
    });
  } catch (e) {
    throw mapMissing(e, path, 'file');
  }
}

async function withFile(path: string, flags: string, mode: number | undefined, fn: (fh: FileHandle) => Promise<void>): Promise<void> {
  const fh = await open(path, flags, mode);
  try {
    await fn(fh);
  } finally {
    await fh.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  await withFile(dir, 'r', undefined, (fh) => fh.sync());
}

function mapMissing(e: unknown, path: string, what = 'path'): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return notFound(`${what} ${path} does not exist`);
  return e;
}

/**
 * A mount whose server side is gone: a FUSE client that died (ENOTCONN, "transport endpoint is not
 * connected") or a stale network handle (ESTALE). Such a mount stays in the table but nothing works on it.
 */
export async function isDeadMount(path: string): Promise<boolean> {
  try {
    // statfs always reaches the filesystem; stat may be answered from the kernel's attribute cache
    await stat(path);
    await statfs(path);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOTCONN' || code === 'ESTALE' || code === 'ECONNABORTED';
  }
}
