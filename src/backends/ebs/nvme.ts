// Finding an EBS volume's block device on the node. On Nitro instances a volume appears as an NVMe
// namespace whose controller serial is the volume id without the dash, and udev links it as
// /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<hex>. The device name given to AttachVolume is only
// a hint there, so before any device is handed to formatting or mounting its serial must name the volume.
import { readFile, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { failedPrecondition, unavailable } from '../../errors.js';

export interface DeviceRoots {
  /** /dev/disk/by-id */
  byIdDir: string;
  /** /sys */
  sysRoot: string;
}

export const VOLUME_ID = /^vol-[0-9a-f]{8,17}$/;

/** vol-0123abcd -> vol0123abcd: the NVMe serial and by-id form of a volume id. */
export const serialOf = (volumeId: string): string => volumeId.replace('-', '');

export function byIdLink(roots: DeviceRoots, volumeId: string): string {
  return join(roots.byIdDir, `nvme-Amazon_Elastic_Block_Store_${serialOf(volumeId)}`);
}

async function isBlockDevice(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isBlockDevice();
  } catch {
    return false;
  }
}

/** The serial the kernel reports for a block device, or undefined when it has none (Xen devices). */
export async function deviceSerial(roots: DeviceRoots, device: string): Promise<string | undefined> {
  const name = basename(device);
  for (const path of [join(roots.sysRoot, 'block', name, 'device', 'serial'), join(roots.sysRoot, 'block', name, 'serial')]) {
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch {
      // try the next place
    }
  }
  return undefined;
}

export type Located = { device: string } | { mismatch: string } | undefined;

/** The device at `path` if it is a block device whose serial names the volume; a mismatch is reported, not used. */
async function check(roots: DeviceRoots, path: string, volumeId: string, requireSerial: boolean): Promise<Located> {
  let device: string;
  try {
    device = await realpath(path);
  } catch {
    return undefined;
  }
  if (!(await isBlockDevice(device))) return undefined;
  const serial = await deviceSerial(roots, device);
  if (serial === undefined) return requireSerial ? { mismatch: `${path} (${device}) reports no serial` } : { device };
  if (serial !== serialOf(volumeId))
    return { mismatch: `${path} (${device}) has serial ${JSON.stringify(serial)}, not ${serialOf(volumeId)}` };
  return { device };
}

/**
 * Where the volume is on this node now: the NVMe by-id link, else the attach-time device name (only a
 * device with no serial at all, as on Xen instances, is trusted by name). Throws FAILED_PRECONDITION when
 * a device claims to be the volume but its serial says otherwise.
 */
export async function findDevice(roots: DeviceRoots, volumeId: string, hintDevice?: string): Promise<string | undefined> {
  if (!VOLUME_ID.test(volumeId)) return undefined;
  const candidates: [string, boolean][] = [[byIdLink(roots, volumeId), true]];
  if (hintDevice && /^\/dev\/(xvd|sd)[a-z]{1,2}$/.test(hintDevice)) candidates.push([hintDevice, false]);
  for (const [path, requireSerial] of candidates) {
    const found = await check(roots, path, volumeId, requireSerial);
    if (found && 'mismatch' in found) {
      throw failedPrecondition(`refusing to use the device for volume ${volumeId}: ${found.mismatch}`);
    }
    if (found) return found.device;
  }
  return undefined;
}

/** Waits (udev may lag the attachment by seconds) until the volume's device shows up. */
export async function waitForDevice(
  roots: DeviceRoots,
  volumeId: string,
  hintDevice: string | undefined,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    const device = await findDevice(roots, volumeId, hintDevice);
    if (device) return device;
    if (Date.now() + delay > deadline) {
      throw unavailable(
        `volume ${volumeId} is attached but no device for it appeared within ${Math.round(timeoutMs / 1000)} s (looked for ${byIdLink(roots, volumeId)}${hintDevice ? ` and ${hintDevice}` : ''})`,
      );
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}
