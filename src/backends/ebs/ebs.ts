import { createHash } from 'node:crypto';
import {
  BLOCK_NODE_REQUIREMENTS,
  sliceAfter,
  type AccessType,
  type Backend,
  type BackendFeatures,
  type CapacityArgs,
  type CapacityInfo,
  type CapacityOps,
  type VolumeCapability,
  type CreateSnapshotArgs,
  type CreateVolumeArgs,
  type ExpandOps,
  type ExpandResult,
  type ListRange,
  type ModifyOps,
  type NodeInfo,
  type NodeRequirements,
  type NodeSource,
  type NodeVolumeArgs,
  type PublishOps,
  type Snapshot,
  type SnapshotFilter,
  type SnapshotOps,
  type TopologyRequirement,
  type Volume,
} from '../backend.js';
import { faultPoint } from '../../faults.js';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  isCsiError,
  notFound,
  outOfRange,
  resourceExhausted,
  CsiError,
  unavailable,
} from '../../errors.js';
import { VolumeBatcher } from './batcher.js';
import { ebsCapacity } from './capacity.js';
import { DeviceAllocator } from './devices.js';
import { Ec2, type EbsInstance, type EbsSnapshot, type EbsVolume, type ModifyVolumeInput } from './ec2.js';
import { fetchInstanceIdentity, type InstanceIdentity } from './imds.js';
import { attachLimitFor } from './limits.js';
import { ModifyMerger } from './modify.js';
import { findDevice, VOLUME_ID, waitForDevice, type DeviceRoots } from './nvme.js';
import {
  CREATE_PARAMETER_KEYS,
  iopsFor,
  MUTABLE_PARAMETER_KEYS,
  parseModifySpec,
  parseTag,
  parseVolumeSpec,
  SIZE_LIMITS_GIB,
  sizeForType,
  TAG_PARAMETER_PREFIX,
  type VolumeType,
} from './params.js';

const GiB = 1024 ** 3;
export const ZONE_TOPOLOGY_KEY = 'topology.rexcsi.io/zone';
export const TAG_VOLUME_NAME = 'CSIVolumeName';
export const TAG_SNAPSHOT_NAME = 'CSIVolumeSnapshotName';
export const TAG_CLUSTER = 'rexcsi.io/cluster';
const TAG_ACCESS_TYPE = 'rexcsi.io/access-type';
const TAG_FS_TYPE = 'rexcsi.io/fs-type';
/** CreateVolume parameters as JSON, split over tags of at most 256 characters: parameters.0, parameters.1, ... */
const TAG_PARAMETERS = 'rexcsi.io/parameters';
/** Set by a node that attached the volume itself (--node-attach), so its NodeUnstage detaches it, even after a restart. */
export const TAG_NODE_ATTACHED = 'rexcsi.io/node-attached';
/** rexcsi.io/publish-mode/<instance id> = ro | rw, while published there */
const TAG_PUBLISH_MODE = 'rexcsi.io/publish-mode/';
const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;
const ACTIVE_ATTACHMENT = new Set(['attaching', 'attached', 'busy']);
const GONE_STATES = new Set(['deleting', 'deleted']);
const DEAD_INSTANCE_STATES = new Set(['stopped', 'terminated', 'shutting-down']);

/** The block path only: the device is an NVMe disk the hypervisor attaches, found in /dev/disk/by-id and sysfs. */
export const EBS_NODE_REQUIREMENTS: NodeRequirements = BLOCK_NODE_REQUIREMENTS;

export interface EbsConfig {
  region: string;
  endpoint?: string | undefined;
  instanceId?: string | undefined;
  zone?: string | undefined;
  clusterTag: string;
  nodeAttach: boolean;
  preempt: boolean;
  /** attachments an instance takes, root included; undefined = by instance type */
  attachLimit?: number | undefined;
  /** NodeGetInfo's max_volumes_per_node; 0 = attach limit minus the root volume */
  maxVolumesPerNode: number;
  roots: DeviceRoots;
  /** longest wait for a volume to become available / attached / detached */
  waitTimeoutMs: number;
  /** longest wait for an attached volume's device to appear on the node */
  deviceTimeoutMs: number;
  minPollMs?: number;
  modifyWindowMs?: number;
}

