import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, rmdir, statfs } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import {
  ALL_ACCESS_MODES,
  FILESYSTEM_NODE_REQUIREMENTS,
  type Backend,
  type BackendFeatures,
  type CapacityArgs,
  type CapacityInfo,
  type CapacityOps,
  type CreateVolumeArgs,
  type ExpandOps,
  type ExpandResult,
  type FilesystemSource,
  type NodeInfo,
  type ListRange,
  type NodeVolumeArgs,
  type Volume,
  type VolumeCondition,
} from '../backend.js';
import { failedPrecondition, invalidArgument, isCsiError, notFound, outOfRange, resourceExhausted, unavailable } from '../../errors.js';
import { faultPoint } from '../../faults.js';
import { getXattr, missingTools, mounter, pathExists, readMountInfo, removeXattr, setXattr } from '../../os/index.js';
import { GlusterCli, GlusterError, type GlusterVolumeInfo } from './cli.js';
import { brickCondition, healthy } from './health.js';
import {
  brickCount,
  layoutArgs,
  parseBrickLayout,
  parseBrickRoots,
  placeBricks,
  placementProblem,
  type BrickLayout,
  type PoolServer,
} from './placement.js';
import { mountBrickCondition } from './mount-health.js';
import { poolServers, volumeClientsProblem } from './pool.js';
import {
  decodeRecord,
  encodeRecord,
  hexForName,
  isGlusterVolumeName,
  mountPath,
  parseVolumeId,
  subdirRef,
  volumeRef,
  type GlusterVolumeRef,
  type Layout,
  type SubdirRef,
  type VolumeRecord,
  type VolumeRef,
} from './ids.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** glusterd's management port: the FUSE client fetches the volume file there */
const GLUSTERD_PORT = 24007;
const REACH_TIMEOUT_MS = 3000;
/** how long a FUSE client may take to leave the bricks after its unmount */
const CLIENT_GONE_MS = 5000;
/** the record on a subdir volume's directory; trusted.* so a task (without CAP_SYS_ADMIN) cannot forge it */
const RECORD_XATTR = 'trusted.rexcsi.volume';
/** the record on a volume-layout volume (user.* options are free-form and kept by glusterd) */
const RECORD_OPTION = 'user.rexcsi.volume';
/** set on a volume whose delete glusterd refused while a server was down: no longer a volume, deleted later */
const DELETED_OPTION = 'user.rexcsi.deleted';
const SUBDIR_ENTRY = /^csi-([0-9a-f]{24})$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$/;

export interface GlusterConfig {
  /** volfile servers, in order of preference; the first also holds the volume layout's bricks */
  servers: string[];
  hostingVolume?: string | undefined;
  /** `DIR` (on every server) or `HOST:DIR` (on that server) */
  brickRoots: string[];
  /** set cluster.server-quorum-type server on the volumes rexcsi creates */
  serverQuorum?: boolean;
  glusterdSocket: string;
  /** where the controller mounts hosting volumes for a moment (mkdir, xattrs, rm) */
  workDir: string;
  nodeId: string;
  maxVolumesPerNode: number;
  defaultVolumeBytes?: number;
}

/** Checks the configuration; throws Error (a start-up problem, not an RPC error) naming the bad flag. */
export function checkGlusterConfig(c: GlusterConfig): void {
  if (c.servers.length === 0) throw new Error('--gluster-server is required (at least one gluster server host)');
  for (const s of c.servers)
    if (!HOSTNAME.test(s)) throw new Error(`--gluster-server=${JSON.stringify(s)}: expected a host name or IP address`);
  if (c.hostingVolume !== undefined && !isGlusterVolumeName(c.hostingVolume)) {
    throw new Error(`--hosting-volume=${JSON.stringify(c.hostingVolume)}: a gluster volume name has 1-64 of A-Z a-z 0-9 _ -`);
  }
  parseBrickRoots(c.brickRoots, c.servers);
  if (!c.glusterdSocket.startsWith('/'))
    throw new Error(`--glusterd-socket=${JSON.stringify(c.glusterdSocket)}: expected an absolute path`);
}

