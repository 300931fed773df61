import { access, constants, stat } from 'node:fs/promises';
import {
  BLOCK_NODE_REQUIREMENTS,
  type AccessType,
  type Backend,
  type BackendFeatures,
  type CapacityArgs,
  type CapacityInfo,
  type CapacityOps,
  type CreateVolumeArgs,
  type ExpandOps,
  type ExpandResult,
  type GroupSnapshotOps,
  type ListRange,
  type NodeInfo,
  type NodeRequirements,
  type NodeSource,
  type NodeVolumeArgs,
  type SnapshotOps,
  type Volume,
  type VolumeCondition,
} from '../backend.js';
import { failedPrecondition, invalidArgument, isCsiError, notFound, outOfRange, resourceExhausted, unavailable } from '../../errors.js';
import { faultPoint } from '../../faults.js';
import {
  attachLoopDevice,
  copyFileSparse,
  createSparseFile,
  detachLoopDevice,
  growFile,
  listLoopDevices,
  loopDeviceOf,
  loopDevicesOf,
  missingTools,
  mountsOfSource,
  otherNamespaceHolders,
  refreshLoopCapacity,
} from '../../os/index.js';
import { thawImages, withFrozenImages } from './freeze.js';
import { Pool, type VolumeMeta } from './pool.js';
import { SnapshotStore } from './snapshot-store.js';
import { LoopSnapshots } from './snapshots.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
export const NODE_TOPOLOGY_KEY = 'topology.rexcsi.io/node';
const TOOLS = ['losetup', 'blkid', 'mount', 'umount', 'mkfs.ext4', 'cp', 'fsfreeze', 'blockdev'];

/** The block path, plus the loop devices a node attaches. */
export const LOOP_NODE_REQUIREMENTS: NodeRequirements = {
  ...BLOCK_NODE_REQUIREMENTS,
  tools: [...BLOCK_NODE_REQUIREMENTS.tools, 'losetup'],
  devices: [...BLOCK_NODE_REQUIREMENTS.devices, '/dev/loop-control'],
};

export interface LoopConfig {
  poolDir: string;
  nodeId: string;
  maxVolumesPerNode: number;
  defaultVolumeBytes?: number;
}

// The embedded backend: a volume is a sparse file in the pool, attached as a loop device on the node.
// Controller and node share the pool, so this backend serves one host (topology: this node).
export class LoopBackend implements Backend {
  readonly name = 'loop';
  readonly features: BackendFeatures;
  readonly node = LOOP_NODE_REQUIREMENTS;
  readonly capacity: CapacityOps = { getCapacity: (args) => this.getCapacity(args) };
  readonly expand: ExpandOps = {
    mode: 'online',
    expandVolume: (id, bytes, accessType) => this.expandVolume(id, bytes, accessType),
    refreshVolumeSize: (id) => this.refreshVolumeSize(id),
  };
  readonly snapshots: SnapshotOps;
  readonly groupSnapshots: GroupSnapshotOps;
  private readonly pool: Pool;
  private readonly store: LoopSnapshots;
  private readonly topology: Record<string, string>;
  private toolsFound = false;
  /**
   * The loop device each volume was last found or attached on, so the node's look-ups read one sysfs entry
   * instead of scanning every loop device. A hint only: loopDeviceOf checks it against the kernel each time.
   */
  private readonly deviceHints = new Map<string, string>();

  constructor(private readonly config: LoopConfig) {
    this.pool = new Pool(config.poolDir);
    const store = (this.store = new LoopSnapshots(this.pool));
    // Snapshots are independent copies: deleting their source volume leaves them restorable.
    this.snapshots = {
      parameterKeys: [],
      isId: (id) => SnapshotStore.isSnapshotId(id),
      create: (args) => store.create(args),
      findByName: (name) => store.findByName(name),
      get: (id) => store.get(id),
      delete: (id) => store.delete(id),
      list: (filter, range) => store.list(filter, range),
    };
    this.groupSnapshots = {
      parameterKeys: [],
      create: (args) => store.createGroup(args),
      findByName: (name) => store.findGroupByName(name),
      get: (id) => store.getGroup(id),
      delete: (id) => store.deleteGroup(id),
    };
    this.topology = { [NODE_TOPOLOGY_KEY]: config.nodeId };
    this.features = {
      accessTypes: ['mount', 'block'],
      accessModes: ['SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER'],
      fsTypes: ['ext4', 'xfs'],
      defaultFsType: 'ext4',
      nodeSource: 'block',
      listVolumesPublishedNodes: true,
      volumeCondition: true,
      minVolumeBytes: MiB,
      maxVolumeBytes: 16 * 1024 * GiB,
      allocationUnitBytes: MiB,
      defaultVolumeBytes: config.defaultVolumeBytes ?? GiB,
      parameterKeys: ['fsType'],
      topologyKeys: [NODE_TOPOLOGY_KEY],
      cloneFromVolume: true,
    };
  }