// Amazon EBS volumes through the EC2 API. The truth lives in EC2: a volume's CSI name, parameters, access
// type and filesystem are tags on it, so a controller can restart, or run twice, and find everything.
export class EbsBackend implements Backend {
  readonly name = 'ebs';
  readonly features: BackendFeatures;
  readonly node = EBS_NODE_REQUIREMENTS;
  readonly capacity: CapacityOps = { getCapacity: (args) => this.getCapacity(args) };
  readonly publish: PublishOps = {
    controllerPublish: (id, nodeId, readOnly, capability) => this.controllerPublish(id, nodeId, readOnly, capability),
    controllerUnpublish: (id, nodeId) => this.controllerUnpublish(id, nodeId),
  };
  // the hypervisor grows the attached device by itself: nothing to refresh on the node
  readonly expand: ExpandOps = { mode: 'online', expandVolume: (id, bytes, accessType) => this.expandVolume(id, bytes, accessType) };
  readonly modify: ModifyOps = {
    mutableParameterKeys: MUTABLE_PARAMETER_KEYS,
    modifyVolume: (id, parameters) => this.modifyVolume(id, parameters),
  };
  readonly snapshots: SnapshotOps = {
    parameterKeys: [`${TAG_PARAMETER_PREFIX}*`],
    isId: (id) => SNAPSHOT_ID.test(id),
    create: (args) => this.createSnapshot(args),
    findByName: (name) => this.findSnapshotByName(name),
    get: (id) => this.getSnapshot(id),
    delete: (id) => this.deleteSnapshot(id),
    list: (filter, range) => this.listSnapshots(filter, range),
  };
  readonly ec2: Ec2;
  readonly batcher: VolumeBatcher;
  readonly merger: ModifyMerger;
  private readonly devices = new DeviceAllocator();
  private readonly instanceLocks = new Map<string, Promise<unknown>>();
  private identityPromise: Promise<InstanceIdentity> | undefined;
  private probedAt = 0;

  constructor(private readonly config: EbsConfig) {
    this.ec2 = new Ec2({ region: config.region, endpoint: config.endpoint });
    this.batcher = new VolumeBatcher(this.ec2, { minPollMs: config.minPollMs ?? 250 });
    this.merger = new ModifyMerger((id, input) => this.applyModification(id, input), config.modifyWindowMs ?? 200);
    this.features = {
      accessTypes: ['mount', 'block'],
      accessModes: [
        'SINGLE_NODE_WRITER',
        'SINGLE_NODE_READER_ONLY',
        'SINGLE_NODE_SINGLE_WRITER',
        'SINGLE_NODE_MULTI_WRITER',
        'MULTI_NODE_MULTI_WRITER',
      ],
      fsTypes: ['ext4', 'xfs'],
      defaultFsType: 'ext4',
      nodeSource: 'block',
      listVolumesPublishedNodes: true,
      volumeCondition: false,
      minVolumeBytes: GiB,
      maxVolumeBytes: 65536 * GiB,
      allocationUnitBytes: GiB,
      defaultVolumeBytes: GiB,
      parameterKeys: CREATE_PARAMETER_KEYS,
      topologyKeys: [ZONE_TOPOLOGY_KEY],
      cloneFromVolume: false,
    };
  }

  /** Reachability of the EC2 endpoint, checked at most once a minute (Probe is called often). */
  async probe(): Promise<void> {
    if (Date.now() - this.probedAt < 60_000) return;
    try {
      await this.ec2.firstZone();
    } catch (e) {
      // An answer that refuses the call still proves the API is there; the calls that need it will say so.
      if (!isCsiError(e, 'PERMISSION_DENIED')) throw e;
    }
    this.probedAt = Date.now();
  }

  // ---- controller side: volumes

