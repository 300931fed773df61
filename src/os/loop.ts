// Loop devices: attach and detach with losetup(8); look-ups read sysfs, which costs no fork.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { invalidArgument } from '../errors.js';
import { run, isExecError } from './exec.js';
import { canonicalPath } from './mountinfo.js';
import { pathExists, statOrNotFound } from './fs.js';

export interface LoopDevice {
  device: string;
  backingFile: string;
  /** The backing file was unlinked after attach (sysfs shows it with a " (deleted)" suffix). */
  deleted: boolean;
}

const SYS_BLOCK = '/sys/block';
const DELETED_SUFFIX = ' (deleted)';

export async function attachLoopDevice(file: string, opts: { readOnly?: boolean } = {}): Promise<string> {
  await statOrNotFound(file, 'backing file');
  // losetup retries on its own when a parallel attach takes the free device it found.
  const { stdout } = await run('losetup', ['--find', '--show', ...(opts.readOnly ? ['--read-only'] : []), file]);
  return stdout.trim();
}

export async function listLoopDevices(): Promise<LoopDevice[]> {
  const names = (await readdir(SYS_BLOCK)).filter((n) => /^loop\d+$/.test(n));
  const found = await Promise.all(names.map(readLoopDevice));
  return found.filter((d): d is LoopDevice => d !== undefined).sort((a, b) => loopNumber(a.device) - loopNumber(b.device));
}

/** Devices backed by file. A deleted backing file matches only while nothing new exists at its path. */
export async function loopDevicesOf(file: string): Promise<string[]> {
  const [path, exists, devices] = await Promise.all([canonicalPath(file), pathExists(file), listLoopDevices()]);
  return devices.filter((d) => d.backingFile === path && (!d.deleted || !exists)).map((d) => d.device);
}

/**
 * The device backed by file, read from the one sysfs entry of a remembered device instead of a scan of
 * every loop device. The hint is never trusted: it is used only when the kernel says, now, that it is
 * backed by file under the same rule as loopDevicesOf (same canonical path; a deleted backing file only
 * while nothing new exists at its path). Otherwise, or with no hint, the scan answers (lowest device first).
 */
export async function loopDeviceOf(file: string, hint?: string): Promise<string | undefined> {
  const name = hint === undefined ? undefined : /^\/dev\/(loop\d+)$/.exec(hint)?.[1];
  if (name !== undefined) {
    const [path, exists, found] = await Promise.all([canonicalPath(file), pathExists(file), readLoopDevice(name)]);
    if (found && found.backingFile === path && (!found.deleted || !exists)) return found.device;
  }
  return (await loopDevicesOf(file))[0];
}

/** Detaches device; fine when it is already free. A device still in use is freed by the kernel on last close. */
export async function detachLoopDevice(device: string): Promise<void> {
  const name = basename(await canonicalPath(device));
  if (!/^loop\d+$/.test(name)) throw invalidArgument(`${device} is not a loop device`);
  if (!(await readLoopDevice(name))) return;
  try {
    await run('losetup', ['--detach', device]);
  } catch (e) {
    if (isExecError(e) && !(await readLoopDevice(name))) return; // detached by someone else meanwhile
    throw e;
  }
  await waitUntilDetached(name);
}

/**
 * losetup --detach on a device the kernel still holds for a moment (just after umount) only marks it
 * autoclear and returns. Wait briefly for the release, so a DeleteVolume right after NodeUnstage does not
 * see the volume as still staged (Mesos does not retry a FAILED_PRECONDITION on DeleteVolume).
 */
async function waitUntilDetached(name: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await readLoopDevice(name)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Processes, one per mount namespace other than ours, whose namespace still mounts the loop device. A
 * namespace made with private propagation (`unshare -m`, a sandbox) while the device was mounted keeps its
 * own copy of the mount after we unmount ours, and with it the device: `losetup --detach` then only marks
 * it autoclear, and the kernel frees it when the last such copy goes. Reads /proc; costs nothing when unused.
 */
export async function otherNamespaceHolders(device: string): Promise<number[]> {
  const name = basename(await canonicalPath(device));
  let majorMinor: string;
  try {
    majorMinor = (await readFile(`${SYS_BLOCK}/${name}/dev`, 'utf8')).trim();
  } catch {
    return [];
  }
  const ours = await readlink('/proc/self/ns/mnt');
  const seen = new Set([ours]);
  const holders: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ns = await readlink(`/proc/${entry}/ns/mnt`);
      if (seen.has(ns)) continue;
      seen.add(ns);
      const mounts = await readFile(`/proc/${entry}/mountinfo`, 'utf8');
      if (mounts.split('\n').some((line) => line.split(' ')[2] === majorMinor)) holders.push(Number(entry));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return holders;
}

/** Makes the kernel see a grown backing file. */
export async function refreshLoopCapacity(device: string): Promise<void> {
  await run('losetup', ['--set-capacity', device]);
}

export async function blockDeviceSize(device: string): Promise<number> {
  const name = basename(await canonicalPath(device));
  try {
    const sectors = await readFile(`/sys/class/block/${name}/size`, 'utf8');
    return Number(sectors.trim()) * 512; // sysfs counts 512-byte sectors whatever the device's sector size
  } catch {
    await statOrNotFound(device, 'block device');
    const { stdout } = await run('blockdev', ['--getsize64', device]);
    return Number(stdout.trim());
  }
}

async function readLoopDevice(name: string): Promise<LoopDevice | undefined> {
  let raw: string;
  try {
    raw = await readFile(`${SYS_BLOCK}/${name}/loop/backing_file`, 'utf8');
  } catch {
    return undefined; // no loop/ directory: the device is free
  }
  const path = raw.replace(/\n$/, '');
  const deleted = path.endsWith(DELETED_SUFFIX);
  return { device: `/dev/${name}`, backingFile: deleted ? path.slice(0, -DELETED_SUFFIX.length) : path, deleted };
}

function loopNumber(device: string): number {
  return Number(device.replace(/^\/dev\/loop/, ''));
}
