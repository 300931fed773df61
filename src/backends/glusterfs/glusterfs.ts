import { mkdir, mkdtemp, readdir, rm, rmdir, stat, statfs } from 'node:fs/promises';
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
import { failedPrecondition, invalidArgument, isRexError, notFound, outOfRange, resourceExhausted, unavailable } from '../../errors.js';
import { faultPoint } from '../../faults.js';
import { getXattr, missingTools, mounter, pathExists, readMountInfo, removeXattr, setXattr } from '../../os/index.js';
import { GlusterCli, type GlusterBrick } from './cli.js';
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
const MAX_REPLICA = 16;
/** the record on a subdir volume's directory; trusted.* so a task (without CAP_SYS_ADMIN) cannot forge it */
const RECORD_XATTR = 'trusted.rexcsi.volume';
/** the record on a volume-layout volume (user.* options are free-form and kept by glusterd) */
const RECORD_OPTION = 'user.rexcsi.volume';
const SUBDIR_ENTRY = /^csi-([0-9a-f]{24})$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$/;

export interface GlusterConfig {
  /** volfile servers, in order of preference; the first also holds the volume layout's bricks */
  servers: string[];
  hostingVolume?: string | undefined;
  brickRoots: string[];
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
  for (const r of c.brickRoots)
    if (!r.startsWith('/') || r.split('/').includes('..')) throw new Error(`--brick-root=${JSON.stringify(r)}: expected an absolute path`);
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