  async createVolume(args: CreateVolumeArgs): Promise<Volume> {
    // mutable_parameters (type, iops, throughput) given at creation are the volume's first values of them.
    const spec = parseVolumeSpec({ ...args.parameters, ...(args.mutableParameters ?? {}) });
    const multiAttach = args.capabilities.some((c) => c.accessMode === 'MULTI_NODE_MULTI_WRITER');
    if (multiAttach && (args.accessType !== 'block' || spec.type !== 'io2')) {
      throw invalidArgument('MULTI_NODE_MULTI_WRITER (EBS Multi-Attach) is only possible for block volumes of type io2');
    }
    const zone = await this.chooseZone(args.topology);
    let sizeGiB = sizeForType(spec.type, args.capacityBytes, args.limitBytes);
    let snapshotId: string | undefined;
    if (args.source?.kind === 'volume') throw invalidArgument('the ebs backend cannot clone a volume; create it from a snapshot');
    if (args.source?.kind === 'snapshot') {
      const snap = await this.describeSnapshot(args.source.id);
      if (!snap) throw notFound(`snapshot ${args.source.id} does not exist`);
      if (snap.state !== 'completed') throw unavailable(`snapshot ${snap.id} is ${snap.state}, not completed yet; retry later`);
      if (snap.sizeGiB > sizeGiB) {
        if (args.limitBytes > 0 && snap.sizeGiB * GiB > args.limitBytes) {
          throw outOfRange(`snapshot ${snap.id} holds ${snap.sizeGiB} GiB, more than limit_bytes ${args.limitBytes}`);
        }
        sizeGiB = snap.sizeGiB;
      }
      snapshotId = snap.id;
    }
    const iops = iopsFor(spec, sizeGiB);
    const tags: Record<string, string> = {
      ...spec.tags,
      [TAG_VOLUME_NAME]: args.name,
      [TAG_CLUSTER]: this.config.clusterTag,
      [TAG_ACCESS_TYPE]: args.accessType,
      ...(args.fsType ? { [TAG_FS_TYPE]: args.fsType } : {}),
      ...parameterTags(args.parameters),
    };
    const input = {
      sizeGiB,
      zone,
      type: spec.type,
      iops,
      throughput: spec.throughput,
      encrypted: spec.encrypted,
      kmsKeyId: spec.kmsKeyId,
      snapshotId,
      multiAttach,
      tags,
    };
    // The ClientToken protects a create retried after a lost answer. EC2 answers a reused token with the
    // volume it made then, even one deleted since: such an answer means "take the next token".
    for (let attempt = 0; attempt < 3; attempt++) {
      let created: EbsVolume;
      try {
        created = await this.ec2.createVolume({ ...input, clientToken: clientToken(this.config.clusterTag, args.name, attempt) });
      } catch (e) {
        if (isCsiError(e, 'ALREADY_EXISTS')) continue; // the token was used with other parameters
        throw e;
      }
      await faultPoint('ebs.create.after-create-volume');
      if (GONE_STATES.has(created.state)) continue;
      const ready = await this.waitUntilCreated(created.id).catch(async (e: unknown) => {
        // A volume that failed to come up is removed so the retry starts clean.
        await this.ec2.deleteVolume(created.id).catch(() => undefined);
        throw e;
      });
      return this.toVolume(ready);
    }
    throw unavailable(`EC2 keeps answering CreateVolume for ${JSON.stringify(args.name)} with a deleted volume; retry later`);
  }

  /** Waits until a new volume is usable; UNAVAILABLE when it fails or is gone. */
  private async waitUntilCreated(id: string) {
    const ready = await this.batcher.waitFor(
      id,
      'available',
      (v) => v?.state === 'available' || v?.state === 'in-use',
      this.config.waitTimeoutMs,
      (v) =>
        !v || GONE_STATES.has(v.state) || v.state === 'error'
          ? unavailable(`volume ${id} went to state ${v?.state ?? 'deleted'} while being created`)
          : undefined,
    );
    return ready!;
  }

  async deleteVolume(id: string): Promise<void> {
    if (!VOLUME_ID.test(id)) return;
    const volume = await this.batcher.describe(id);
    if (!volume || GONE_STATES.has(volume.state)) return;
    if (!this.isManaged(volume))
      throw failedPrecondition(
        `volume ${id} is not managed by this plugin (no ${TAG_CLUSTER}=${this.config.clusterTag} tag); not deleting it`,
      );
    const attached = volume.attachments.filter((a) => ACTIVE_ATTACHMENT.has(a.state) || a.state === 'detaching');
    if (attached.length > 0) {
      throw failedPrecondition(
        `volume ${id} is attached to ${attached.map((a) => `${a.instanceId} (${a.state})`).join(', ')}; unpublish it first`,
      );
    }
    try {
      await this.ec2.deleteVolume(id);
    } catch (e) {
      if (isCsiError(e, 'NOT_FOUND')) return;
      throw e;
    }
    await faultPoint('ebs.delete.after-delete-volume');
  }

  async getVolume(id: string): Promise<Volume | undefined> {
    const volume = await this.describeManaged(id);
    return volume ? this.toVolume(volume) : undefined;
  }

  async findVolumeByName(name: string): Promise<Volume | undefined> {
    const found = (await this.ec2.describeVolumes({ tags: { [TAG_VOLUME_NAME]: name, [TAG_CLUSTER]: this.config.clusterTag } }))
      .filter((v) => !GONE_STATES.has(v.state))
      .sort((a, b) => a.id.localeCompare(b.id));
    const volume = found[0];
    if (!volume) return undefined;
    if (volume.state !== 'creating') return this.toVolume(volume);
    // A create that crashed (or timed out) before its wait: the retry must not hand out a volume that is
    // not usable yet, so it waits for it as the first call would have.
    return this.toVolume(await this.waitUntilCreated(volume.id));
  }

  isVolumeId(id: string): boolean {
    return VOLUME_ID.test(id);
  }

