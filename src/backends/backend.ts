// The storage layer's contract. A backend knows one storage system and nothing about gRPC or the CSI
// wire format: the protocol layer (src/controller, src/node) validates requests, serialises work per
// volume, checks idempotency and compatibility, and derives the advertised capabilities from `features`.

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
export interface Capability {
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
  capabilities: Capability[];
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
  capabilities: Capability[];
  parameters: Record<string, string>;
  topology?: Topology;
}

export interface CapacityInfo {
  availableBytes: number;
  maximumVolumeSize?: number;
  minimumVolumeSize?: number;
}

export interface Page<T> {
  entries: T[];
  /** opaque; '' when there is no further page */
  nextToken: string;
}

export interface BackendFeatures {
  accessTypes: AccessType[];
  accessModes: AccessMode[];
  /** filesystems a mount volume may be formatted with ([] for filesystem backends) */
  fsTypes: string[];
  defaultFsType: string;
  /** volumes of this backend are block devices the node formats and mounts (loop, ebs), or are mounted as they are (glusterfs, efs) */
  nodeSource: 'block' | 'filesystem';
  /** ControllerPublishVolume must attach the volume to a node before NodeStage */
  controllerPublish: boolean;
  getCapacity: boolean;
  listVolumesPublishedNodes: boolean;
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
  /** CreateSnapshot/DeleteSnapshot/ListSnapshots/GetSnapshot */
  snapshots: boolean;
  /** keys CreateSnapshot accepts in `parameters` */
  snapshotParameterKeys: string[];
  /** CreateVolume from a snapshot / from another volume */
  cloneFromSnapshot: boolean;
  cloneFromVolume: boolean;
  /** GroupController: consistent snapshots of several volumes */
  groupSnapshots: boolean;
  /** ControllerExpandVolume: 'online' while published, 'offline' only when not, 'none' not at all */
  expansion: 'none' | 'online' | 'offline';
  /** ControllerModifyVolume: the mutable parameter keys accepted ([] = not supported) */
  mutableParameterKeys: string[];
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

export interface Backend {
  readonly name: string;
  readonly features: BackendFeatures;

  /** Throws a RexError (UNAVAILABLE / FAILED_PRECONDITION) naming what does not work. */
  probe(): Promise<void>;

  // controller side
  /** Called only when no volume of that name exists; must be safe to retry after a crash part-way. */
  createVolume(args: CreateVolumeArgs): Promise<Volume>;
  /** OK when the volume is already gone; FAILED_PRECONDITION while it is in use. */
  deleteVolume(id: string): Promise<void>;
  getVolume(id: string): Promise<Volume | undefined>;
  findVolumeByName(name: string): Promise<Volume | undefined>;
  /** `startingToken` is a token this backend returned before, or ''; unknown tokens throw ABORTED. */
  listVolumes(maxEntries: number, startingToken: string): Promise<Page<Volume>>;
  getCapacity?(args: CapacityArgs): Promise<CapacityInfo>;
  controllerPublish?(id: string, nodeId: string, readOnly: boolean, capability: Capability): Promise<Record<string, string>>;
  controllerUnpublish?(id: string, nodeId: string): Promise<void>;
  /** Grows the volume to capacityBytes (already rounded and range-checked); a no-op when it is that big already. */
  expandVolume?(id: string, capacityBytes: number, accessType: AccessType): Promise<ExpandResult>;
  /** Applies mutable parameters (keys already checked against features.mutableParameterKeys). */
  modifyVolume?(id: string, mutableParameters: Record<string, string>): Promise<void>;

  // snapshots (features.snapshots); the protocol layer checks idempotency by name through findSnapshotByName
  createSnapshot?(args: CreateSnapshotArgs): Promise<Snapshot>;
  findSnapshotByName?(name: string): Promise<Snapshot | undefined>;
  getSnapshot?(id: string): Promise<Snapshot | undefined>;
  /** OK when already gone */
  deleteSnapshot?(id: string): Promise<void>;
  /** unknown tokens throw ABORTED */
  listSnapshots?(filter: SnapshotFilter, maxEntries: number, startingToken: string): Promise<Page<Snapshot>>;

  // group snapshots (features.groupSnapshots)
  createGroupSnapshot?(args: CreateGroupSnapshotArgs): Promise<GroupSnapshot>;
  findGroupSnapshotByName?(name: string): Promise<GroupSnapshot | undefined>;
  getGroupSnapshot?(id: string): Promise<GroupSnapshot | undefined>;
  deleteGroupSnapshot?(id: string): Promise<void>;

  // node side
  nodeInfo(): Promise<NodeInfo>;
  /** Makes the volume present on this node (attach a loop device, find an NVMe device, ...); idempotent. */
  openVolume(args: NodeVolumeArgs): Promise<NodeSource>;
  /** Where the volume is on this node now, without changing anything; undefined when it is not here. */
  locateVolume(volumeId: string): Promise<NodeSource | undefined>;
  /** Undoes openVolume; idempotent. */
  closeVolume(volumeId: string): Promise<void>;
  /** After a controller-side expansion: make the node's device show the new size (loop: losetup -c). */
  refreshVolumeSize?(volumeId: string): Promise<void>;
  /** Is this a volume this backend could have made? (Used to tell NOT_FOUND from a missing volume.) */
  volumeExists(volumeId: string): Promise<boolean>;
  /** A problem of a live mount the node sees beyond the mount table (glusterfs: bricks its client lost); undefined when none. */
  mountCondition?(volumeId: string, path: string): Promise<VolumeCondition | undefined>;
}