  constructor(private readonly config: GlusterConfig) {
    checkGlusterConfig(config);
    this.cli = new GlusterCli(config.glusterdSocket, config.servers[0]!);
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
      parameterKeys: ['layout', 'replica'],
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
    const { layout, replica } = this.parseParameters(args.parameters);
    const hex = hexForName(args.name);
    const record: VolumeRecord = { v: 1, name: args.name, layout, parameters: args.parameters, createdAt: new Date().toISOString() };
    if (layout === 'subdir') return this.createSubdir(subdirRef(this.requireHosting(), hex), record, args.capacityBytes);
    return this.createGlusterVolume(volumeRef(hex), record, replica, args.capacityBytes);
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
      if (!(await this.cli.volumeInfo(ref.hosting))) return undefined;
      const limit = (await this.cli.quotaList(ref.hosting, [ref.dir])).get(ref.dir);
      return limit ? this.toVolume(ref, '', { layout: 'subdir' }, limit.hardLimitBytes, healthy()) : undefined;
    }
    const info = await this.cli.volumeInfo(ref.volume);
    const record = decodeRecord(info?.options.get(RECORD_OPTION));
    if (!info || !record) return undefined;
    const limit = (await this.cli.quotaList(ref.volume, ['/'])).get('/');
    if (!limit) return undefined;
    const condition = info.started ? healthy() : { abnormal: true, message: `gluster volume ${ref.volume} is not started` };
    return this.toVolume(ref, record.name, record.parameters, limit.hardLimitBytes, condition);
  }

  async findVolumeByName(name: string): Promise<Volume | undefined> {
    const hex = hexForName(name);
    const asVolume = volumeRef(hex);
    const info = await this.cli.volumeInfo(asVolume.volume);
    const record = decodeRecord(info?.options.get(RECORD_OPTION));
    if (record) {
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
      const v = await this.getVolume(id);
      if (v) entries.push(v); // an interrupted create or delete is not a volume
    }
    return entries;
  }

  async getCapacity(args: CapacityArgs): Promise<CapacityInfo> {
    let parsed: { layout: Layout; replica: number };
    try {
      parsed = this.parseParameters(args.parameters);
    } catch (e) {
      if (isRexError(e, 'INVALID_ARGUMENT') || isRexError(e, 'FAILED_PRECONDITION')) return { availableBytes: 0 };
      throw e;
    }
    const free =
      parsed.layout === 'subdir' ? await this.hostingFreeBytes(this.requireHosting()) : await this.brickRootsFreeBytes(parsed.replica);
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
      if (isRexError(e, 'UNAVAILABLE')) return true;
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

  private async createGlusterVolume(ref: GlusterVolumeRef, record: VolumeRecord, replica: number, bytes: number): Promise<Volume> {
    const free = await this.brickRootsFreeBytes(replica);
    if (bytes > free)
      throw resourceExhausted(`the brick roots have ${free} bytes free for replica ${replica}, less than the ${bytes} bytes asked for`);
    let info = await this.cli.volumeInfo(ref.volume);
    const existing = decodeRecord(info?.options.get(RECORD_OPTION));
    if (existing) checkSameName(existing, record.name, ref.id);
    else if (info) {
      await this.destroyGlusterVolume(ref); // made by a create that stopped before recording it
      info = undefined;
    }
    if (!info) {
      const bricks = this.bricksFor(ref, replica);
      await this.removeBrickDirs(ref);
      for (const b of bricks) await mkdir(b.path, { recursive: true, mode: 0o755 });
      await this.cli.volumeCreate(ref.volume, replica, bricks);
    }
    await this.cli.volumeSet(ref.volume, RECORD_OPTION, encodeRecord(record));
    await faultPoint('glusterfs.create.after-record');
    await this.cli.volumeStart(ref.volume);
    await this.cli.quotaEnable(ref.volume);
    await this.cli.volumeSet(ref.volume, 'features.quota-deem-statfs', 'on');
    await this.cli.quotaLimit(ref.volume, '/', bytes);
    return this.toVolume(ref, record.name, record.parameters, bytes, healthy());
  }

  private async deleteGlusterVolume(ref: GlusterVolumeRef): Promise<void> {
    await this.destroyGlusterVolume(ref);
  }

  private async destroyGlusterVolume(ref: GlusterVolumeRef): Promise<void> {
    if (await this.cli.volumeInfo(ref.volume)) {
      await this.cli.volumeStop(ref.volume);
      await faultPoint('glusterfs.delete.after-stop');
      await this.cli.volumeDelete(ref.volume);
    }
    await this.removeBrickDirs(ref);
  }

  private async glusterVolumeIds(): Promise<string[]> {
    return (await this.cli.volumeNames()).filter((n) => parseVolumeId(n)?.layout === 'volume');
  }

  /** Brick i on brick root i mod n, under a directory named after the volume. */
  private bricksFor(ref: GlusterVolumeRef, replica: number): GlusterBrick[] {
    const roots = this.requireBrickRoots();
    return Array.from({ length: replica }, (_, i) => ({
      host: this.config.servers[0]!,
      path: join(roots[i % roots.length]!, ref.volume, `brick${i}`),
    }));
  }

  private async removeBrickDirs(ref: GlusterVolumeRef): Promise<void> {
    for (const root of this.config.brickRoots) await rm(join(root, ref.volume), { recursive: true, force: true });
  }

  private async brickRootsFreeBytes(replica: number): Promise<number> {
    const roots = this.requireBrickRoots();
    const perDevice = new Map<number, number>();
    for (const r of roots) {
      const [st, fs] = await Promise.all([stat(r), statfs(r)]).catch(() => {
        throw failedPrecondition(`brick root ${r} does not exist on this controller's server`);
      });
      perDevice.set(st.dev, fs.bavail * fs.bsize);
    }
    const total = [...perDevice.values()].reduce((a, b) => a + b, 0);
    return Math.floor(total / replica);
  }

  // ---- helpers

  private parseParameters(p: Record<string, string>): { layout: Layout; replica: number } {
    const layout = p.layout ?? 'subdir';
    if (layout !== 'subdir' && layout !== 'volume')
      throw invalidArgument(`parameter layout=${JSON.stringify(layout)}: expected subdir or volume`);
    if (layout === 'subdir') {
      if (p.replica !== undefined)
        throw invalidArgument("parameter replica applies to layout=volume only (a subdir volume has its hosting volume's replication)");
      return { layout, replica: 1 };
    }
    const replica = p.replica === undefined ? 1 : /^[1-9]\d?$/.test(p.replica) ? Number(p.replica) : NaN;
    if (!(replica >= 1 && replica <= MAX_REPLICA))
      throw invalidArgument(`parameter replica=${JSON.stringify(p.replica)}: expected a whole number from 1 to ${MAX_REPLICA}`);
    if (replica === 2) throw invalidArgument('parameter replica=2 is refused: gluster replica 2 volumes split-brain; use 1 or 3');
    this.requireBrickRoots();
    return { layout, replica };
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

function healthy(): VolumeCondition {
  return { abnormal: false, message: 'volume is healthy' };
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
    if (isRexError(e, 'NOT_FOUND')) return undefined;
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