  async listVolumes(range: ListRange): Promise<Volume[]> {
    const volumes = (await this.ec2.describeVolumes({ tags: { [TAG_CLUSTER]: this.config.clusterTag } })).filter(
      (v) => !GONE_STATES.has(v.state),
    );
    return sliceAfter(volumes, range).map((v) => this.toVolume(v));
  }

  /** Elastic: the largest volume of the parameters' type (see capacity.ts for why, and for Mesos). */
  async getCapacity(args: CapacityArgs): Promise<CapacityInfo> {
    return ebsCapacity(args.parameters, args.capabilities, args.topology?.[ZONE_TOPOLOGY_KEY], this.config.region);
  }

  // ---- controller side: attach and detach

  async controllerPublish(id: string, nodeId: string, readOnly: boolean, capability: VolumeCapability): Promise<Record<string, string>> {
    const volume = await this.describeManaged(id);
    if (!volume) throw notFound(`volume ${id} does not exist`);
    const instance = await this.ec2.describeInstance(nodeId);
    if (!instance) throw notFound(`node ${JSON.stringify(nodeId)} is not an EC2 instance in ${this.config.region}`);
    // EBS has no read-only attachment (the node mounts read-only); the mode is recorded on the volume so a
    // second publish to the same node with the other mode is told apart.
    const modeTag = `${TAG_PUBLISH_MODE}${instance.id}`;
    const mode = readOnly ? 'ro' : 'rw';
    const recorded = volume.tags[modeTag];
    const attachedHere = volume.attachments.some((a) => a.instanceId === instance.id && ACTIVE_ATTACHMENT.has(a.state));
    if (attachedHere && recorded !== undefined && recorded !== mode) {
      throw alreadyExists(`volume ${id} is already published to ${instance.id} ${recorded === 'ro' ? 'read-only' : 'read-write'}`);
    }
    if (recorded !== mode) await this.ec2.createTags(id, { [modeTag]: mode });
    await faultPoint('ebs.publish.after-mode-tag');
    const device = await this.attach(volume, instance, capability.accessType === 'block');
    return { devicePath: device };
  }

  async controllerUnpublish(id: string, nodeId: string): Promise<void> {
    if (!VOLUME_ID.test(id)) return;
    const volume = await this.batcher.describe(id);
    if (!volume) return; // gone: detached as far as anyone can tell
    const targets = volume.attachments.filter((a) => a.state !== 'detached' && (nodeId === '' || a.instanceId === nodeId));
    await Promise.all(targets.map((a) => this.detach(id, a.instanceId, false)));
    await faultPoint('ebs.unpublish.after-detach');
    const modeTags = Object.keys(volume.tags).filter(
      (k) => k.startsWith(TAG_PUBLISH_MODE) && (nodeId === '' || k === `${TAG_PUBLISH_MODE}${nodeId}`),
    );
    if (modeTags.length > 0) await this.ec2.deleteTags(id, modeTags).catch(() => undefined);
  }

  // ---- controller side: expansion and modification

  async expandVolume(id: string, capacityBytes: number, accessType: AccessType): Promise<ExpandResult> {
    const volume = await this.describeManaged(id);
    if (!volume) throw notFound(`volume ${id} does not exist`);
    const sizeGiB = Math.ceil(capacityBytes / GiB);
    const nodeExpansionRequired = accessType === 'mount';
    if (volume.sizeGiB >= sizeGiB) return { capacityBytes: volume.sizeGiB * GiB, nodeExpansionRequired };
    const max = SIZE_LIMITS_GIB[volume.type as VolumeType]?.max ?? 16384;
    if (sizeGiB > max) throw outOfRange(`a ${volume.type} volume is at most ${max} GiB; ${sizeGiB} GiB was asked for`);
    await this.merger.request(id, { sizeGiB });
    return { capacityBytes: sizeGiB * GiB, nodeExpansionRequired };
  }

  async modifyVolume(id: string, mutableParameters: Record<string, string>): Promise<void> {
    const spec = parseModifySpec(mutableParameters);
    const volume = await this.describeManaged(id);
    if (!volume) throw notFound(`volume ${id} does not exist`);
    await this.merger.request(id, spec);
  }

