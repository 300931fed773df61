import { isCsiError, CsiError } from '../errors.js';
import { blockDeviceSize, filesystemSize, resizeFilesystem } from '../os/index.js';

// Growing a filesystem to fill its (already grown) device, for NodeExpandVolume and for NodeStage of a
// volume that grew while it was not mounted (an expansion, or a clone larger than its source).
// ext2/3/4 grows offline before the mount (resize2fs on the device, which needs no privilege beyond
// opening it) or online while mounted (the kernel's resize ioctl, which needs CAP_SYS_RESOURCE);
// xfs grows only while mounted.

export const isExt = (fsType: string): boolean => fsType === 'ext2' || fsType === 'ext3' || fsType === 'ext4';

/** Grows the filesystem when it is smaller than the device; returns whether it grew. */
export async function growFilesystemToDevice(device: string, mountPoint: string | undefined, fsType: string): Promise<boolean> {
  const [deviceBytes, fsBytes] = await Promise.all([blockDeviceSize(device), filesystemSize(device, mountPoint, fsType)]);
  if (fsBytes >= deviceBytes) return false;
  try {
    await resizeFilesystem(device, mountPoint, fsType);
  } catch (e) {
    if (mountPoint !== undefined && isExt(fsType) && isCsiError(e, 'FAILED_PRECONDITION')) {
      throw new CsiError(
        'FAILED_PRECONDITION',
        `the device ${device} has grown to ${deviceBytes} bytes, but the ${fsType} filesystem mounted at ${mountPoint} (${fsBytes} bytes) ` +
          `cannot grow while mounted: this plugin lacks CAP_SYS_RESOURCE, which the kernel requires for an online ${fsType} resize. ` +
          'It grows by itself at the next NodeStageVolume (unpublish and unstage the volume, e.g. restart the workload), ' +
          'or run the node plugin with CAP_SYS_RESOURCE to grow it online',
        { cause: e },
      );
    }
    throw e;
  }
  return true;
}
