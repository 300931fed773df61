import { randomUUID } from 'node:crypto';
import { lstat, mkdir, mkdtemp, realpath, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  ALL_ACCESS_MODES,
  FILESYSTEM_NODE_REQUIREMENTS,
  sliceAfter,
  type Backend,
  type BackendFeatures,
  type CapacityInfo,
  type CapacityOps,
  type CreateVolumeArgs,
  type FilesystemSource,
  type NodeInfo,
  type NodeSource,
  type ListRange,
  type NodeVolumeArgs,
  type Volume,
} from '../backend.js';
import { aborted, failedPrecondition, isCsiError, notFound, resourceExhausted } from '../../errors.js';
import { mounter as osMounter, type Mounter } from '../../os/index.js';
import { EfsApi, type AccessPoint } from './api.js';
import { KeyedMutex } from './keyed-mutex.js';
import { PARAMETER_KEYS, parseParameters, rootPathFor, type AccessPointPlan } from './params.js';
import { managedTags, readManaged, TAG_READY, type ManagedInfo } from './tags.js';
import { formatVolumeId, looksLikeEfsId, parseVolumeId, pathProblem, type EfsVolumeId } from './volume-id.js';

/**
 * EFS grows without a size limit the API could report, so capacity answers say "elastic" with one large
 * number: 4 PiB (2^52 bytes, exact in a JavaScript number and in Mesos' MB-based resources). GetCapacity is
 * advertised with it because Mesos' storage resource provider offers no storage pool at all without
 * GET_CAPACITY (it counts the capacity as 0); Kubernetes only reads it with storage capacity tracking on,
 * where a large number means the same as no limit.
 */
export const ELASTIC_CAPACITY_BYTES = 2 ** 52;

/** Amazon's recommended NFS options for EFS (docs.aws.amazon.com/efs/latest/ug/mounting-fs-nfs-mount-settings.html). */
export const EFS_NFS_OPTIONS = ['nfsvers=4.1', 'rsize=1048576', 'wsize=1048576', 'hard', 'timeo=600', 'retrans=2', 'noresvport'];

/** An unready access point older than this is a crashed CreateVolume's leftover (never handed out): removed. */
const STALE_UNREADY_MS = 5 * 60_000;
const TAG_CREATED = 'rexcsi.io/created';
const CREATE_ATTEMPTS = 6;

export interface EfsConfig {
  api: EfsApi;
  nodeId: string;
  maxVolumesPerNode: number;
  region: string;
  /** the node's (or controller's) availability zone; unset: mount through the file system's DNS name */
  zone?: string | undefined;
  /** mount with amazon-efs-utils (`mount -t efs -o tls`) instead of the kernel NFS client directly */
  efsUtils: boolean;
  /** where the controller mounts a file system's root to delete an access point's directory */
  workDir?: string | undefined;
  /** the mounter used for those controller-side mounts (tests record or simulate the NFS mount) */
  mounter?: Mounter;
}

/** A filesystem source plus what the mount table shows for it when a mount helper rewrites the source. */
export type EfsMountSource = FilesystemSource;

// The EFS backend: a volume is a whole file system, a directory of one, or an access point (what
// CreateVolume makes, one per volume, with its own directory and POSIX identity). Nothing is attached to
// a node; the node mounts the file system over NFSv4.1 from the mount target in its zone.
export class EfsBackend implements Backend {
  readonly name = 'efs';
  readonly features: BackendFeatures = {
    accessTypes: ['mount'],
    accessModes: [...ALL_ACCESS_MODES],
    fsTypes: ['nfs4', 'nfs', 'efs'],
    defaultFsType: 'nfs4',
    nodeSource: 'filesystem',
    listVolumesPublishedNodes: false,
    volumeCondition: false,
    // A size asked for is recorded and reported back (it bounds nothing); none asked: 0, "unknown".
    minVolumeBytes: 0,
    maxVolumeBytes: ELASTIC_CAPACITY_BYTES,
    allocationUnitBytes: 1,
    defaultVolumeBytes: 0,
    parameterKeys: PARAMETER_KEYS,
    topologyKeys: [],
    cloneFromVolume: false,
  };
  readonly node = FILESYSTEM_NODE_REQUIREMENTS;
  readonly capacity: CapacityOps = { getCapacity: () => this.getCapacity() };
  private readonly api: EfsApi;
  private readonly mounter: Mounter;
  /** One CreateVolume at a time per file system in this process: gid choice, creation and check together. */
  private readonly createLocks = new KeyedMutex();
  /** Node side: the last mount source worked out per volume, so identifying mounts costs no API call. */
  private readonly sources = new Map<string, EfsMountSource>();

  constructor(private readonly config: EfsConfig) {
    this.api = config.api;
    this.mounter = config.mounter ?? osMounter;
  }