  async init(): Promise<void> {
    await this.pool.init();
    await this.store.init();
    // A predecessor killed in the middle of a snapshot copy may have left a volume frozen.
    const images = (await this.pool.listIds()).map((id) => this.pool.imagePath(id));
    await thawImages(images);
  }

  async probe(): Promise<void> {
    try {
      await access(this.pool.volumesDir, constants.W_OK | constants.X_OK);
    } catch (e) {
      throw unavailable(`loop pool ${this.pool.volumesDir} is not writable: ${(e as Error).message}`);
    }
    if (this.toolsFound) return;
    const missing = await missingTools(TOOLS);
    if (missing.length) throw failedPrecondition(`the loop backend needs ${missing.join(', ')} in PATH`);
    // Found once, the tools stay: later Probes (the CO's health check, every few seconds) skip the PATH walk.
    this.toolsFound = true;
  }

  // ---- controller side

  async createVolume(args: CreateVolumeArgs): Promise<Volume> {
    const requisite = args.topology?.requisite ?? [];
    if (requisite.length > 0 && !requisite.some((t) => this.servesTopology(t))) {
      throw resourceExhausted(
        `this loop pool serves only ${NODE_TOPOLOGY_KEY}=${this.config.nodeId}, which the requisite topology does not include`,
      );
    }
    const free = await this.pool.freeBytes();
    if (args.capacityBytes > free) {
      throw resourceExhausted(
        `the loop pool ${this.pool.root} has ${free} bytes free, less than the ${args.capacityBytes} bytes asked for`,
      );
    }
    const id = Pool.idForName(args.name);
    // No metadata means no volume: a backing file left by a create or delete that crashed part-way was
    // never handed out, so it is removed rather than reused (it may hold a deleted volume's data).
    await this.pool.removeImage(id);
    if (args.source) await this.fillFromSource(id, args);
    else await createSparseFile(this.pool.imagePath(id), args.capacityBytes);
    await faultPoint('loop.create.after-file');
    const meta: VolumeMeta = {
      version: 1,
      id,
      name: args.name,
      capacityBytes: args.capacityBytes,
      accessType: args.accessType,
      fsType: args.fsType,
      parameters: args.parameters,
      createdAt: new Date().toISOString(),
      ...(args.source ? { source: args.source } : {}),
    };
    await this.pool.writeMeta(meta);
    await faultPoint('loop.create.after-meta');
    return this.toVolume(meta, [], undefined);
  }

  /**
   * A clone: the source's bytes copied into the new backing file, which then grows to the asked capacity
   * (the filesystem follows at its first stage). A source volume is frozen while staged, like a snapshot.
   */
  private async fillFromSource(id: string, args: CreateVolumeArgs): Promise<void> {
    const source = args.source!;
    const from =
      source.kind === 'snapshot'
        ? await this.store
            .requireImage(source.id)
            .then(({ image, meta }) => ({ image, accessType: meta.accessType, fsType: meta.fsType, bytes: meta.sizeBytes }))
        : await this.sourceVolume(source.id);
    if (args.accessType === 'mount' && from.accessType === 'mount' && from.fsType !== '' && from.fsType !== args.fsType) {
      throw invalidArgument(
        `${source.kind} ${source.id} holds a ${from.fsType} filesystem; ask for fs_type ${from.fsType} (not ${args.fsType}) to restore it`,
      );
    }
    if (args.capacityBytes < from.bytes)
      throw outOfRange(
        `${source.kind} ${source.id} is ${from.bytes} bytes; a volume made from it cannot be smaller (asked ${args.capacityBytes})`,
      );
    const target = this.pool.imagePath(id);
    if (source.kind === 'volume') await withFrozenImages([from.image], () => copyFileSparse(from.image, target));
    else await copyFileSparse(from.image, target);
    await growFile(target, args.capacityBytes);
  }

  private async sourceVolume(id: string): Promise<{ image: string; accessType: AccessType; fsType: string; bytes: number }> {
    const meta = await this.pool.readMeta(id);
    if (!meta) throw notFound(`source volume ${JSON.stringify(id)} does not exist`);
    return { image: this.pool.imagePath(id), accessType: meta.accessType, fsType: meta.fsType, bytes: meta.capacityBytes };
  }

