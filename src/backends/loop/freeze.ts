import { failedPrecondition } from '../../errors.js';
import { flushBlockDevice, freezeFilesystem, loopDevicesOf, mountsOfSource, thawFilesystem } from '../../os/index.js';

// Consistency for copies of live volumes. A volume staged on this node has its filesystem frozen
// (fsfreeze: dirty data written, new writes blocked) while its backing file is copied, and thawed
// whatever happens, so a snapshot holds a clean filesystem instead of a torn one. A volume attached but
// without a mounted filesystem (a block volume) has its device buffers flushed; what the application
// keeps in its own memory is beyond any storage system's reach.

interface Frozen {
  mountPoint: string;
}

/** Runs fn while every filesystem on the given backing files is frozen; thaws all of them afterwards. */
export async function withFrozenImages<T>(images: string[], fn: () => Promise<T>): Promise<T> {
  const frozen: Frozen[] = [];
  try {
    for (const image of images) {
      for (const device of await loopDevicesOf(image)) {
        const mountPoint = await filesystemMountOf(device);
        if (mountPoint === undefined) {
          await flushBlockDevice(device);
          continue;
        }
        await freezeFilesystem(mountPoint).catch((e: unknown) => {
          throw failedPrecondition(
            `cannot freeze ${mountPoint} (volume backed by ${image}) for a consistent copy: ${(e as Error).message}`,
          );
        });
        frozen.push({ mountPoint });
      }
    }
    return await fn();
  } finally {
    await thawAll(frozen);
  }
}

/** Thaws every frozen filesystem, even when one thaw fails; the first failure is rethrown afterwards. */
async function thawAll(frozen: Frozen[]): Promise<void> {
  let failure: Error | undefined;
  for (const f of frozen.reverse()) {
    try {
      await thawFilesystem(f.mountPoint);
    } catch (e) {
      failure ??= e instanceof Error ? e : new Error(String(e));
    }
  }
  if (failure !== undefined) throw failure;
}

/**
 * One mount point of a filesystem on device (the staging mount or a bind of it; freezing either freezes
 * the filesystem). A block volume bind-mounted onto a file shows up as devtmpfs and is no filesystem.
 */
async function filesystemMountOf(device: string): Promise<string | undefined> {
  const mounts = (await mountsOfSource(device)).filter((m) => m.fsType !== 'devtmpfs');
  return mounts[0]?.mountPoint;
}

/**
 * Thaws every filesystem on the given backing files. Run at start-up: a plugin killed during a copy
 * would otherwise leave a volume frozen (its writers blocked) until someone thaws it by hand.
 */
export async function thawImages(images: string[]): Promise<void> {
  const mountPoints: Frozen[] = [];
  for (const image of images) {
    for (const device of await loopDevicesOf(image)) {
      const mountPoint = await filesystemMountOf(device);
      if (mountPoint !== undefined) mountPoints.push({ mountPoint });
    }
  }
  await thawAll(mountPoints);
}