  async probe(): Promise<void> {
    await this.api.ping();
  }

  // ---- controller side

  async createVolume(args: CreateVolumeArgs): Promise<Volume> {
    const plan = parseParameters(args.parameters);
    return this.createLocks.run(plan.fileSystemId, () => this.createAccessPointVolume(args, plan));
  }

  /**
   * Creates the access point, then re-reads the file system's access points: when another one (made by a
   * second controller at the same moment) has the same name or the same allocated gid, ours is deleted and
   * the attempt repeated. Of two racing creates at least one sees the other, so two volumes never keep one
   * gid. Only a checked access point is tagged ready, and only ready ones are found by name or listed.
   */
  private async createAccessPointVolume(args: CreateVolumeArgs, plan: AccessPointPlan): Promise<Volume> {
    if (!(await this.api.describeFileSystem(plan.fileSystemId)))
      throw notFound(`file system ${plan.fileSystemId} (parameter fileSystemId) does not exist`);
    const rootPath = rootPathFor(plan.basePath, args.name);
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(50 + Math.random() * 200 * attempt);
      const before = await this.removeStaleUnready(await this.api.listAccessPoints(plan.fileSystemId));
      const done = before.find((ap) => readManaged(ap)?.name === args.name && readManaged(ap)?.ready);
      if (done) return this.toVolume(done, readManaged(done)!);
      const gid = 'fixed' in plan.gid ? plan.gid.fixed : allocateGid(plan.gid, before, attempt);
      const created = await this.api.createAccessPoint({
        fileSystemId: plan.fileSystemId,
        clientToken: randomUUID(),
        uid: plan.uid ?? gid,
        gid,
        rootPath,
        permissions: plan.permissions,
        tags: [...managedTags(args.name, args.capacityBytes, args.parameters), { key: TAG_CREATED, value: String(Date.now()) }],
      });
      const after = await this.api.listAccessPoints(plan.fileSystemId);
      const rival = after.find(
        (ap) => ap.id !== created.id && (readManaged(ap)?.name === args.name || (!('fixed' in plan.gid) && ap.gid === gid)),
      );
      if (!rival) {
        await this.api.tagResource(created.id, [{ key: TAG_READY, value: 'true' }]);
        return this.toVolume(created, { ...readManaged(created)!, ready: true });
      }
      await this.api.deleteAccessPoint(created.id);
    }
    throw aborted(
      `CreateVolume ${JSON.stringify(args.name)}: other controllers kept creating access points on ${plan.fileSystemId} with the same name or gid; retry`,
    );
  }

  /** Deletes unready access points left by a CreateVolume that crashed long ago; returns the others. */
  private async removeStaleUnready(aps: AccessPoint[]): Promise<AccessPoint[]> {
    const keep: AccessPoint[] = [];
    for (const ap of aps) {
      const info = readManaged(ap);
      const created = Number(ap.tags.find((t) => t.key === TAG_CREATED)?.value ?? NaN);
      if (info && !info.ready && Number.isFinite(created) && Date.now() - created > STALE_UNREADY_MS) {
        await this.api.deleteAccessPoint(ap.id);
        continue;
      }
      keep.push(ap);
    }
    return keep;
  }

  async deleteVolume(id: string): Promise<void> {
    if (!looksLikeEfsId(id)) return; // not a volume this backend could have made: already gone
    const vol = parseVolumeId(id);
    if (!vol.accessPointId) {
      if (!(await this.api.describeFileSystem(vol.fileSystemId))) return;
      throw failedPrecondition(`volume ${id} is a static EFS volume (a file system or a directory of one); rexcsi never deletes those`);
    }
    const ap = await this.api.describeAccessPoint(vol.accessPointId);
    if (!ap || ap.fileSystemId !== vol.fileSystemId) return;
    const info = readManaged(ap);
    if (!info)
      throw failedPrecondition(
        `access point ${ap.id} was not created by rexcsi (it has no ${'rexcsi.io/name'} tag); rexcsi never deletes it`,
      );
    if (info.parameters.deleteAccessPointRootDir === 'true') await this.deleteRootDirectory(ap);
    await this.api.deleteAccessPoint(ap.id);
  }

  async getVolume(id: string): Promise<Volume | undefined> {
    if (!looksLikeEfsId(id)) return undefined;
    const vol = parseVolumeId(id);
    if (vol.accessPointId) {
      const ap = await this.api.describeAccessPoint(vol.accessPointId);
      if (!ap || ap.fileSystemId !== vol.fileSystemId) return undefined;
      const info = readManaged(ap);
      if (info && !info.ready) return undefined;
      return info ? this.toVolume(ap, info) : staticVolume(id);
    }
    return (await this.api.describeFileSystem(vol.fileSystemId)) ? staticVolume(formatVolumeId(vol)) : undefined;
  }

  async findVolumeByName(name: string): Promise<Volume | undefined> {
    const found = (await this.readyVolumes()).find((v) => v.name === name);
    return found;
  }

  /** The ids CreateVolume issues (an access point's); a static volume's id is the CO's, never listed. */
  isVolumeId(id: string): boolean {
    return isAccessPointVolumeId(id);
  }

  async listVolumes(range: ListRange): Promise<Volume[]> {
    return sliceAfter(await this.readyVolumes(), range);
  }

  async getCapacity(): Promise<CapacityInfo> {
    return { availableBytes: ELASTIC_CAPACITY_BYTES };
  }

  /** Every volume CreateVolume made and finished, in the region, each once (smallest id first on a duplicate name). */
  private async readyVolumes(): Promise<Volume[]> {
    const seen = new Set<string>();
    const out: Volume[] = [];
    for (const ap of (await this.api.listAccessPoints()).sort((a, b) => a.id.localeCompare(b.id))) {
      const info = readManaged(ap);
      if (!info?.ready || seen.has(info.name)) continue;
      seen.add(info.name);
      out.push(this.toVolume(ap, info));
    }
    return out;
  }

  private toVolume(ap: AccessPoint, info: ManagedInfo): Volume {
    return {
      id: formatVolumeId({ fileSystemId: ap.fileSystemId, path: '/', accessPointId: ap.id }),
      name: info.name,
      capacityBytes: info.capacityBytes,
      parameters: info.parameters,
      context: {},
      accessibleTopology: [],
      accessType: 'mount',
      publishedNodes: [],
    };
  }

  /**
   * Mounts the file system's root on the controller and removes the access point's directory. The path
   * comes from EFS, so it is checked again: never '/', never '..', and never outside the mount after
   * symlinks are resolved.
   */
  private async deleteRootDirectory(ap: AccessPoint): Promise<void> {
    const problem = pathProblem(ap.rootPath);
    if (problem || ap.rootPath === '/')
      throw failedPrecondition(
        `access point ${ap.id} has root directory ${JSON.stringify(ap.rootPath)}; refusing to delete it (${problem ?? 'the file system root'})`,
      );
    const source = await this.mountSource({ fileSystemId: ap.fileSystemId, path: '/' });
    const workDir = this.config.workDir ?? tmpdir();
    await mkdir(workDir, { recursive: true });
    const mountPoint = await mkdtemp(join(workDir, `efs-${ap.fileSystemId}-`));
    try {
      await this.mounter.mount(source.source, mountPoint, source.fsType, source.options);
      try {
        await removeInside(mountPoint, ap.rootPath);
      } finally {
        await this.mounter.unmount(mountPoint);
      }
    } finally {
      await rmdir(mountPoint).catch(() => undefined); // kept if the unmount failed: rmdir never empties a mount
    }
  }

  // ---- node side

  async nodeInfo(): Promise<NodeInfo> {
    return { nodeId: this.config.nodeId, maxVolumesPerNode: this.config.maxVolumesPerNode };
  }

  async openVolume(args: NodeVolumeArgs): Promise<NodeSource> {
    const source = await this.mountSource(parseVolumeId(args.volumeId));
    this.sources.set(args.volumeId, source);
    return source;
  }

  async locateVolume(volumeId: string): Promise<NodeSource | undefined> {
    if (!looksLikeEfsId(volumeId)) return undefined;
    const cached = this.sources.get(volumeId);
    if (cached) return cached;
    try {
      const source = await this.mountSource(parseVolumeId(volumeId));
      this.sources.set(volumeId, source);
      return source;
    } catch (e) {
      if (isCsiError(e, 'NOT_FOUND') || isCsiError(e, 'FAILED_PRECONDITION') || isCsiError(e, 'INVALID_ARGUMENT')) return undefined;
      throw e;
    }
  }

  async closeVolume(volumeId: string): Promise<void> {
    this.sources.delete(volumeId); // nothing is attached to a node
  }

  async volumeExists(volumeId: string): Promise<boolean> {
    if (!looksLikeEfsId(volumeId)) return false;
    const vol = parseVolumeId(volumeId);
    if (vol.accessPointId) {
      const ap = await this.api.describeAccessPoint(vol.accessPointId);
      return ap !== undefined && ap.fileSystemId === vol.fileSystemId;
    }
    return (await this.api.describeFileSystem(vol.fileSystemId)) !== undefined;
  }

  /**
   * What the node mounts for a volume. Plain NFS: `<mount target IP in our zone>:<path>` (or the file
   * system's DNS name when no zone is configured), type nfs4, Amazon's options. With amazon-efs-utils:
   * `fs-xxxx:<path>`, type efs, tls (+ accesspoint, + mounttargetip); the helper mounts through a local TLS
   * tunnel, so the mount table shows 127.0.0.1:<path>. EFS serves access points only over TLS, so an
   * access point volume needs --efs-utils.
   */
  async mountSource(vol: EfsVolumeId): Promise<EfsMountSource> {
    const volumeId = formatVolumeId(vol);
    if (!(await this.api.describeFileSystem(vol.fileSystemId)))
      throw notFound(`volume ${volumeId}: file system ${vol.fileSystemId} does not exist`);
    if (vol.accessPointId) {
      const ap = await this.api.describeAccessPoint(vol.accessPointId);
      if (!ap || ap.fileSystemId !== vol.fileSystemId)
        throw notFound(`volume ${volumeId}: access point ${vol.accessPointId} does not exist on ${vol.fileSystemId}`);
      if (!this.config.efsUtils) {
        throw failedPrecondition(
          `volume ${volumeId} is an EFS access point, which EFS serves only over TLS: install amazon-efs-utils on this node and start rexcsi with --efs-utils`,
        );
      }
    }
    const ip = this.config.zone ? await this.mountTargetIp(vol.fileSystemId, this.config.zone) : undefined;
    if (this.config.efsUtils) {
      return {
        kind: 'filesystem',
        source: `${vol.fileSystemId}:${vol.path}`,
        fsType: 'efs',
        options: [
          'tls',
          ...(vol.accessPointId ? [`accesspoint=${vol.accessPointId}`] : []),
          ...(ip ? [`mounttargetip=${ip}`] : []),
          ...EFS_NFS_OPTIONS,
        ],
        mountedAs: `127.0.0.1:${vol.path}`,
      };
    }
    return {
      kind: 'filesystem',
      source: `${ip ?? this.dnsName(vol.fileSystemId)}:${vol.path}`,
      fsType: 'nfs4',
      options: [...EFS_NFS_OPTIONS],
    };
  }

  private async mountTargetIp(fileSystemId: string, zone: string): Promise<string> {
    const targets = await this.api.listMountTargets(fileSystemId);
    const target = targets.find((t) => t.zone === zone);
    if (!target) {
      const zones = targets.map((t) => t.zone).sort();
      throw failedPrecondition(
        `file system ${fileSystemId} has no mount target in availability zone ${zone} (this node's zone)` +
          `${zones.length ? `; it has mount targets in ${zones.join(', ')}` : '; it has no mount targets at all'}: create one in ${zone}`,
      );
    }
    if (target.lifeCycleState !== 'available') {
      throw failedPrecondition(
        `the mount target of ${fileSystemId} in ${zone} (${target.id}) is ${target.lifeCycleState}, not available; retry when it is`,
      );
    }
    return target.ipAddress;
  }

  private dnsName(fileSystemId: string): string {
    const suffix = this.config.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
    return `${fileSystemId}.efs.${this.config.region}.${suffix}`;
  }
}