// GlusterFS: a CSI volume is a directory with a quota on a hosting volume (layout subdir) or a gluster
// volume of its own with a quota on its root (layout volume). Both are mounted by the FUSE client on the
// node. All state lives in gluster: the record (name, parameters) in a directory xattr or a volume option,
// the size in the quota, so a restarted or second controller carries on.
export class GlusterBackend implements Backend {
  readonly name = 'glusterfs';
  readonly features: BackendFeatures;
  readonly node = FILESYSTEM_NODE_REQUIREMENTS;
  readonly capacity: CapacityOps = { getCapacity: (args) => this.getCapacity(args) };
  // both layouts grow by raising a quota, which df in the task sees at once
  readonly expand: ExpandOps = { mode: 'online', expandVolume: (id, bytes) => this.expandVolume(id, bytes) };
  private readonly cli: GlusterCli;
  private readonly readyHosting = new Set<string>();
  private readonly brickRoots: Map<string, string[]>;

  constructor(private readonly config: GlusterConfig) {
    checkGlusterConfig(config);
    this.cli = new GlusterCli(config.glusterdSocket, config.servers[0]!);
    this.brickRoots = parseBrickRoots(config.brickRoots, config.servers);
    this.features = {
      accessTypes: ['mount'],
      accessModes: [...ALL_ACCESS_MODES],
      fsTypes: ['glusterfs'],
      defaultFsType: 'glusterfs',
      nodeSource: 'filesystem',
      listVolumesPublishedNodes: false,
      volumeCondition: true,
      minVolumeBytes: MiB,
      maxVolumeBytes: 1024 * 1024 * GiB,
      allocationUnitBytes: MiB,
      defaultVolumeBytes: config.defaultVolumeBytes ?? GiB,
      parameterKeys: ['layout', 'replica', 'arbiter', 'disperse', 'redundancy'],
      topologyKeys: [],
      cloneFromVolume: false,
    };
  }

  /** Removes mounts a killed controller left in the work dir. */
  async init(): Promise<void> {
    await mkdir(this.config.workDir, { recursive: true, mode: 0o700 });
    const prefix = `${this.config.workDir}/`;
    for (const m of (await readMountInfo()).filter((e) => e.mountPoint.startsWith(prefix)).reverse()) {
      await mounter.unmount(m.mountPoint);
    }
    for (const entry of await readdir(this.config.workDir)) await rmdir(join(this.config.workDir, entry)).catch(() => undefined);
  }

  async probe(): Promise<void> {
    const missing = await missingTools(['mount.glusterfs', 'mount', 'umount']);
    if (missing.length) throw failedPrecondition(`the glusterfs backend needs ${missing.join(', ')} (install glusterfs-client)`);
    await this.reachableServer();
    // A node-only plugin has no glusterd socket; the controller does and must be able to use it.
    if (await pathExists(this.config.glusterdSocket)) {
      await this.cli.volumeNames();
      if (this.config.hostingVolume) await this.hostingInfo(this.config.hostingVolume);
    }
  }

  // ---- controller side

  async createVolume(args: CreateVolumeArgs): Promise<Volume> {
    const { layout, bricks } = this.parseParameters(args.parameters);
    const hex = hexForName(args.name);
    const record: VolumeRecord = { v: 1, name: args.name, layout, parameters: args.parameters, createdAt: new Date().toISOString() };
    if (layout === 'subdir') return this.createSubdir(subdirRef(this.requireHosting(), hex), record, args.capacityBytes);
    return this.createGlusterVolume(volumeRef(hex), record, bricks, args.capacityBytes);
  }

  async deleteVolume(id: string): Promise<void> {
    const ref = parseVolumeId(id);
    if (!ref) return; // not an id this backend issues: already gone
    if (ref.layout === 'subdir') return this.deleteSubdir(ref);
    return this.deleteGlusterVolume(ref);
  }