  /** One ModifyVolume with what actually changes, then a wait until the change took effect. */
  private async applyModification(id: string, wanted: ModifyVolumeInput): Promise<void> {
    const volume = await this.describeManaged(id);
    if (!volume) throw notFound(`volume ${id} does not exist`);
    const change: ModifyVolumeInput = {};
    if (wanted.sizeGiB !== undefined && wanted.sizeGiB > volume.sizeGiB) change.sizeGiB = wanted.sizeGiB;
    if (wanted.type !== undefined && wanted.type !== volume.type) change.type = wanted.type;
    if (wanted.iops !== undefined && wanted.iops !== volume.iops) change.iops = wanted.iops;
    if (wanted.throughput !== undefined && wanted.throughput !== volume.throughput) change.throughput = wanted.throughput;
    if (Object.keys(change).length === 0) return;
    const finalType = change.type ?? volume.type;
    if (change.throughput !== undefined && finalType !== 'gp3')
      throw invalidArgument(`throughput can only be set on gp3 volumes; volume ${id} is ${finalType}`);
    if (change.iops !== undefined && !['gp3', 'io1', 'io2'].includes(finalType)) {
      throw invalidArgument(`iops can only be set on gp3, io1 and io2 volumes; volume ${id} is ${finalType}`);
    }
    await this.ec2.modifyVolume(id, change);
    await this.waitForModification(id);
  }

