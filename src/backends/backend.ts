import type { LinuxCapability } from '../os/privileges.js';

// The storage layer's contract. A backend knows one storage system and nothing about gRPC or the CSI
// wire format: the protocol layer (src/controller, src/node) validates requests, serialises work per
// volume, checks idempotency and compatibility, pages listings, and derives every advertised capability
// from which optional groups (capacity, publish, expand, modify, snapshots, groupSnapshots) a backend has
// (src/csi/capabilities.ts). docs/backends.md describes the contract and how to add a backend.

export type AccessMode =
  | 'SINGLE_NODE_WRITER'
  | 'SINGLE_NODE_READER_ONLY'
  | 'MULTI_NODE_READER_ONLY'
  | 'MULTI_NODE_SINGLE_WRITER'
  | 'MULTI_NODE_MULTI_WRITER'
  | 'SINGLE_NODE_SINGLE_WRITER'
  | 'SINGLE_NODE_MULTI_WRITER';

/** Every access mode of the spec, for backends that serve them all (network filesystems). */
export const ALL_ACCESS_MODES: readonly AccessMode[] = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'MULTI_NODE_READER_ONLY',
  'MULTI_NODE_SINGLE_WRITER',
  'MULTI_NODE_MULTI_WRITER',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
];

export type AccessType = 'mount' | 'block';

/** A validated volume capability: what the CO asks a volume to be used as. */
export interface VolumeCapability {
  accessType: AccessType;
  accessMode: AccessMode;
  /** mount only; '' when the CO left it to us */
  fsType: string;
  /** mount only; already split on commas and validated */
  mountFlags: string[];
}

export type Topology = Record<string, string>;

export interface TopologyRequirement {
  requisite: Topology[];
  preferred: Topology[];
}

export interface VolumeSource {
  kind: 'snapshot' | 'volume';
  id: string;
}

export interface VolumeCondition {
  abnormal: boolean;
  message: string;
}

/** What a backend knows about one volume. */
export interface Volume {
  id: string;
  /** the CO's name, recorded in the storage system so CreateVolume is idempotent without local state */
  name: string;
  capacityBytes: number;
  /** parameters the volume was created with (as given, validated) */
  parameters: Record<string, string>;
  /** handed to the node in every node call */
  context: Record<string, string>;
  accessibleTopology: Topology[];
  /** the access type it was created for; a block volume is never formatted by the node */
  accessType: AccessType;
  source?: VolumeSource;
  /** nodes the volume is published/attached to right now */
  publishedNodes: string[];
  condition?: VolumeCondition;
}

export interface CreateVolumeArgs {
  name: string;
  /** already rounded and checked against the range by the protocol layer */
  capacityBytes: number;
  limitBytes: number;
  capabilities: VolumeCapability[];
  /** the access type every capability asks for */
  accessType: AccessType;
  /** the filesystem the node will format a mount volume with ('' for block volumes) */
  fsType: string;
  parameters: Record<string, string>;
  topology?: TopologyRequirement;
  source?: VolumeSource;
  secrets: Record<string, string>;
  /** CreateVolume's mutable_parameters (keys already checked against features.mutableParameterKeys) */
  mutableParameters?: Record<string, string>;
}

export interface CapacityArgs {
  capabilities: VolumeCapability[];
  parameters: Record<string, string>;
  topology?: Topology;
}

export interface CapacityInfo {
  availableBytes: number;
  maximumVolumeSize?: number;
  minimumVolumeSize?: number;
}

/** The shape of the volumes a backend makes; what else it can do is said by its optional groups. */
export interface BackendFeatures {
  accessTypes: AccessType[];
  accessModes: AccessMode[];
  /** filesystems a mount volume may be formatted with ([] for filesystem backends) */
  fsTypes: string[];
  defaultFsType: string;
  /** volumes of this backend are block devices the node formats and mounts (loop, ebs), or are mounted as they are (glusterfs, efs) */
  nodeSource: 'block' | 'filesystem';
  /** Volume.publishedNodes is known for every listed volume (LIST_VOLUMES_PUBLISHED_NODES) */
  listVolumesPublishedNodes: boolean;
  /** Volume.condition is filled in (VOLUME_CONDITION) */
  volumeCondition: boolean;
  /** the volume's capacity bounds, in bytes */
  minVolumeBytes: number;
  maxVolumeBytes: number;
  /** size granularity: capacities are rounded up to a multiple of this */
  allocationUnitBytes: number;
  defaultVolumeBytes: number;
  /** keys CreateVolume accepts in `parameters`; any other is INVALID_ARGUMENT */
  parameterKeys: string[];
  /** the topology key volumes and nodes are labelled with, if any */
  topologyKeys: string[];
  /** CreateVolume from another volume (from a snapshot is allowed exactly when the backend has `snapshots`) */
  cloneFromVolume: boolean;
}