  async getVolume(id: string): Promise<Volume | undefined> {
    const ref = parseVolumeId(id);
    if (!ref) return undefined;
    if (ref.layout === 'subdir') {
      const hosting = await this.cli.volumeInfo(ref.hosting);
      if (!hosting) return undefined;
      const limit = (await this.cli.quotaList(ref.hosting, [ref.dir])).get(ref.dir);
      return limit ? this.toVolume(ref, '', { layout: 'subdir' }, limit.hardLimitBytes, await this.conditionOf(hosting)) : undefined;
    }
    const info = await this.cli.volumeInfo(ref.volume);
    const record = decodeRecord(info?.options.get(RECORD_OPTION));
    if (!info || !record || info.options.has(DELETED_OPTION)) return undefined;
    const condition = await this.conditionOf(info);
    // a volume whose bricks are all down has no quota to read: it is still a volume, reported sick
    const limit = await this.cli.quotaList(ref.volume, ['/']).then(
      (l) => l.get('/'),
      (e: unknown) => {
        if (condition.abnormal) return { hardLimitBytes: 0 };
        throw e;
      },
    );
    if (!limit) return undefined;
    return this.toVolume(ref, record.name, record.parameters, limit.hardLimitBytes, condition);
  }

  async findVolumeByName(name: string): Promise<Volume | undefined> {
    const hex = hexForName(name);
    const asVolume = volumeRef(hex);
    const info = await this.cli.volumeInfo(asVolume.volume);
    const record = decodeRecord(info?.options.get(RECORD_OPTION));
    if (record && !info!.options.has(DELETED_OPTION)) {
      checkSameName(record, name, asVolume.id);
      const limit = info!.started ? (await this.cli.quotaList(asVolume.volume, ['/'])).get('/') : undefined;
      // without a start or a quota it is an interrupted create, which createVolume finishes
      return limit ? this.toVolume(asVolume, name, record.parameters, limit.hardLimitBytes, healthy()) : undefined;
    }
    if (!this.config.hostingVolume) return undefined;
    const ref = subdirRef(this.config.hostingVolume, hex);
    if (!(await this.cli.volumeInfo(ref.hosting))) return undefined;
    const limit = (await this.cli.quotaList(ref.hosting, [ref.dir])).get(ref.dir);
    if (!limit) return undefined;
    const found = await this.withHostingMount(ref.hosting, (root) => readRecord(join(root, ref.dir)));
    if (!found) return undefined; // a delete that stopped part-way: createVolume clears it
    checkSameName(found, name, ref.id);
    return this.toVolume(ref, name, found.parameters, limit.hardLimitBytes, healthy());
  }

  isVolumeId(id: string): boolean {
    return parseVolumeId(id) !== undefined;
  }

  async listVolumes(range: ListRange): Promise<Volume[]> {
    const ids = [...(await this.subdirIds()), ...(await this.glusterVolumeIds())].filter((id) => id > range.afterId).sort();
    const entries: Volume[] = [];
    for (const id of ids) {
      if (range.limit > 0 && entries.length >= range.limit) break;
      const v = await this.getVolumeOrSick(id);
      if (v) entries.push(v); // an interrupted create or delete is not a volume
    }
    return entries;
  }

  async getCapacity(args: CapacityArgs): Promise<CapacityInfo> {
    let parsed: { layout: Layout; bricks: BrickLayout };
    try {
      parsed = this.parseParameters(args.parameters);
    } catch (e) {
      if (isCsiError(e, 'INVALID_ARGUMENT') || isCsiError(e, 'FAILED_PRECONDITION')) return { availableBytes: 0 };
      throw e;
    }
    // no hosting volume configured: the subdir layout can place nothing
    if (parsed.layout === 'subdir' && !this.config.hostingVolume) return { availableBytes: 0 };
    const free = parsed.layout === 'subdir' ? await this.hostingFreeBytes(this.requireHosting()) : await this.placeableBytes(parsed.bricks);
    const available = Math.floor(free / MiB) * MiB;
    return {
      availableBytes: available,
      maximumVolumeSize: Math.min(available, this.features.maxVolumeBytes),
      minimumVolumeSize: this.features.minVolumeBytes,
    };
  }

  async expandVolume(id: string, capacityBytes: number): Promise<ExpandResult> {
    const volume = await this.getVolume(id);
    const ref = parseVolumeId(id);
    if (!volume || !ref) throw notFound(`volume ${JSON.stringify(id)} does not exist`);
    if (capacityBytes < volume.capacityBytes) {
      throw outOfRange(`volume ${id} has ${volume.capacityBytes} bytes; a gluster quota is not shrunk (asked for ${capacityBytes})`);
    }
    if (capacityBytes > volume.capacityBytes) {
      if (ref.layout === 'subdir') await this.cli.quotaLimit(ref.hosting, ref.dir, capacityBytes);
      else await this.cli.quotaLimit(ref.volume, '/', capacityBytes);
    }
    return { capacityBytes, nodeExpansionRequired: false };
  }