  /** "optimizing" already serves the new size and performance; only "modifying" must be waited out. */
  private async waitForModification(id: string): Promise<void> {
    const deadline = Date.now() + this.config.waitTimeoutMs;
    for (let delay = this.config.minPollMs ?? 250; ; delay = Math.min(delay * 2, 5000)) {
      const mod = await this.ec2.describeModification(id);
      if (!mod || mod.state === 'optimizing' || mod.state === 'completed') return;
      if (mod.state === 'failed') throw failedPrecondition(`EC2 could not modify volume ${id}: ${mod.message || 'modification failed'}`);
      if (Date.now() + delay > deadline) throw unavailable(`the modification of volume ${id} is still ${mod.state}; retry later`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  // ---- snapshots

  async createSnapshot(args: CreateSnapshotArgs): Promise<Snapshot> {
    const tags: Record<string, string> = {};
    for (const [key, value] of Object.entries(args.parameters)) {
      if (key.startsWith(TAG_PARAMETER_PREFIX)) {
        const [k, v] = parseTag(key, value);
        tags[k] = v;
      }
    }
    const existing = await this.findSnapshotByName(args.name);
    if (existing) {
      if (existing.sourceVolumeId !== args.sourceVolumeId) {
        throw alreadyExists(`snapshot ${JSON.stringify(args.name)} already exists (${existing.id}) of volume ${existing.sourceVolumeId}`);
      }
      return existing;
    }
    const volume = await this.describeManaged(args.sourceVolumeId);
    if (!volume) throw notFound(`volume ${args.sourceVolumeId} does not exist`);
    const snap = await this.ec2.createSnapshot(
      volume.id,
      { ...tags, [TAG_SNAPSHOT_NAME]: args.name, [TAG_CLUSTER]: this.config.clusterTag },
      `rexcsi snapshot ${args.name}`,
    );
    return toSnapshot(snap);
  }

  async findSnapshotByName(name: string): Promise<Snapshot | undefined> {
    const found = await this.ec2.describeSnapshots({ tags: { [TAG_SNAPSHOT_NAME]: name, [TAG_CLUSTER]: this.config.clusterTag } });
    const first = found.sort((a, b) => a.id.localeCompare(b.id))[0];
    return first ? toSnapshot(first) : undefined;
  }

  async getSnapshot(id: string): Promise<Snapshot | undefined> {
    const snap = await this.describeSnapshot(id);
    return snap && snap.tags[TAG_CLUSTER] === this.config.clusterTag ? toSnapshot(snap) : undefined;
  }

  async deleteSnapshot(id: string): Promise<void> {
    const snap = await this.describeSnapshot(id);
    if (!snap) return;
    if (snap.tags[TAG_CLUSTER] !== this.config.clusterTag)
      throw failedPrecondition(`snapshot ${id} is not managed by this plugin; not deleting it`);
    try {
      await this.ec2.deleteSnapshot(id);
    } catch (e) {
      if (isCsiError(e, 'NOT_FOUND')) return;
      throw e;
    }
  }

  async listSnapshots(filter: SnapshotFilter, range: ListRange): Promise<Snapshot[]> {
    let snaps: EbsSnapshot[];
    if (filter.snapshotId !== undefined && !SNAPSHOT_ID.test(filter.snapshotId)) snaps = [];
    else if (filter.sourceVolumeId !== undefined && !VOLUME_ID.test(filter.sourceVolumeId)) snaps = [];
    else {
      snaps = await this.ec2.describeSnapshots({
        tags: { [TAG_CLUSTER]: this.config.clusterTag },
        ...(filter.snapshotId !== undefined ? { ids: [filter.snapshotId] } : {}),
        ...(filter.sourceVolumeId !== undefined ? { volumeId: filter.sourceVolumeId } : {}),
      });
    }
    return sliceAfter(snaps, range).map(toSnapshot);
  }

  // ---- node side

  async nodeInfo(): Promise<NodeInfo> {
    const me = await this.identity();
    let max = this.config.maxVolumesPerNode;
    if (max <= 0) max = (this.config.attachLimit ?? attachLimitFor(me.instanceType)) - 1; // the root volume takes one
    return { nodeId: me.instanceId, maxVolumesPerNode: Math.max(max, 1), topology: { [ZONE_TOPOLOGY_KEY]: me.zone } };
  }

  async openVolume(args: NodeVolumeArgs): Promise<NodeSource> {
    const id = args.volumeId;
    if (!VOLUME_ID.test(id)) throw notFound(`volume ${JSON.stringify(id)} is not an EBS volume id`);
    const hint = args.publishContext.devicePath;
    let device = await findDevice(this.config.roots, id, hint);
    if (!device) {
      if (hint) {
        device = await waitForDevice(this.config.roots, id, hint, this.config.deviceTimeoutMs); // attached; udev may lag
      } else if (this.config.nodeAttach) {
        const attachedAs = await this.attachHere(id);
        device = await waitForDevice(this.config.roots, id, attachedAs, this.config.deviceTimeoutMs);
      } else {
        throw failedPrecondition(
          `volume ${id} is not attached to this node and the request has no publish_context (ControllerPublishVolume was not called); ` +
            'publish it first, or run the node plugin with --node-attach (Mesos external volumes)',
        );
      }
    }
    const fsType = args.volumeContext.fsType ?? '';
    let mayFormat = fsType !== '';
    if (!mayFormat && this.config.nodeAttach) {
      const volume = await this.batcher.describe(id);
      mayFormat = volume?.tags[TAG_ACCESS_TYPE] === 'mount';
      return { kind: 'block', device, mayFormat, fsType: volume?.tags[TAG_FS_TYPE] ?? '' };
    }
    return { kind: 'block', device, mayFormat, fsType };
  }

  async locateVolume(volumeId: string): Promise<NodeSource | undefined> {
    const device = await findDevice(this.config.roots, volumeId);
    return device ? { kind: 'block', device, mayFormat: false, fsType: '' } : undefined;
  }

  /** Detaches what this node attached itself (--node-attach); a controller-published volume is left to ControllerUnpublish. */
  async closeVolume(volumeId: string): Promise<void> {
    if (!this.config.nodeAttach || !VOLUME_ID.test(volumeId)) return;
    const me = await this.identity();
    const volume = await this.batcher.describe(volumeId);
    if (!volume || volume.tags[TAG_NODE_ATTACHED] !== me.instanceId) return;
    if (volume.attachments.some((a) => a.instanceId === me.instanceId && a.state !== 'detached'))
      await this.detach(volumeId, me.instanceId, false);
    await faultPoint('ebs.node-detach.after-detach');
    await this.ec2.deleteTags(volumeId, [TAG_NODE_ATTACHED]);
  }

  async volumeExists(volumeId: string): Promise<boolean> {
    if (!VOLUME_ID.test(volumeId)) return false;
    try {
      if (await findDevice(this.config.roots, volumeId)) return true;
    } catch {
      return true; // a device claims to be it; openVolume will refuse it with the reason
    }
    try {
      return (await this.describeManaged(volumeId)) !== undefined;
    } catch (e) {
      // A node without EC2 permissions cannot tell; let the call go on and fail where the device is missing.
      if (isCsiError(e, 'PERMISSION_DENIED') || isCsiError(e, 'FAILED_PRECONDITION')) return true;
      throw e;
    }
  }

  // ---- attach / detach, shared by ControllerPublish and --node-attach

  /** Attaches the volume to the instance (or finds it attached there) and waits until it is; returns the device name. */
  private async attach(volume: EbsVolume, instance: EbsInstance, block: boolean): Promise<string> {
    if (volume.zone !== instance.zone) {
      throw failedPrecondition(
        `volume ${volume.id} is in ${volume.zone} and instance ${instance.id} in ${instance.zone}; EBS attaches only within a zone`,
      );
    }
    const mine = volume.attachments.find((a) => a.instanceId === instance.id && ACTIVE_ATTACHMENT.has(a.state));
    if (mine) {
      await this.waitAttached(volume.id, instance.id);
      return mine.device;
    }
    const elsewhere = volume.attachments.filter((a) => a.instanceId !== instance.id && a.state !== 'detached');
    if (elsewhere.length > 0 && !(volume.multiAttach && block)) {
      throw failedPrecondition(
        `volume ${volume.id} is attached to ${elsewhere.map((a) => `${a.instanceId} (${a.state})`).join(', ')}; ` +
          'detach it there first (only io2 block volumes with Multi-Attach may be attached to several instances)',
      );
    }
    const device = await this.withInstanceLock(instance.id, async () => {
      // Counted under the lock, with the names other attaches here have reserved, so parallel attaches
      // neither exceed the limit nor pick the same name.
      const fresh = (await this.ec2.describeInstance(instance.id)) ?? instance;
      const limit = this.config.attachLimit ?? attachLimitFor(fresh.type);
      const used =
        fresh.devices.length +
        this.devices.reservedCount(
          instance.id,
          fresh.devices.map((d) => d.device),
        );
      if (used >= limit) {
        throw resourceExhausted(
          `instance ${instance.id} (${fresh.type || 'unknown type'}) has ${used} of its ${limit} volume attachments in use; detach a volume or use another node`,
        );
      }
      const name = this.devices.allocate(
        instance.id,
        fresh.devices.map((d) => d.device),
      );
      try {
        await this.ec2.attachVolume(volume.id, instance.id, name);
      } catch (e) {
        this.devices.release(instance.id, name);
        throw e;
      }
      return name;
    });
    try {
      await faultPoint('ebs.attach.after-attach-volume');
      await this.waitAttached(volume.id, instance.id);
    } finally {
      this.devices.release(instance.id, device);
    }
    return device;
  }

  private async waitAttached(volumeId: string, instanceId: string): Promise<void> {
    await this.batcher.waitFor(
      volumeId,
      `attached to ${instanceId}`,
      (v) => v?.attachments.some((a) => a.instanceId === instanceId && a.state === 'attached') ?? false,
      this.config.waitTimeoutMs,
      (v) => {
        if (!v) return notFound(`volume ${volumeId} disappeared while being attached`);
        const ours = v.attachments.find((a) => a.instanceId === instanceId);
        if (!ours || ours.state === 'detached' || ours.state === 'detaching') {
          return new CsiError(
            'ABORTED',
            `the attachment of volume ${volumeId} to ${instanceId} went away while attaching (now ${describeAttachments(v)}); retry`,
          );
        }
        return undefined;
      },
    );
  }

  private async detach(volumeId: string, instanceId: string, force: boolean): Promise<void> {
    try {
      await this.ec2.detachVolume(volumeId, instanceId, force);
    } catch (e) {
      // Not attached there (any more) is what we want; IncorrectState means it is already detaching.
      if (!isCsiError(e, 'NOT_FOUND') && !isCsiError(e, 'FAILED_PRECONDITION')) throw e;
    }
    await faultPoint('ebs.detach.after-detach-volume');
    await this.batcher.waitFor(
      volumeId,
      `detached from ${instanceId}`,
      (v) => !v || !v.attachments.some((a) => a.instanceId === instanceId && a.state !== 'detached'),
      this.config.waitTimeoutMs,
    );
  }

  /** --node-attach: the node attaches the volume to itself (Mesos calls NodeStage without ControllerPublish). */
  private async attachHere(volumeId: string): Promise<string> {
    const me = await this.identity();
    const volume = await this.describeManaged(volumeId);
    if (!volume) throw notFound(`volume ${volumeId} does not exist`);
    for (const a of volume.attachments.filter((x) => x.instanceId !== me.instanceId && x.state !== 'detached')) {
      if (volume.multiAttach) break;
      const other = await this.ec2.describeInstance(a.instanceId);
      const dead = !other || DEAD_INSTANCE_STATES.has(other.state);
      if (!dead)
        throw failedPrecondition(
          `volume ${volumeId} is attached to instance ${a.instanceId}, which is ${other.state}; it cannot be attached here`,
        );
      if (!this.config.preempt) {
        throw failedPrecondition(
          `volume ${volumeId} is still attached to instance ${a.instanceId} (${other?.state ?? 'gone'}); run with --preempt to force-detach it from a stopped instance`,
        );
      }
      await this.detach(volumeId, a.instanceId, true);
    }
    // Tagged before attaching: a crash after the attach still leaves the record that this node must detach it.
    await this.ec2.createTags(volumeId, { [TAG_NODE_ATTACHED]: me.instanceId });
    await faultPoint('ebs.node-attach.after-tag');
    const instance = await this.ec2.describeInstance(me.instanceId);
    if (!instance) throw failedPrecondition(`this node's instance ${me.instanceId} is unknown to EC2 in ${this.config.region}`);
    const fresh = (await this.batcher.describe(volumeId)) ?? volume;
    return this.attach(fresh, instance, false);
  }

  private withInstanceLock<T>(instanceId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.instanceLocks.get(instanceId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.instanceLocks.set(instanceId, settled);
    void settled.then(() => {
      if (this.instanceLocks.get(instanceId) === settled) this.instanceLocks.delete(instanceId);
    });
    return next;
  }

  // ---- helpers

  /** This node's instance id, zone and type: from --instance-id/--zone, else IMDSv2. */
  identity(): Promise<InstanceIdentity> {
    this.identityPromise ??= (async () => {
      const { instanceId, zone } = this.config;
      if (instanceId && zone) {
        const instance = await this.ec2.describeInstance(instanceId).catch(() => undefined);
        return { instanceId, zone, instanceType: instance?.type ?? '' };
      }
      const found = await fetchInstanceIdentity();
      return { instanceId: instanceId || found.instanceId, zone: zone || found.zone, instanceType: found.instanceType };
    })();
    this.identityPromise.catch(() => {
      this.identityPromise = undefined; // try again on the next call
    });
    return this.identityPromise;
  }

  private async chooseZone(topology: TopologyRequirement | undefined): Promise<string> {
    const zones = (list: Record<string, string>[] | undefined) =>
      (list ?? []).map((t) => t[ZONE_TOPOLOGY_KEY]).filter((z): z is string => Boolean(z));
    const requisite = zones(topology?.requisite);
    const preferred = zones(topology?.preferred);
    const pick = preferred.find((z) => requisite.length === 0 || requisite.includes(z)) ?? requisite[0];
    if (pick) return pick;
    if (this.config.zone) return this.config.zone;
    const first = await this.ec2.firstZone();
    if (!first) throw unavailable(`EC2 lists no available zone in ${this.config.region}`);
    return first;
  }

  private isManaged(v: EbsVolume): boolean {
    return v.tags[TAG_CLUSTER] === this.config.clusterTag;
  }

  private async describeManaged(id: string): Promise<EbsVolume | undefined> {
    if (!VOLUME_ID.test(id)) return undefined;
    const v = await this.batcher.describe(id);
    return v && this.isManaged(v) && !GONE_STATES.has(v.state) ? v : undefined;
  }

  private async describeSnapshot(id: string): Promise<EbsSnapshot | undefined> {
    if (!SNAPSHOT_ID.test(id)) return undefined;
    try {
      return (await this.ec2.describeSnapshots({ ids: [id] }))[0];
    } catch (e) {
      if (isCsiError(e, 'NOT_FOUND')) return undefined;
      throw e;
    }
  }

  private toVolume(v: EbsVolume): Volume {
    const accessType = v.tags[TAG_ACCESS_TYPE] === 'block' ? 'block' : 'mount';
    const fsType = v.tags[TAG_FS_TYPE] ?? '';
    return {
      id: v.id,
      name: v.tags[TAG_VOLUME_NAME] ?? '',
      capacityBytes: v.sizeGiB * GiB,
      parameters: readParameterTags(v.tags),
      context: accessType === 'mount' && fsType ? { fsType } : {},
      accessibleTopology: [{ [ZONE_TOPOLOGY_KEY]: v.zone }],
      accessType,
      ...(v.snapshotId ? { source: { kind: 'snapshot' as const, id: v.snapshotId } } : {}),
      publishedNodes: v.attachments.filter((a) => ACTIVE_ATTACHMENT.has(a.state)).map((a) => a.instanceId),
    };
  }
}

function toSnapshot(s: EbsSnapshot): Snapshot {
  return {
    id: s.id,
    name: s.tags[TAG_SNAPSHOT_NAME] ?? '',
    sourceVolumeId: s.volumeId,
    sizeBytes: s.sizeGiB * GiB,
    creationTime: s.startTime,
    readyToUse: s.state === 'completed',
  };
}

function describeAttachments(v: EbsVolume): string {
  return v.attachments.map((a) => `${a.instanceId} ${a.state}`).join(', ') || 'no attachment';
}

/** 64 characters (EC2's limit), the same for the same name, cluster and attempt. */
export function clientToken(cluster: string, name: string, attempt: number): string {
  return createHash('sha256').update(`${cluster}\0${name}\0${attempt}`).digest('hex');
}

const TAG_VALUE_CHARS = 255;

function parameterTags(parameters: Record<string, string>): Record<string, string> {
  const json = JSON.stringify(Object.fromEntries(Object.entries(parameters).sort(([a], [b]) => a.localeCompare(b))));
  const tags: Record<string, string> = {};
  for (let i = 0; i * TAG_VALUE_CHARS < json.length || i === 0; i++)
    tags[`${TAG_PARAMETERS}.${i}`] = json.slice(i * TAG_VALUE_CHARS, (i + 1) * TAG_VALUE_CHARS);
  return tags;
}

function readParameterTags(tags: Record<string, string>): Record<string, string> {
  let json = '';
  for (let i = 0; tags[`${TAG_PARAMETERS}.${i}`] !== undefined; i++) json += tags[`${TAG_PARAMETERS}.${i}`];
  try {
    const parsed = JSON.parse(json || '{}') as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}
