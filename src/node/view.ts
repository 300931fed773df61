import { resolve } from 'node:path';
import type { Backend, NodeSource } from '../backends/backend.js';
import { canonicalPath, isDeadMount, readMountInfo, stackOrder, type MountEntry } from '../os/index.js';
import { deviceNumber, exposesDevice } from './paths.js';

/**
 * What one node call knows about the kernel: the mount table, read once, and where its volume is, located
 * once. The call holds its volume's lock, so nothing of ours changes either meanwhile; another volume's
 * mounts may come and go, which no decision about this volume depends on.
 */
export class CallView {
  private table: Promise<MountEntry[]> | undefined;
  private location: Promise<NodeSource | undefined> | undefined;
  private number: Promise<string | undefined> | undefined;

  constructor(
    private readonly backend: Backend,
    readonly id: string,
  ) {}

  mounts(): Promise<MountEntry[]> {
    return (this.table ??= readMountInfo());
  }

  located(): Promise<NodeSource | undefined> {
    return (this.location ??= this.backend.locateVolume(this.id));
  }

  /**
   * Every mount at path, bottom first. `literal`: requireLiteralPath has passed (no symbolic link on the way),
   * so the path as resolved is the one the kernel shows and needs no realpath.
   */
  async stackAt(path: string, literal = true): Promise<MountEntry[]> {
    const [where, entries] = await Promise.all([literal ? resolve(path) : canonicalPath(path), this.mounts()]);
    return stackOrder(entries.filter((e) => e.mountPoint === where));
  }

  /** Does this mount expose the volume? */
  async holds(entry: MountEntry): Promise<boolean> {
    const located = await this.located();
    if (!located) return false;
    if (located.kind === 'block') return exposesDevice(entry, located.device, await this.deviceNumber(located.device));
    return [located.mountedAs ?? located.source, ...(located.aliases ?? [])].includes(entry.source);
  }

  /** Filesystems mounted from the volume's device and its device node bound onto files. */
  async mountsOfVolumeDevice(): Promise<MountEntry[]> {
    const located = await this.located();
    if (located?.kind !== 'block') return [];
    const [number, entries] = await Promise.all([this.deviceNumber(located.device), this.mounts()]);
    return entries.filter((e) => exposesDevice(e, located.device, number));
  }

  /**
   * A network or FUSE mount whose server side is gone (ENOTCONN, ESTALE). A filesystem on a block device
   * cannot die that way, so a block volume costs no stat/statfs here.
   */
  async isDead(path: string): Promise<boolean> {
    if ((await this.located())?.kind === 'block') return false;
    return isDeadMount(path);
  }

  private deviceNumber(device: string): Promise<string | undefined> {
    return (this.number ??= deviceNumber(device));
  }
}