function staticVolume(id: string): Volume {
  return { id, name: '', capacityBytes: 0, parameters: {}, context: {}, accessibleTopology: [], accessType: 'mount', publishedNodes: [] };
}

function isAccessPointVolumeId(id: string): boolean {
  try {
    return looksLikeEfsId(id) && parseVolumeId(id).accessPointId !== undefined;
  } catch {
    return false;
  }
}

/**
 * The lowest free gid of the range on a first attempt; a random free one on a retry, so two controllers
 * that collided do not pick the same one again. RESOURCE_EXHAUSTED when every gid is taken.
 */
export function allocateGid(range: { start: number; end: number }, existing: AccessPoint[], attempt: number): number {
  const taken = new Set(existing.map((ap) => ap.gid).filter((g): g is number => g !== undefined));
  const size = range.end - range.start + 1;
  const offset = attempt === 0 ? 0 : Math.floor(Math.random() * size);
  for (let i = 0; i < size && i <= taken.size; i++) {
    const gid = range.start + ((offset + i) % size);
    if (!taken.has(gid)) return gid;
  }
  throw resourceExhausted(
    `every gid from ${range.start} to ${range.end} is used by an access point of this file system; widen gidRangeStart/gidRangeEnd`,
  );
}

/** Removes root/relPath (recursively) after checking that its parent, symlinks resolved, is inside root. */
export async function removeInside(root: string, relPath: string): Promise<void> {
  const target = join(root, relPath);
  const realRoot = await realpath(root);
  let parent: string;
  try {
    parent = await realpath(dirname(target));
  } catch {
    return; // a parent directory is missing: so is the target
  }
  if (parent !== realRoot && !parent.startsWith(`${realRoot}/`)) {
    throw failedPrecondition(`${relPath} leads outside the file system (through a symlink); not deleting it`);
  }
  const leaf = join(parent, target.slice(dirname(target).length + 1));
  if (!(await lstat(leaf).catch(() => undefined))) return;
  await rm(leaf, { recursive: true, force: true });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