  /** Grows the backing file, then the metadata (a retry after a crash in between finds the file grown). */
  private async expandVolume(id: string, capacityBytes: number, accessType: AccessType): Promise<ExpandResult> {
    const meta = await this.pool.readMeta(id);
    if (!meta) throw notFound(`volume ${JSON.stringify(id)} does not exist`);
    if (capacityBytes < meta.capacityBytes)
      throw outOfRange(`volume ${id} is ${meta.capacityBytes} bytes; it cannot shrink to ${capacityBytes}`);
    if (capacityBytes > meta.capacityBytes) {
      const free = await this.pool.freeBytes();
      if (capacityBytes - meta.capacityBytes > free)
        throw resourceExhausted(
          `the loop pool ${this.pool.root} has ${free} bytes free, less than the ${capacityBytes - meta.capacityBytes} bytes the growth needs`,
        );
      await growFile(this.pool.imagePath(id), capacityBytes);
      await faultPoint('loop.expand.after-file');
      await this.pool.writeMeta({ ...meta, capacityBytes });
    }
    // Controller and node share this host: a block volume's attached device sees its new size right away.
    await this.refreshVolumeSize(id);
    return { capacityBytes, nodeExpansionRequired: accessType === 'mount' };
  }

  async deleteVolume(id: string): Promise<void> {
    if (!Pool.isId(id)) return; // not a name this pool could have issued: already gone
    const devices = await loopDevicesOf(this.pool.imagePath(id));
    if (devices.length > 0) {
      const held = await heldElsewhereOnly(devices);
      if (held.length > 0) {
        throw failedPrecondition(
          `volume ${id} is not staged here any more, but ${devices.join(', ')} stays attached: another mount namespace (process ${held.join(', ')}) ` +
            `still has a copy of its mount, made with private propagation (unshare -m, a sandbox) while the volume was staged; ` +
            `the kernel frees the device when those processes end or unmount it: retry DeleteVolume then`,
        );
      }
      throw failedPrecondition(`volume ${id} is staged on node ${this.config.nodeId} (${devices.join(', ')}); unstage it before deleting`);
    }
    this.deviceHints.delete(id);
    await this.pool.removeMeta(id);
    await faultPoint('loop.delete.after-meta');
    await this.pool.removeImage(id);
  }

  async getVolume(id: string): Promise<Volume | undefined> {
    const meta = await this.readMetaForListing(id);
    if (!meta) return undefined;
    const devices = await loopDevicesOf(this.pool.imagePath(id));
    return this.toVolume(meta, devices, await this.conditionOf(meta));
  }

  async findVolumeByName(name: string): Promise<Volume | undefined> {
    const meta = await this.pool.readMeta(Pool.idForName(name));
    if (!meta) return undefined;
    if (meta.name !== name) {
      throw failedPrecondition(
        `volume id ${meta.id} for name ${JSON.stringify(name)} is held by ${JSON.stringify(meta.name)} (hash collision)`,
      );
    }
    return this.getVolume(meta.id);
  }

  isVolumeId(id: string): boolean {
    return Pool.isId(id);
  }

  /** One readdir for the ids; only the metadata of the entries returned is read (cheap at 10,000 volumes). */
  async listVolumes(range: ListRange): Promise<Volume[]> {
    const ids = (await this.pool.listIds()).filter((id) => id > range.afterId);
    const attached = new Map<string, string[]>();
    for (const d of await listLoopDevices()) attached.set(d.backingFile, [...(attached.get(d.backingFile) ?? []), d.device]);
    const entries: Volume[] = [];
    const wanted = range.limit > 0 ? range.limit : ids.length;
    for (let at = 0; at < ids.length && entries.length < wanted;) {
      const batch = ids.slice(at, (at += wanted - entries.length));
      for (const meta of await Promise.all(batch.map((id) => this.readMetaForListing(id)))) {
        if (!meta) continue; // deleted between readdir and read: the next id takes its place
        entries.push(this.toVolume(meta, attached.get(this.pool.imagePath(meta.id)) ?? [], await this.conditionOf(meta)));
      }
    }
    return entries;
  }

  private async getCapacity(args: CapacityArgs): Promise<CapacityInfo> {
    if (args.topology && !this.servesTopology(args.topology)) return { availableBytes: 0 };
    const unit = this.features.allocationUnitBytes;
    const available = Math.floor((await this.pool.freeBytes()) / unit) * unit;
    return {
      availableBytes: available,
      maximumVolumeSize: Math.min(available, this.features.maxVolumeBytes),
      minimumVolumeSize: this.features.minVolumeBytes,
    };
  }

  // ---- node side

  async nodeInfo(): Promise<NodeInfo> {
    return { nodeId: this.config.nodeId, maxVolumesPerNode: this.config.maxVolumesPerNode, topology: this.topology };
  }