/** What a listing is asked for: entries in ascending id order (JavaScript string order) after `afterId`. */
export interface ListRange {
  /** '' = from the first entry */
  afterId: string;
  /** at most this many entries; 0 = all of them */
  limit: number;
}

export interface Snapshot {
  id: string;
  /** the CO's name, recorded in the storage system so CreateSnapshot is idempotent */
  name: string;
  sourceVolumeId: string;
  sizeBytes: number;
  creationTime: Date;
  readyToUse: boolean;
  groupSnapshotId?: string;
}

export interface CreateSnapshotArgs {
  name: string;
  sourceVolumeId: string;
  parameters: Record<string, string>;
  secrets: Record<string, string>;
}

export interface SnapshotFilter {
  snapshotId?: string;
  sourceVolumeId?: string;
}

export interface GroupSnapshot {
  id: string;
  name: string;
  snapshots: Snapshot[];
  creationTime: Date;
  readyToUse: boolean;
}

export interface CreateGroupSnapshotArgs {
  name: string;
  sourceVolumeIds: string[];
  parameters: Record<string, string>;
  secrets: Record<string, string>;
}

export interface ExpandResult {
  capacityBytes: number;
  /** the node must grow the filesystem (NodeExpandVolume) */
  nodeExpansionRequired: boolean;
}

/** A block device the node service formats (if blank) and mounts, or hands out raw. */
export interface BlockSource {
  kind: 'block';
  device: string;
  /** the volume was created for mount access, so a blank device may be formatted; never true for block volumes */
  mayFormat: boolean;
  /** filesystem recorded for the volume at creation, '' when unknown */
  fsType: string;
}

/** A filesystem the node service mounts as it is. */
export interface FilesystemSource {
  kind: 'filesystem';
  source: string;
  fsType: string;
  options: string[];
  /** the source the mount table shows, when a mount helper rewrites `source` (efs-utils: 127.0.0.1:/path) */
  mountedAs?: string;
  /** other sources that mount the same volume (the same path through another server); mountinfo shows whichever was used */
  aliases?: string[];
}

export type NodeSource = BlockSource | FilesystemSource;

export interface NodeVolumeArgs {
  volumeId: string;
  publishContext: Record<string, string>;
  volumeContext: Record<string, string>;
  secrets: Record<string, string>;
  readOnly: boolean;
}

export interface NodeInfo {
  nodeId: string;
  maxVolumesPerNode: number;
  topology?: Topology;
}

/** GetCapacity */
export interface CapacityOps {
  getCapacity(args: CapacityArgs): Promise<CapacityInfo>;
}

/** ControllerPublishVolume / ControllerUnpublishVolume: the volume must be attached to a node before NodeStage. */
export interface PublishOps {
  /** Returns the publish_context handed to the node. */
  controllerPublish(id: string, nodeId: string, readOnly: boolean, capability: VolumeCapability): Promise<Record<string, string>>;
  /** nodeId '' means every node; idempotent. */
  controllerUnpublish(id: string, nodeId: string): Promise<void>;
}

/** ControllerExpandVolume (and, for block backends, NodeExpandVolume). */
export interface ExpandOps {
  /** 'online': while published; 'offline': only while not published */
  mode: 'online' | 'offline';
  /** Grows the volume to capacityBytes (already rounded and range-checked); a no-op when it is that big already. */
  expandVolume(id: string, capacityBytes: number, accessType: AccessType): Promise<ExpandResult>;
  /** Node side, after a controller-side expansion: make the node's device show the new size (loop: losetup -c). */
  refreshVolumeSize?(volumeId: string): Promise<void>;
}

/** ControllerModifyVolume, and CreateVolume's mutable_parameters. */
export interface ModifyOps {
  /** the keys accepted; at least one */
  mutableParameterKeys: string[];
  /** Applies mutable parameters (keys already checked against mutableParameterKeys). */
  modifyVolume(id: string, mutableParameters: Record<string, string>): Promise<void>;
}

/** Create/Delete/List/GetSnapshot, and CreateVolume from a snapshot. Idempotency by name is checked through findByName. */
export interface SnapshotOps {
  /** keys CreateSnapshot accepts in `parameters` */
  parameterKeys: string[];
  /** cheap, syntactic: could this backend have issued this snapshot id? (a page token naming another is not ours) */
  isId(id: string): boolean;
  create(args: CreateSnapshotArgs): Promise<Snapshot>;
  findByName(name: string): Promise<Snapshot | undefined>;
  get(id: string): Promise<Snapshot | undefined>;
  /** OK when already gone */
  delete(id: string): Promise<void>;
  /** Matching snapshots in ascending id order, within the range. */
  list(filter: SnapshotFilter, range: ListRange): Promise<Snapshot[]>;
}

/** The GroupController service: consistent snapshots of several volumes. */
export interface GroupSnapshotOps {
  /** keys CreateVolumeGroupSnapshot accepts in `parameters` */
  parameterKeys: string[];
  create(args: CreateGroupSnapshotArgs): Promise<GroupSnapshot>;
  findByName(name: string): Promise<GroupSnapshot | undefined>;
  get(id: string): Promise<GroupSnapshot | undefined>;
  /** OK when already gone */
  delete(id: string): Promise<void>;
}

