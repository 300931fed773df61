import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendFeatures } from '../backends/backend.js';
import type { ControllerService } from '../controller/controller.js';
import type { NodeService } from '../node/node.js';
import type { VolumeCapability__Output } from '../csi/gen/csi/v1/VolumeCapability.js';
import { alreadyExists, failedPrecondition, invalidArgument, isCsiError, notFound } from '../errors.js';
import type { VolumeCatalog } from './catalog.js';
import type { HolderStore } from './holders.js';
import { KeyedLock } from './keyed-lock.js';
import { checkName, nameProblem } from './names.js';
import { mapOpts, optsDifference } from './opts.js';

// The Docker volume plugin's operations on the one volume set, each made of the CSI services' own calls
// (so validation, per-volume locks, identical-request joining and error mapping are theirs): Create is
// CreateVolume, Remove is DeleteVolume, the first Mount of a volume on this node is NodeStage + NodePublish
// onto <root>/<name>/data, and the last Unmount undoes them. Holders are counted by Docker's mount ID.

export type Scope = 'local' | 'global';

/** Volumes every node can mount are global (Docker Swarm may move a task's volume); loop volumes live on one host. */
const SCOPES: Record<string, Scope> = { loop: 'local', ebs: 'global', efs: 'global', glusterfs: 'global' };

export interface DockerVolume {
  Name: string;
  Mountpoint: string;
  Status?: Record<string, string | number>;
}

export interface DriverDeps {
  backend: {
    readonly name: string;
    readonly features: Pick<BackendFeatures, 'parameterKeys' | 'topologyKeys' | 'accessModes' | 'nodeSource'>;
  };
  controller: Pick<ControllerService, 'createVolume' | 'deleteVolume'>;
  node: Pick<NodeService, 'stage' | 'unstage' | 'publish' | 'unpublish'>;
  catalog: VolumeCatalog;
  holders: HolderStore;
  /** --docker-root */
  root: string;
}

const MAX_ID_BYTES = 256;

export class DockerDriver {
  private readonly lock = new KeyedLock();

  constructor(private readonly deps: DriverDeps) {}

  get scope(): Scope {
    return SCOPES[this.deps.backend.name] ?? 'local';
  }

  dataPath(name: string): string {
    return join(this.deps.root, name, 'data');
  }

  private stagingPath(name: string): string {
    return join(this.deps.root, name, 'staging');
  }

  async create(rawName: unknown, opts: Record<string, string>): Promise<void> {
    const name = checkName(rawName);
    const { backend, controller, catalog } = this.deps;
    const shape = mapOpts(opts, backend.features, backend.name);
    await this.lock.run(name, async () => {
      try {
        await controller.createVolume({
          name,
          capacity_range: shape.requiredBytes ? { required_bytes: shape.requiredBytes, limit_bytes: 0 } : null,
          volume_capabilities: [this.capability()],
          parameters: shape.parameters,
          secrets: {},
          volume_content_source: null,
          accessibility_requirements: shape.topology
            ? { requisite: [{ segments: shape.topology }], preferred: [{ segments: shape.topology }] }
            : null,
          mutable_parameters: {},
        });
      } catch (e) {
        // CSI wants the same parameters again; Docker and dvdcli re-create with fewer (or none): compare only those.
        if (!isCsiError(e, 'ALREADY_EXISTS')) throw e;
        const existing = await catalog.findByName(name);
        if (!existing) throw e;
        const why = optsDifference(existing, shape);
        if (why) throw alreadyExists(`volume ${name} already exists (${existing.id}) but ${why}`);
      }
    });
  }

  async remove(rawName: unknown): Promise<void> {
    const name = checkName(rawName);
    await this.lock.run(name, async () => {
      const holders = this.deps.holders.holdersOf(name);
      if (holders.length > 0)
        throw failedPrecondition(`volume ${name} is mounted on this node by ${describeHolders(holders)}; unmount it first`);
      const volume = await this.deps.catalog.findByName(name);
      if (!volume) return; // already gone
      await this.deps.controller.deleteVolume({ volume_id: volume.id, secrets: {} });
    });
  }

  async mount(rawName: unknown, rawId: unknown): Promise<string> {
    const name = checkName(rawName);
    const holder = checkHolderId(rawId);
    return this.lock.run(name, async () => {
      const volume = await this.deps.catalog.findByName(name);
      if (!volume) throw notFound(`volume ${name} does not exist; create it first (docker volume create -d DRIVER ${name})`);
      const { holders } = this.deps;
      const before = holders.holdersOf(name);
      // The holder is on disk before anything is mounted: a crash in between can leave a count, never a mount nobody counts.
      await holders.add(name, volume.id, holder);
      try {
        await this.attach(name, volume.id, volume.context);
      } catch (e) {
        if (!before.includes(holder)) await holders.remove(name, holder);
        if (before.length === 0) await this.detach(name, volume.id).catch(() => undefined);
        throw e;
      }
      return this.dataPath(name);
    });
  }

