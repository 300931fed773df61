import { lstat, mkdir, open, realpath, rmdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { deviceMajor, deviceMinor, isDisconnectedError, readMountInfo, type MountEntry } from '../os/index.js';

// The node's handling of CO-given paths. It never follows a symlink it did not make, never removes
// anything but the empty directory or plain file it created, and never recurses.

export type TargetKind = 'directory' | 'file';

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * A CO-given path must be where it says: no directory on the way is a symbolic link and the path itself is
 * not one. Otherwise a mount, mkdir or umount would land elsewhere (outside the CO's directories).
 * A missing parent is left to the caller (nothing can be mounted or removed there).
 */
export async function requireLiteralPath(path: string, field: string): Promise<void> {
  const parent = dirname(resolve(path));
  let real: string;
  try {
    real = await realpath(parent);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG')
      throw invalidArgument(`${field} ${path} is not a usable path (${code})`);
    throw e;
  }
  if (real !== parent) throw invalidArgument(`${field} ${path} goes through a symbolic link (${parent} is ${real}); refusing to follow it`);
  const s = await lstatOrUndefined(path).catch((e: NodeJS.ErrnoException) => {
    if (isDisconnectedError(e)) return undefined; // a mount point whose server side is gone: not a link; the caller repairs it
    throw e;
  });
  if (s?.isSymbolicLink()) throw invalidArgument(`${field} ${path} is a symbolic link; refusing to follow it`);
}

/** A path the CO must have created (the staging path): an existing directory, not a symlink. */
export async function requireDirectory(path: string, field: string): Promise<void> {
  const s = await lstatOrUndefined(path).catch((e: NodeJS.ErrnoException) => {
    if (isDisconnectedError(e)) return 'dead mount' as const; // a mount point whose server side is gone; stage replaces it
    throw e;
  });
  if (s === 'dead mount') return;
  if (!s) throw notFound(`${field} ${path} does not exist; the CO creates it before this call`);
  if (s.isSymbolicLink()) throw invalidArgument(`${field} ${path} is a symbolic link; refusing to mount through it`);
  if (!s.isDirectory()) throw invalidArgument(`${field} ${path} is not a directory`);
}

/**
 * Creates the publish target (a directory for mount volumes, a file for block volumes) when it is not
 * there; returns whether it was created here, so a failed publish can remove exactly what it made.
 */
export async function createTarget(path: string, kind: TargetKind): Promise<boolean> {
  const parent = await lstatOrUndefined(dirname(path));
  if (!parent) throw notFound(`the parent directory of target_path ${path} does not exist`);
  const s = await lstatOrUndefined(path);
  if (s) {
    if (s.isSymbolicLink()) throw invalidArgument(`target_path ${path} is a symbolic link; refusing to mount through it`);
    if (kind === 'directory' && !s.isDirectory()) throw invalidArgument(`target_path ${path} exists and is not a directory`);
    if (kind === 'file' && s.isDirectory())
      throw invalidArgument(`target_path ${path} is a directory; a block volume is published at a file`);
    return false;
  }
  try {
    if (kind === 'directory') await mkdir(path, { mode: 0o750 });
    else await (await open(path, 'wx', 0o640)).close();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return createTarget(path, kind);
    throw e;
  }
  return true;
}

/** Removes an unmounted target: an empty directory or a plain file. Missing is fine. */
export async function removeTarget(path: string): Promise<void> {
  const s = await lstatOrUndefined(path);
  if (!s) return;
  if (s.isSymbolicLink()) throw invalidArgument(`target_path ${path} is a symbolic link; not removing it`);
  if (s.isDirectory()) {
    try {
      await rmdir(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        throw failedPrecondition(`target_path ${path} is not empty after unmount; refusing to delete what it holds`);
      }
      throw e;
    }
    return;
  }
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

export async function deviceNumber(device: string): Promise<string | undefined> {
  try {
    const s = await stat(device);
    return s.isBlockDevice() ? `${deviceMajor(s.rdev)}:${deviceMinor(s.rdev)}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every mount that exposes this block device: filesystems mounted from it (same major:minor), and
 * the device node itself bind-mounted onto a file (a published block volume shows up as devtmpfs
 * with the node's name as root).
 */
export async function mountsOfDevice(device: string): Promise<MountEntry[]> {
  const [number, entries] = await Promise.all([deviceNumber(device), readMountInfo()]);
  return entries.filter((e) => exposesDevice(e, device, number));
}

export function exposesDevice(entry: MountEntry, device: string, number: string | undefined): boolean {
  return (number !== undefined && entry.majorMinor === number) || (entry.fsType === 'devtmpfs' && entry.root === `/${basename(device)}`);
}
