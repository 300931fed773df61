// Small builders for CSI requests and a last-resort cleanup of what a plugin left under its temp dir, so a
// failing lifecycle test never leaves a mount or a loop device behind.
import { listLoopDevices, detachLoopDevice, mounter, readMountInfo } from '../../src/os/index.js';
import type { VolumeCapability } from '../../src/csi/gen/csi/v1/VolumeCapability.js';
import { isUnder } from './leaks.js';

export const MiB = 1024 * 1024;

export function mountCapability(
  fsType = '',
  mode: 'SINGLE_NODE_WRITER' | 'SINGLE_NODE_READER_ONLY' = 'SINGLE_NODE_WRITER',
  flags: string[] = [],
): VolumeCapability {
  return { mount: { fs_type: fsType, mount_flags: flags }, access_mode: { mode } };
}

export function blockCapability(mode: 'SINGLE_NODE_WRITER' | 'SINGLE_NODE_READER_ONLY' = 'SINGLE_NODE_WRITER'): VolumeCapability {
  return { block: {}, access_mode: { mode } };
}

/** Unmounts everything under dir (deepest first) and detaches loop devices of files under dir. */
export async function forceCleanupUnder(dir: string): Promise<void> {
  const mounts = (await readMountInfo())
    .map((m) => m.mountPoint)
    .filter((p) => isUnder(p, dir))
    .sort((a, b) => b.length - a.length);
  for (const m of new Set(mounts)) await mounter.unmount(m).catch(() => undefined);
  for (const loop of await listLoopDevices()) {
    if (isUnder(loop.backingFile, dir)) await detachLoopDevice(loop.device).catch(() => undefined);
  }
}