  async unmount(rawName: unknown, rawId: unknown): Promise<void> {
    const name = checkName(rawName);
    const holder = checkHolderId(rawId);
    await this.lock.run(name, async () => {
      const { holders } = this.deps;
      const held = holders.holdersOf(name);
      const volumeId = holders.volumeIdOf(name);
      if (!held.includes(holder) || volumeId === undefined) return; // not ours (any more): nothing to undo
      // Unmounted before the count drops: a crash in between leaves a count, and the next Unmount finishes.
      if (held.length === 1) await this.detach(name, volumeId);
      await holders.remove(name, holder);
    });
  }

  /** Where the volume is mounted on this node, '' when it is not. */
  path(rawName: unknown): string {
    const name = checkName(rawName);
    return this.deps.holders.holdersOf(name).length > 0 ? this.dataPath(name) : '';
  }

  async get(rawName: unknown): Promise<DockerVolume> {
    const name = checkName(rawName);
    const volume = await this.deps.catalog.findByName(name);
    if (!volume) throw notFound(`volume ${name} does not exist`);
    const holders = this.deps.holders.holdersOf(name);
    return {
      Name: name,
      Mountpoint: holders.length > 0 ? this.dataPath(name) : '',
      Status: {
        volumeId: volume.id,
        backend: this.deps.backend.name,
        capacityBytes: volume.capacityBytes,
        mounts: holders.length,
      },
    };
  }

  /** Every volume whose name can be a Docker name (a CSI volume named otherwise is not listed). */
  async list(): Promise<DockerVolume[]> {
    const volumes = await this.deps.catalog.list();
    return volumes
      .filter((v) => nameProblem(v.name) === undefined)
      .map((v) => ({ Name: v.name, Mountpoint: this.deps.holders.holdersOf(v.name).length > 0 ? this.dataPath(v.name) : '' }));
  }

  /** NodeStage + NodePublish; both are idempotent, so a repeat (another holder, a restart) repairs rather than fails. */
  private async attach(name: string, volumeId: string, context: Record<string, string>): Promise<void> {
    const staging = this.stagingPath(name);
    await mkdir(staging, { recursive: true, mode: 0o750 });
    const capability = this.capability();
    await this.deps.node.stage({
      volume_id: volumeId,
      publish_context: {},
      staging_target_path: staging,
      volume_capability: capability,
      secrets: {},
      volume_context: context,
    });
    await this.deps.node.publish({
      volume_id: volumeId,
      publish_context: {},
      staging_target_path: staging,
      target_path: this.dataPath(name),
      volume_capability: capability,
      readonly: false,
      secrets: {},
      volume_context: context,
    });
  }

  private async detach(name: string, volumeId: string): Promise<void> {
    const staging = this.stagingPath(name);
    await this.deps.node.unpublish({ volume_id: volumeId, target_path: this.dataPath(name) });
    await this.deps.node.unstage({ volume_id: volumeId, staging_target_path: staging });
    // Empty directories only: rmdir never removes a file, let alone a mounted one.
    await rmdir(staging).catch(() => undefined);
    await rmdir(join(this.deps.root, name)).catch(() => undefined);
  }

  /** A filesystem, shared by every node for shared-filesystem backends (glusterfs, efs), else one node's (loop, ebs). */
  private capability(): VolumeCapability__Output {
    const f = this.deps.backend.features;
    const multi = f.nodeSource === 'filesystem' && f.accessModes.includes('MULTI_NODE_MULTI_WRITER');
    return {
      access_type: 'mount',
      mount: { fs_type: '', mount_flags: [], volume_mount_group: '' },
      access_mode: { mode: multi ? 'MULTI_NODE_MULTI_WRITER' : 'SINGLE_NODE_WRITER' },
    };
  }
}

/** Docker's mount ID (64 hex digits); dvdcli sends none, which is one holder, ''. */
function checkHolderId(id: unknown): string {
  if (id === undefined || id === null) return '';
  if (typeof id !== 'string') throw invalidArgument(`ID must be a string, not ${typeof id}`);
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw invalidArgument(`ID is longer than ${MAX_ID_BYTES} bytes`);
  if ([...id].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    throw invalidArgument('ID must not contain control characters');
  return id;
}

export function describeHolders(holders: string[]): string {
  const shown = holders.map((h) => (h === '' ? 'dvdcli (no ID)' : h.length > 12 ? h.slice(0, 12) : h));
  return `${holders.length} holder${holders.length === 1 ? '' : 's'} (${shown.join(', ')})`;
}