  // ---- node side

  async nodeInfo(): Promise<NodeInfo> {
    return { nodeId: this.config.nodeId, maxVolumesPerNode: this.config.maxVolumesPerNode };
  }

  /** What to mount: the first reachable server, the others as backup volfile servers. */
  async openVolume(args: NodeVolumeArgs): Promise<FilesystemSource> {
    const ref = this.requireRef(args.volumeId);
    const primary = await this.reachableServer();
    return this.sourceOf(ref, primary);
  }

  async locateVolume(volumeId: string): Promise<FilesystemSource | undefined> {
    const ref = parseVolumeId(volumeId);
    return ref ? this.sourceOf(ref, this.config.servers[0]!) : undefined;
  }

  async mountCondition(_volumeId: string, path: string): Promise<VolumeCondition | undefined> {
    return mountBrickCondition(path);
  }

  async closeVolume(): Promise<void> {
    // nothing is attached on the node: unmounting the staging path was all
  }

  async volumeExists(volumeId: string): Promise<boolean> {
    const ref = parseVolumeId(volumeId);
    if (!ref) return false;
    try {
      // the volume layout's record is enough (one quick CLI call); a subdir volume is its quota
      if (ref.layout === 'volume') return decodeRecord((await this.cli.volumeInfo(ref.volume))?.options.get(RECORD_OPTION)) !== undefined;
      return (await this.getVolume(volumeId)) !== undefined;
    } catch (e) {
      // A node without glusterd access (or while glusterd is down) goes by the kernel's mounts alone.
      if (isCsiError(e, 'UNAVAILABLE')) return true;
      throw e;
    }
  }

  // ---- subdir layout