/** What the node side of a backend needs from the machine; checked at start-up and by Probe (src/os/privileges.ts). */
export interface NodeRequirements {
  /** programs run on the node, looked up in PATH */
  tools: string[];
  /** device files opened read-write */
  devices: string[];
  /** Linux capabilities needed in the effective set */
  linuxCapabilities: LinuxCapability[];
}

/** A node that mounts a network filesystem as it is: mount and umount, nothing else. */
export const FILESYSTEM_NODE_REQUIREMENTS: NodeRequirements = {
  tools: ['mount', 'umount'],
  devices: [],
  linuxCapabilities: ['CAP_SYS_ADMIN'],
};

/** The shared block path of src/node (blkid before formatting, wipefs, mkfs, mount); block backends spread it in. */
export const BLOCK_NODE_REQUIREMENTS: NodeRequirements = {
  tools: ['mount', 'umount', 'blkid', 'wipefs', 'mkfs.ext4'],
  devices: [],
  linuxCapabilities: ['CAP_SYS_ADMIN'],
};

export interface Backend {
  readonly name: string;
  readonly features: BackendFeatures;
  /** what the node side needs from the machine */
  readonly node: NodeRequirements;

  // optional groups: each present group is one advertised capability (src/csi/capabilities.ts)
  readonly capacity?: CapacityOps;
  readonly publish?: PublishOps;
  readonly expand?: ExpandOps;
  readonly modify?: ModifyOps;
  readonly snapshots?: SnapshotOps;
  readonly groupSnapshots?: GroupSnapshotOps;

  /** Throws a CsiError (UNAVAILABLE / FAILED_PRECONDITION) naming what does not work. */
  probe(): Promise<void>;

  // controller side
  /** Called only when no volume of that name exists; must be safe to retry after a crash part-way. */
  createVolume(args: CreateVolumeArgs): Promise<Volume>;
  /** OK when the volume is already gone; FAILED_PRECONDITION while it is in use. */
  deleteVolume(id: string): Promise<void>;
  /** Reads the storage system: the volume with its current state (attachments, condition). */
  getVolume(id: string): Promise<Volume | undefined>;
  /** Reads the storage system: CreateVolume's idempotency check. */
  findVolumeByName(name: string): Promise<Volume | undefined>;
  /** Cheap, syntactic, touches nothing: could this backend have issued this volume id? (a page token naming another is not ours) */
  isVolumeId(id: string): boolean;
  /** Reads the storage system: volumes in ascending id order, within the range; the protocol layer makes the pages. */
  listVolumes(range: ListRange): Promise<Volume[]>;

  // node side
  nodeInfo(): Promise<NodeInfo>;
  /** Changes this node: makes the volume present (attach a loop device, find an NVMe device, ...); idempotent. */
  openVolume(args: NodeVolumeArgs): Promise<NodeSource>;
  /** Looks at this node only, changing nothing: where the volume is now; undefined when it is not here. */
  locateVolume(volumeId: string): Promise<NodeSource | undefined>;
  /** Undoes openVolume; idempotent. */
  closeVolume(volumeId: string): Promise<void>;
  /** May read the storage system: is this a volume this backend made? (Used to tell NOT_FOUND from a volume not here.) */
  volumeExists(volumeId: string): Promise<boolean>;
  /** A problem of a live mount the node sees beyond the mount table (glusterfs: bricks its client lost); undefined when none. */
  mountCondition?(volumeId: string, path: string): Promise<VolumeCondition | undefined>;
}

/** For a backend that holds a whole listing in memory: the part of it a ListRange asks for. */
export function sliceAfter<T extends { id: string }>(items: T[], range: ListRange): T[] {
  const sorted = items.filter((item) => item.id > range.afterId).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return range.limit > 0 ? sorted.slice(0, range.limit) : sorted;
}

// ---- what each backend folder exports from factory.ts (src/backends/registry.ts lists them)

/** One command-line option of a backend (with the environment variable that may set it). */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  env?: string;
  default?: string | boolean;
  description: string;
}

export type OptionValue = string | boolean | string[] | undefined;

/** What every backend is given: the common settings and its own options' values. */
export interface BackendContext {
  nodeId: string;
  maxVolumesPerNode: number;
  options: Record<string, OptionValue>;
}

/** A backend as the registry knows it, without loading its implementation (the loop backend never loads the AWS SDK). */
export interface BackendFactory {
  name: string;
  description: string;
  options: Record<string, OptionSpec>;
  /** the fault points its code reaches (src/faults.ts), for docs/reliability.md and the crash tests */
  faultPoints: readonly string[];
  /** dynamic-imports the implementation and builds it; a bad option value throws an Error naming it */
  create(ctx: BackendContext): Promise<Backend>;
}