  async openVolume(args: NodeVolumeArgs): Promise<NodeSource> {
    const meta = await this.pool.readMeta(args.volumeId);
    if (!meta) throw notFound(`volume ${JSON.stringify(args.volumeId)} does not exist in loop pool ${this.pool.root}`);
    const image = this.pool.imagePath(meta.id);
    const device = (await loopDeviceOf(image, this.deviceHints.get(meta.id))) ?? (await attachLoopDevice(image));
    this.deviceHints.set(meta.id, device);
    return { kind: 'block', device, mayFormat: meta.accessType === 'mount', fsType: meta.fsType };
  }

  async locateVolume(volumeId: string): Promise<NodeSource | undefined> {
    if (!Pool.isId(volumeId)) return undefined;
    const device = await loopDeviceOf(this.pool.imagePath(volumeId), this.deviceHints.get(volumeId));
    if (!device) {
      this.deviceHints.delete(volumeId);
      return undefined;
    }
    this.deviceHints.set(volumeId, device);
    const meta = await this.pool.readMeta(volumeId).catch(() => undefined);
    return { kind: 'block', device, mayFormat: false, fsType: meta?.fsType ?? '' };
  }

  async closeVolume(volumeId: string): Promise<void> {
    if (!Pool.isId(volumeId)) return;
    this.deviceHints.delete(volumeId);
    for (const device of await loopDevicesOf(this.pool.imagePath(volumeId))) await detachLoopDevice(device);
  }

  /** losetup --set-capacity on every device of the volume, so the kernel sees a grown backing file. */
  private async refreshVolumeSize(volumeId: string): Promise<void> {
    if (!Pool.isId(volumeId)) return;
    for (const device of await loopDevicesOf(this.pool.imagePath(volumeId))) await refreshLoopCapacity(device);
  }

  async volumeExists(volumeId: string): Promise<boolean> {
    try {
      return (await this.pool.readMeta(volumeId)) !== undefined;
    } catch (e) {
      if (isCsiError(e, 'FAILED_PRECONDITION')) return true; // damaged, but there
      throw e;
    }
  }

  // ---- helpers

  private servesTopology(t: Record<string, string>): boolean {
    return Object.entries(t).every(([k, v]) => this.topology[k] === v);
  }

  /** Metadata for listing: a damaged file is reported as an abnormal volume, never hidden or recreated. */
  private async readMetaForListing(id: string): Promise<VolumeMeta | undefined> {
    try {
      return await this.pool.readMeta(id);
    } catch (e) {
      if (!isCsiError(e, 'FAILED_PRECONDITION')) throw e;
      const size = await stat(this.pool.imagePath(id)).then(
        (s) => s.size,
        () => 0,
      );
      return {
        version: 1,
        id,
        name: '',
        capacityBytes: size,
        accessType: 'mount',
        fsType: '',
        parameters: {},
        createdAt: '',
        damaged: e.message,
      } as VolumeMeta & { damaged: string };
    }
  }

  private async conditionOf(meta: VolumeMeta & { damaged?: string }): Promise<VolumeCondition> {
    if (meta.damaged) return { abnormal: true, message: meta.damaged };
    try {
      const s = await stat(this.pool.imagePath(meta.id));
      if (s.size < meta.capacityBytes)
        return { abnormal: true, message: `backing file is ${s.size} bytes, smaller than the volume (${meta.capacityBytes})` };
    } catch {
      const devices = await loopDevicesOf(this.pool.imagePath(meta.id));
      if (devices.length > 0) {
        return {
          abnormal: true,
          message: `backing file ${this.pool.imagePath(meta.id)} was deleted while attached to ${devices.join(', ')}: its data survives only until the device is detached; copy it off now`,
        };
      }
      return { abnormal: true, message: `backing file ${this.pool.imagePath(meta.id)} is missing: the volume's data is gone` };
    }
    return { abnormal: false, message: 'volume is healthy' };
  }

  private toVolume(meta: VolumeMeta, devices: string[], condition: VolumeCondition | undefined): Volume {
    return {
      id: meta.id,
      name: meta.name,
      capacityBytes: meta.capacityBytes,
      parameters: meta.parameters,
      context: meta.accessType === 'mount' ? { fsType: meta.fsType } : {},
      accessibleTopology: [this.topology],
      accessType: meta.accessType,
      ...(meta.source ? { source: meta.source } : {}),
      publishedNodes: devices.length > 0 ? [this.config.nodeId] : [],
      ...(condition ? { condition } : {}),
    };
  }
}

/** The processes of other mount namespaces holding these devices, when nothing in ours mounts them (else []). */
async function heldElsewhereOnly(devices: string[]): Promise<number[]> {
  for (const d of devices) if ((await mountsOfSource(d)).length > 0) return [];
  return [...new Set((await Promise.all(devices.map(otherNamespaceHolders))).flat())];
}