  private async createSubdir(ref: SubdirRef, record: VolumeRecord, bytes: number): Promise<Volume> {
    await this.ensureHostingReady(ref.hosting);
    await this.withHostingMount(ref.hosting, async (root) => {
      const free = await statfs(root).then((s) => s.bavail * s.bsize);
      if (bytes > free)
        throw resourceExhausted(`hosting volume ${ref.hosting} has ${free} bytes free, less than the ${bytes} bytes asked for`);
      const dir = join(root, ref.dir);
      const existing = await readRecord(dir);
      if (existing) checkSameName(existing, record.name, ref.id);
      else if (await pathExists(dir)) {
        // Left by a create or delete that stopped part-way: never handed out, may hold deleted data.
        await this.cli.quotaRemove(ref.hosting, ref.dir);
        await rm(dir, { recursive: true, force: true });
      }
      await mkdir(dir, { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      await setXattr(dir, RECORD_XATTR, encodeRecord(record));
    });
    await faultPoint('glusterfs.create.after-record');
    await this.cli.quotaLimit(ref.hosting, ref.dir, bytes);
    return this.toVolume(ref, record.name, record.parameters, bytes, healthy());
  }

  private async deleteSubdir(ref: SubdirRef): Promise<void> {
    if (!(await this.cli.volumeInfo(ref.hosting))) return; // its hosting volume is gone, and it with it
    await this.withHostingMount(ref.hosting, async (root) => {
      const dir = join(root, ref.dir);
      if (await pathExists(dir)) {
        await removeXattr(dir, RECORD_XATTR); // first: from here on it is no longer a volume
        await faultPoint('glusterfs.delete.after-record');
        await this.cli.quotaRemove(ref.hosting, ref.dir);
        await rm(dir, { recursive: true, force: true });
      } else {
        await this.cli.quotaRemove(ref.hosting, ref.dir);
      }
    });
  }

  private async subdirIds(): Promise<string[]> {
    const hosting = this.config.hostingVolume;
    if (!hosting || !(await this.cli.volumeInfo(hosting))) return [];
    const names = await this.withHostingMount(hosting, (root) => readdir(root));
    return names.flatMap((n) => {
      const m = SUBDIR_ENTRY.exec(n);
      return m ? [subdirRef(hosting, m[1]!).id] : [];
    });
  }

  private async hostingFreeBytes(hosting: string): Promise<number> {
    const info = await this.hostingInfo(hosting);
    const bricks = await this.cli.brickSpace(hosting);
    // bricks sharing a filesystem share its free space: count each (host, device) once
    const perDevice = new Map<string, number>();
    for (const b of bricks) perDevice.set(`${b.host} ${b.device}`, b.sizeFreeBytes);
    const total = [...perDevice.values()].reduce((a, b) => a + b, 0);
    return Math.floor(total / Math.max(1, info.replicaCount));
  }

  // ---- volume layout

  private async createGlusterVolume(ref: GlusterVolumeRef, record: VolumeRecord, layout: BrickLayout, bytes: number): Promise<Volume> {
    const servers = await poolServers(this.cli, this.config.servers, this.brickRoots);
    const problem = placementProblem(servers, brickCount(layout));
    if (problem) throw resourceExhausted(problem);
    const free = await this.placeableBytes(layout, servers);
    if (bytes > free) throw resourceExhausted(`the pool can place ${free} bytes for this layout, less than the ${bytes} bytes asked for`);
    let info = await this.cli.volumeInfo(ref.volume);
    const existing = decodeRecord(info?.options.get(RECORD_OPTION));
    if (existing && !info!.options.has(DELETED_OPTION)) checkSameName(existing, record.name, ref.id);
    else if (info) {
      await this.destroyGlusterVolume(ref, true); // made by a create that stopped before recording it, or deleted
      info = undefined;
    }
    if (!info) {
      // a fresh brick directory per attempt: glusterd refuses a directory that was part of a volume before
      const bricks = placeBricks(servers, layout, `${ref.volume}-${randomBytes(4).toString('hex')}`, parseInt(ref.hex.slice(0, 6), 16));
      await this.cli.volumeCreate(ref.volume, layoutArgs(layout), bricks);
    }
    await this.cli.volumeSet(ref.volume, RECORD_OPTION, encodeRecord(record));
    await faultPoint('glusterfs.create.after-record');
    // data safety: a replica volume takes writes only while more than half its bricks are up
    if (layout.kind === 'replicate') await this.cli.volumeSet(ref.volume, 'cluster.quorum-type', 'auto');
    if (this.config.serverQuorum) await this.cli.volumeSet(ref.volume, 'cluster.server-quorum-type', 'server');
    await this.cli.volumeStart(ref.volume);
    await this.cli.quotaEnable(ref.volume);
    await this.cli.volumeSet(ref.volume, 'features.quota-deem-statfs', 'on');
    await this.cli.quotaLimit(ref.volume, '/', bytes);
    return this.toVolume(ref, record.name, record.parameters, bytes, healthy());
  }

  private async deleteGlusterVolume(ref: GlusterVolumeRef): Promise<void> {
    const info = await this.cli.volumeInfo(ref.volume);
    if (info?.started && !info.options.has(DELETED_OPTION)) {
      const problem = await this.stillMounted(ref.volume);
      if (problem) throw failedPrecondition(problem);
    }
    await this.destroyGlusterVolume(ref, false);
  }

  /** Clients of the volume; a client unmounted a moment ago takes a few seconds to leave the bricks, so look again. */
  private async stillMounted(volume: string): Promise<string | undefined> {
    const deadline = Date.now() + CLIENT_GONE_MS;
    for (;;) {
      const problem = volumeClientsProblem(volume, await this.cli.volumeClients(volume));
      if (!problem || Date.now() > deadline) return problem;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * Stops and deletes the gluster volume and the brick directories on this server. glusterd refuses to
   * delete a volume while a server of the pool is down; the volume is then marked deleted (no longer a
   * volume to any call) and stopped, and the next create or delete of it finishes the job.
   */
  private async destroyGlusterVolume(ref: GlusterVolumeRef, mustFinish: boolean): Promise<void> {
    if (await this.cli.volumeInfo(ref.volume)) {
      await this.cli.volumeSet(ref.volume, DELETED_OPTION, new Date().toISOString());
      await this.cli.volumeStop(ref.volume);
      await faultPoint('glusterfs.delete.after-stop');
      try {
        await this.cli.volumeDelete(ref.volume);
      } catch (e) {
        if (!(e instanceof GlusterError && /peers are down/i.test(e.glusterMessage))) throw e;
        if (mustFinish)
          throw unavailable(
            `gluster volume ${ref.volume} awaits deletion, which glusterd refuses while a server is down: ${e.glusterMessage}`,
          );
        return;
      }
    }
    await this.removeBrickDirs(ref);
  }

  private async glusterVolumeIds(): Promise<string[]> {
    return (await this.cli.volumeNames()).filter((n) => parseVolumeId(n)?.layout === 'volume');
  }

  /** This server's brick directories of the volume (other servers' are left to their operators: no remote shell). */
  private async removeBrickDirs(ref: GlusterVolumeRef): Promise<void> {
    for (const root of this.brickRoots.get(this.config.servers[0]!) ?? []) {
      const entries = await readdir(root).catch(() => [] as string[]);
      for (const e of entries.filter((n) => n === ref.volume || n.startsWith(`${ref.volume}-`)))
        await rm(join(root, e), { recursive: true, force: true });
    }
  }

  /**
   * What one volume of this layout can hold: 0 when too few servers are up for its bricks, else the free
   * space of this server's brick roots (the servers are taken to be laid out alike) times its data bricks.
   */
  private async placeableBytes(layout: BrickLayout, known?: PoolServer[]): Promise<number> {
    const servers = known ?? (await poolServers(this.cli, this.config.servers, this.brickRoots));
    if (placementProblem(servers, brickCount(layout))) return 0;
    let free = 0;
    for (const r of this.brickRoots.get(this.config.servers[0]!) ?? []) {
      const fs = await statfs(r).catch(() => {
        throw failedPrecondition(`brick root ${r} does not exist on this controller's server`);
      });
      free = Math.max(free, fs.bavail * fs.bsize);
    }
    return layout.kind === 'disperse' ? free * (layout.disperse - layout.redundancy) : free;
  }

  /** A volume that cannot be read is reported through its condition, never failing the call about all volumes. */
  private async getVolumeOrSick(id: string): Promise<Volume | undefined> {
    try {
      return await this.getVolume(id);
    } catch (e) {
      const ref = parseVolumeId(id)!;
      const why = e instanceof Error ? e.message : String(e);
      return this.toVolume(ref, '', {}, 0, { abnormal: true, message: `volume ${id} cannot be read from gluster: ${why}` });
    }
  }

  /** Started, and its bricks up (the ones down named, and whether quorum holds). */
  private async conditionOf(info: GlusterVolumeInfo): Promise<VolumeCondition> {
    if (!info.started) return { abnormal: true, message: `gluster volume ${info.name} is not started` };
    try {
      return brickCondition(info, await this.cli.brickStates(info.name));
    } catch (e) {
      return { abnormal: true, message: `the state of gluster volume ${info.name}'s bricks is unknown: ${(e as Error).message}` };
    }
  }

  // ---- helpers

  private parseParameters(p: Record<string, string>): { layout: Layout; bricks: BrickLayout } {
    const layout = p.layout ?? 'subdir';
    if (layout !== 'subdir' && layout !== 'volume')
      throw invalidArgument(`parameter layout=${JSON.stringify(layout)}: expected subdir or volume`);
    if (layout === 'subdir') {
      for (const key of ['replica', 'arbiter', 'disperse', 'redundancy'])
        if (p[key] !== undefined)
          throw invalidArgument(`parameter ${key} applies to layout=volume only (a subdir volume has its hosting volume's replication)`);
      return { layout, bricks: { kind: 'single' } };
    }
    // replica 3 by default on a pool of three servers or more; a one-server pool keeps one brick
    const bricks = parseBrickLayout(p, this.config.servers.length >= 3 ? 3 : 1);
    this.requireBrickRoots();
    return { layout, bricks };
  }

  private requireHosting(): string {
    if (!this.config.hostingVolume)
      throw failedPrecondition('layout subdir needs a hosting volume: start the plugin with --hosting-volume NAME');
    return this.config.hostingVolume;
  }

  private requireBrickRoots(): string[] {
    if (this.config.brickRoots.length === 0)
      throw failedPrecondition('layout volume needs brick roots: start the plugin with --brick-root DIR');
    return this.config.brickRoots;
  }

  private requireRef(id: string): VolumeRef {
    const ref = parseVolumeId(id);
    if (!ref) throw invalidArgument(`volume id ${JSON.stringify(id)} is not a glusterfs volume id`);
    return ref;
  }

  private async hostingInfo(hosting: string) {
    const info = await this.cli.volumeInfo(hosting);
    if (!info)
      throw failedPrecondition(
        `hosting volume ${hosting} does not exist on ${this.config.servers[0]}; create and start it (see docs/glusterfs.md)`,
      );
    if (!info.started) throw failedPrecondition(`hosting volume ${hosting} is not started; run: gluster volume start ${hosting}`);
    return info;
  }

  /** Quotas on, and df showing the quota as the size; done once per hosting volume and process. */
  private async ensureHostingReady(hosting: string): Promise<void> {
    if (this.readyHosting.has(hosting)) return;
    const info = await this.hostingInfo(hosting);
    if (info.options.get('features.quota') !== 'on') await this.cli.quotaEnable(hosting);
    if (info.options.get('features.quota-deem-statfs') !== 'on') await this.cli.volumeSet(hosting, 'features.quota-deem-statfs', 'on');
    this.readyHosting.add(hosting);
  }

  /** Mounts the whole hosting volume in the work dir for the span of fn. */
  private async withHostingMount<T>(hosting: string, fn: (root: string) => Promise<T>): Promise<T> {
    const server = await this.reachableServer();
    await mkdir(this.config.workDir, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(join(this.config.workDir, `${hosting}-`));
    try {
      const source = this.sourceOfPath(`/${hosting}`, server);
      await mounter.mount(source.source, dir, source.fsType, source.options);
      try {
        return await fn(dir);
      } finally {
        await mounter.unmount(dir);
      }
    } finally {
      await rmdir(dir).catch(() => undefined);
    }
  }

  private sourceOf(ref: VolumeRef, primary: string): FilesystemSource {
    return this.sourceOfPath(mountPath(ref), primary);
  }

  private sourceOfPath(path: string, primary: string): FilesystemSource {
    const backups = this.config.servers.filter((s) => s !== primary);
    return {
      kind: 'filesystem',
      source: `${primary}:${path}`,
      fsType: 'glusterfs',
      options: backups.length ? [`backup-volfile-servers=${backups.join(':')}`] : [],
      aliases: this.config.servers.map((s) => `${s}:${path}`),
    };
  }

  /** The first server whose glusterd answers on its port; UNAVAILABLE naming them all when none does. */
  private async reachableServer(): Promise<string> {
    const failures: string[] = [];
    for (const server of this.config.servers) {
      const problem = await tcpProblem(server.replace(/^\[|\]$/g, ''), GLUSTERD_PORT, REACH_TIMEOUT_MS);
      if (!problem) return server;
      failures.push(`${server}:${GLUSTERD_PORT} ${problem}`);
    }
    throw unavailable(`no gluster server is reachable: ${failures.join('; ')}`);
  }

  private toVolume(ref: VolumeRef, name: string, parameters: Record<string, string>, bytes: number, condition: VolumeCondition): Volume {
    return {
      id: ref.id,
      name,
      capacityBytes: bytes,
      parameters,
      context: { layout: ref.layout },
      accessibleTopology: [],
      accessType: 'mount',
      publishedNodes: [],
      condition,
    };
  }
}

function checkSameName(record: VolumeRecord, name: string, id: string): void {
  if (record.name !== name) {
    throw failedPrecondition(`volume id ${id} for name ${JSON.stringify(name)} is held by ${JSON.stringify(record.name)} (hash collision)`);
  }
}

async function readRecord(dir: string): Promise<VolumeRecord | undefined> {
  try {
    return decodeRecord(await getXattr(dir, RECORD_XATTR));
  } catch (e) {
    if (isCsiError(e, 'NOT_FOUND')) return undefined;
    throw e;
  }
}

/** undefined when host:port accepts a TCP connection within timeoutMs, else why not. */
function tcpProblem(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`did not answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    socket.connect(port, host);
  });
}
