// A client that calls a CSI plugin exactly as an Apache Mesos agent does (Mesos 1.6 to 1.11; the facts are
// in docs/mesos.md and come from Mesos' own src/csi/v0_volume_manager.cpp, v1_volume_manager.cpp, paths.cpp and
// the storage local resource provider). No Mesos agent can run here (no package, no container engine), so
// the tests replay its calls, its paths, its deadlines, its retries and the checks it makes on the answers;
// a check Mesos makes that fails here throws MesosFailure, as the agent would fail the operation.
//
// Simulated, and why: the agent itself. Scaled for test time: the CreateVolume/DeleteVolume retry backoff
// (Mesos: random up to a 10 s factor, doubling to a 10 min cap, retrying forever; here the factor, the cap
// and a give-up time are options).

import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { csiClients, isServiceError, promisify, type CsiClients, type PromiseClient } from '../helpers/client.js';
import { mountsUnder } from '../helpers/tmp.js';
import { csiProtoV0 } from '../../src/v0/proto.js';
import type { ProtoGrpcType as V0Proto } from '../../src/v0/gen/csi.js';
import type { VolumeCapability as V1Capability } from '../../src/csi/gen/csi/v1/VolumeCapability.js';
import type { VolumeCapability as V0Capability } from '../../src/v0/gen/csi/v0/VolumeCapability.js';
import { capabilityKey, type DiskProfile, type ProfileCapability } from './profiles.js';

export type CsiVersion = 'v1' | 'v0';
export type CsiService = 'CONTROLLER_SERVICE' | 'NODE_SERVICE';

/** Mesos' per-call deadline (DEFAULT_CSI_RPC_TIMEOUT). */
export const MESOS_RPC_DEADLINE_MS = 60_000;

export class MesosFailure extends Error {}

type V0 = V0Proto['csi']['v0'];
interface CsiV0Clients {
  identity: PromiseClient<V0['Identity']['service']>;
  controller: PromiseClient<V0['Controller']['service']>;
  node: PromiseClient<V0['Node']['service']>;
  close(): void;
}

function csiV0Clients(endpoint: string): CsiV0Clients {
  const v0 = csiProtoV0().csi.v0;
  const target = endpoint.startsWith('unix:') ? endpoint : `unix://${endpoint}`;
  const creds = grpc.credentials.createInsecure();
  const channel = new grpc.Channel(target, creds, {});
  const opts = { channelOverride: channel };
  return {
    identity: promisify(new v0.Identity(target, creds, opts), v0.Identity.service, 'csi.v0.Identity'),
    controller: promisify(new v0.Controller(target, creds, opts), v0.Controller.service, 'csi.v0.Controller'),
    node: promisify(new v0.Node(target, creds, opts), v0.Node.service, 'csi.v0.Node'),
    close: () => channel.close(),
  };
}

/** One csi.v0 Identity/Probe on a fresh connection. */
export async function probeV0(endpoint: string, deadlineMs = 2000) {
  const c = csiV0Clients(endpoint);
  try {
    return await c.identity.Probe({}, { deadlineMs });
  } finally {
    c.close();
  }
}

/**
 * http::encode from libprocess, which Mesos applies to volume ids in its paths: reserved and unsafe
 * characters, controls and non-ASCII bytes become %XX (upper case); everything else stays.
 */
export function mesosEncode(s: string): string {
  const always = new Set('$&+,/:;=?@ "<>#%{}|\\^~[]`');
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += always.has(c) || byte < 0x20 || byte > 0x7f ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : c;
  }
  return out;
}

/** `<root>/<type>/<name>/...`, Mesos' csi::paths. */
export class MesosPaths {
  constructor(
    readonly csiRoot: string,
    readonly type: string,
    readonly name: string,
    /** target_path_root of a CSIPluginInfo (external volumes), else `<root>/<type>/<name>/mounts` */
    readonly mountRoot = join(csiRoot, type, name, 'mounts'),
  ) {}
  mountPath(volumeId: string): string {
    return join(this.mountRoot, mesosEncode(volumeId));
  }
  staging(volumeId: string): string {
    return join(this.mountPath(volumeId), 'staging');
  }
  target(volumeId: string): string {
    return join(this.mountPath(volumeId), 'target');
  }
  volumeState(volumeId: string): string {
    return join(this.csiRoot, this.type, this.name, 'volumes', mesosEncode(volumeId), 'volume.state');
  }
}

export interface MesosClientOptions {
  endpoint: string;
  /** CSIPluginInfo.type and .name: they name Mesos' directories */
  pluginType: string;
  pluginName: string;
  /** the agent's work_dir; Mesos' CSI root is `<work_dir>/csi` */
  workDir: string;
  /** the services Mesos was told the plugin container provides */
  services: CsiService[];
  /** target_path_root, for a plugin configured for external volumes */
  targetPathRoot?: string;
  deadlineMs?: number;
  /** first retry backoff factor (Mesos: 10 s); doubles up to retryCapMs */
  retryBackoffMs?: number;
  retryCapMs?: number;
  /** give up retrying after this long (Mesos never does; a test must end) */
  retryGiveUpMs?: number;
}

/** What Mesos keeps per volume (csi::state::VolumeState), in memory here. */
export interface VolumeState {
  state: 'CREATED' | 'NODE_READY' | 'VOL_READY' | 'PUBLISHED';
  capability: ProfileCapability;
  parameters: Record<string, string>;
  context: Record<string, string>;
  publishContext: Record<string, string>;
  readonly: boolean;
}

export interface ListedVolume {
  id: string;
  capacityBytes: number;
  context: Record<string, string>;
}

export interface StartupResult {
  version: CsiVersion;
  pluginCapabilities: string[];
  controllerCapabilities: string[];
  nodeCapabilities: string[];
  /** from NodeGetInfo (v1) or NodeGetId (v0), asked only when the controller can publish */
  nodeId?: string;
}

const RETRYABLE = new Set<number>([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class MesosClient {
  readonly paths: MesosPaths;
  /** Every RPC made, `csi.v1.Identity/Probe` style, in order. */
  readonly calls: string[] = [];
  readonly volumes = new Map<string, VolumeState>();
  version: CsiVersion | undefined;
  private controllerCaps = new Set<string>();
  private nodeCaps = new Set<string>();
  private nodeId: string | undefined;

  constructor(private readonly opts: MesosClientOptions) {
    const csiRoot = join(opts.workDir, 'csi');
    this.paths = new MesosPaths(csiRoot, opts.pluginType, opts.pluginName, opts.targetPathRoot);
  }

  // ---- calling

  private get deadlineMs(): number {
    return this.opts.deadlineMs ?? MESOS_RPC_DEADLINE_MS;
  }

  /** One call on a fresh connection, as Mesos makes a new gRPC client per call. */
  private async v1<T>(
    name: string,
    fn: (c: CsiClients, o: { deadlineMs: number }) => Promise<T>,
    deadlineMs = this.deadlineMs,
  ): Promise<T> {
    this.calls.push(`csi.v1.${name}`);
    const c = csiClients(this.opts.endpoint);
    try {
      return await fn(c, { deadlineMs });
    } finally {
      c.close();
    }
  }

  private async v0<T>(
    name: string,
    fn: (c: CsiV0Clients, o: { deadlineMs: number }) => Promise<T>,
    deadlineMs = this.deadlineMs,
  ): Promise<T> {
    this.calls.push(`csi.v0.${name}`);
    const c = csiV0Clients(this.opts.endpoint);
    try {
      return await fn(c, { deadlineMs });
    } finally {
      c.close();
    }
  }

  /** Mesos' retry loop for CreateVolume and DeleteVolume: only DEADLINE_EXCEEDED and UNAVAILABLE. */
  private async retried<T>(attempt: (n: number) => Promise<T>): Promise<{ result: T; retries: number }> {
    let backoff = this.opts.retryBackoffMs ?? 10_000;
    const cap = this.opts.retryCapMs ?? 600_000;
    const giveUpAt = Date.now() + (this.opts.retryGiveUpMs ?? 120_000);
    for (let n = 0; ; n++) {
      try {
        return { result: await attempt(n), retries: n };
      } catch (e) {
        if (!isServiceError(e) || !RETRYABLE.has(e.code) || Date.now() > giveUpAt) throw e;
        await sleep(backoff * Math.random());
        backoff = Math.min(backoff * 2, cap);
      }
    }
  }

  private needVersion(): CsiVersion {
    if (!this.version) throw new Error('start() first');
    return this.version;
  }

  // ---- start-up (VolumeManagerProcess::prepareServices, after the version probe)

  /** csi.v1.Identity/Probe first; csi.v0 only when that is UNIMPLEMENTED. Any other error is fatal. */
  async detectVersion(): Promise<CsiVersion> {
    try {
      await this.v1('Identity/Probe', (c, o) => c.identity.Probe({}, o));
      this.version = 'v1';
    } catch (e) {
      if (!isServiceError(e) || e.code !== grpc.status.UNIMPLEMENTED) throw e;
      await this.v0('Identity/Probe', (c, o) => c.identity.Probe({}, o));
      this.version = 'v0';
    }
    return this.version;
  }

  async start(): Promise<StartupResult> {
    const version = await this.detectVersion();
    const services = this.opts.services;
    const pluginCaps =
      version === 'v1'
        ? (await this.v1('Identity/GetPluginCapabilities', (c, o) => c.identity.GetPluginCapabilities({}, o))).capabilities.map((x) =>
            String(x.service?.type),
          )
        : (await this.v0('Identity/GetPluginCapabilities', (c, o) => c.identity.GetPluginCapabilities({}, o))).capabilities.map((x) =>
            String(x.service?.type),
          );
    if (services.includes('CONTROLLER_SERVICE') && !pluginCaps.includes('CONTROLLER_SERVICE')) {
      throw new MesosFailure(`CONTROLLER_SERVICE plugin capability is not supported for CSI plugin type '${this.opts.pluginType}'`);
    }
    // Mesos asks GetPluginInfo once per service (all on the same endpoint) and compares name and version.
    const infos: { name: string; vendor_version: string }[] = [];
    for (const _service of services) {
      infos.push(
        version === 'v1'
          ? await this.v1('Identity/GetPluginInfo', (c, o) => c.identity.GetPluginInfo({}, o))
          : await this.v0('Identity/GetPluginInfo', (c, o) => c.identity.GetPluginInfo({}, o)),
      );
    }
    if (infos.some((i) => i.name !== infos[0]!.name || i.vendor_version !== infos[0]!.vendor_version)) {
      throw new MesosFailure('inconsistent plugin services (GetPluginInfo differs between services)');
    }
    if (services.includes('CONTROLLER_SERVICE')) {
      const caps =
        version === 'v1'
          ? (await this.v1('Controller/ControllerGetCapabilities', (c, o) => c.controller.ControllerGetCapabilities({}, o))).capabilities
          : (await this.v0('Controller/ControllerGetCapabilities', (c, o) => c.controller.ControllerGetCapabilities({}, o))).capabilities;
      this.controllerCaps = new Set(caps.map((x) => String(x.rpc?.type)));
    }
    if (services.includes('NODE_SERVICE')) {
      const caps =
        version === 'v1'
          ? (await this.v1('Node/NodeGetCapabilities', (c, o) => c.node.NodeGetCapabilities({}, o))).capabilities
          : (await this.v0('Node/NodeGetCapabilities', (c, o) => c.node.NodeGetCapabilities({}, o))).capabilities;
      this.nodeCaps = new Set(caps.map((x) => String(x.rpc?.type)));
      if (this.controllerCaps.has('PUBLISH_UNPUBLISH_VOLUME')) {
        this.nodeId =
          version === 'v1'
            ? (await this.v1('Node/NodeGetInfo', (c, o) => c.node.NodeGetInfo({}, o))).node_id
            : (await this.v0('Node/NodeGetId', (c, o) => c.node.NodeGetId({}, o))).node_id;
      }
    }
    return {
      version,
      pluginCapabilities: pluginCaps,
      controllerCapabilities: [...this.controllerCaps],
      nodeCapabilities: [...this.nodeCaps],
      ...(this.nodeId !== undefined ? { nodeId: this.nodeId } : {}),
    };
  }

  // ---- reconciliation (storage local resource provider)

  /** ListVolumes in ONE call: Mesos sets no max_entries and ignores next_token. A duplicate is fatal (MESOS-9956). */
  async listVolumes(): Promise<ListedVolume[]> {
    if (!this.controllerCaps.has('LIST_VOLUMES')) return [];
    const listed: ListedVolume[] =
      this.needVersion() === 'v1'
        ? (await this.v1('Controller/ListVolumes', (c, o) => c.controller.ListVolumes({}, o))).entries.map((e) => ({
            id: e.volume?.volume_id ?? '',
            capacityBytes: e.volume?.capacity_bytes ?? 0,
            context: e.volume?.volume_context ?? {},
          }))
        : (await this.v0('Controller/ListVolumes', (c, o) => c.controller.ListVolumes({}, o))).entries.map((e) => ({
            id: e.volume?.id ?? '',
            capacityBytes: e.volume?.capacity_bytes ?? 0,
            context: e.volume?.attributes ?? {},
          }));
    const seen = new Set<string>();
    for (const v of listed) {
      if (v.id === '') throw new MesosFailure('ListVolumes returned a volume without an id');
      if (seen.has(v.id)) throw new MesosFailure(`ListVolumes returned volume ${v.id} twice (MESOS-9956 crashed the agent on this)`);
      seen.add(v.id);
    }
    return listed;
  }

  /** GetCapacity with one profile's capability and parameters; 0 without GET_CAPACITY. */
  async getCapacity(profile: DiskProfile): Promise<number> {
    if (!this.controllerCaps.has('GET_CAPACITY')) return 0;
    const parameters = profile.create_parameters ?? {};
    return this.needVersion() === 'v1'
      ? (
          await this.v1('Controller/GetCapacity', (c, o) =>
            c.controller.GetCapacity({ volume_capabilities: [v1Cap(profile.volume_capabilities)], parameters }, o),
          )
        ).available_capacity
      : (
          await this.v0('Controller/GetCapacity', (c, o) =>
            c.controller.GetCapacity({ volume_capabilities: [v0Cap(profile.volume_capabilities)], parameters }, o),
          )
        ).available_capacity;
  }

  /** One reconciliation round: the volumes (pre-existing RAW disks) and each profile's capacity. */
  async reconcile(profiles: Record<string, DiskProfile>): Promise<{ volumes: ListedVolume[]; capacity: Record<string, number> }> {
    const volumes = await this.listVolumes();
    const capacity: Record<string, number> = {};
    for (const [name, profile] of Object.entries(profiles)) capacity[name] = await this.getCapacity(profile);
    return { volumes, capacity };
  }

  // ---- CREATE_DISK

  /**
   * From a storage pool: CreateVolume named by the operation's UUID, required == limit == MB x 1 MiB,
   * retried on DEADLINE_EXCEEDED/UNAVAILABLE. `firstDeadlineMs` shortens the first attempt's deadline, to
   * stand in for an operation slower than Mesos' 60 s.
   */
  async createDisk(
    profile: DiskProfile,
    sizeMB: number,
    opts: { name?: string; firstDeadlineMs?: number; beforeRetry?: () => Promise<void> } = {},
  ) {
    if (!this.controllerCaps.has('CREATE_DELETE_VOLUME'))
      throw new MesosFailure('CREATE_DELETE_VOLUME controller capability is not supported');
    const name = opts.name ?? randomUUID();
    const bytes = sizeMB * 1024 * 1024;
    const parameters = profile.create_parameters ?? {};
    const cap = profile.volume_capabilities;
    const { result, retries } = await this.retried(async (n) => {
      if (n > 0) await opts.beforeRetry?.();
      const deadline = n === 0 && opts.firstDeadlineMs !== undefined ? opts.firstDeadlineMs : this.deadlineMs;
      const range = { required_bytes: bytes, limit_bytes: bytes };
      if (this.needVersion() === 'v1') {
        const res = await this.v1(
          'Controller/CreateVolume',
          (c, o) => c.controller.CreateVolume({ name, capacity_range: range, volume_capabilities: [v1Cap(cap)], parameters }, o),
          deadline,
        );
        return {
          id: res.volume?.volume_id ?? '',
          context: res.volume?.volume_context ?? {},
          capacityBytes: res.volume?.capacity_bytes ?? 0,
        };
      }
      const res = await this.v0(
        'Controller/CreateVolume',
        (c, o) => c.controller.CreateVolume({ name, capacity_range: range, volume_capabilities: [v0Cap(cap)], parameters }, o),
        deadline,
      );
      return { id: res.volume?.id ?? '', context: res.volume?.attributes ?? {}, capacityBytes: res.volume?.capacity_bytes ?? 0 };
    });
    if (result.id === '') throw new MesosFailure(`CreateVolume ${name} returned no volume id`);
    if (this.volumes.has(result.id)) throw new MesosFailure(`Volume with name '${name}' already exists`);
    this.volumes.set(result.id, {
      state: 'CREATED',
      capability: cap,
      parameters,
      context: result.context,
      publishContext: {},
      readonly: false,
    });
    return { name, ...result, retries };
  }

  /**
   * From a pre-existing disk: ValidateVolumeCapabilities. v1: the confirmed context, one confirmed
   * capability and the confirmed parameters must equal what was asked. v0: `supported`.
   */
  async importPreExisting(volume: ListedVolume, profile: DiskProfile): Promise<void> {
    const cap = profile.volume_capabilities;
    const parameters = profile.create_parameters ?? {};
    if (this.needVersion() === 'v1') {
      const res = await this.v1('Controller/ValidateVolumeCapabilities', (c, o) =>
        c.controller.ValidateVolumeCapabilities(
          { volume_id: volume.id, volume_capabilities: [v1Cap(cap)], volume_context: volume.context, parameters },
          o,
        ),
      );
      const confirmed = res.confirmed;
      if (!confirmed) throw new MesosFailure(`Validation failed for volume '${volume.id}': ${res.message}`);
      if (!sameMap(confirmed.volume_context, volume.context))
        throw new MesosFailure(`Validation failed for volume '${volume.id}': Mismatched volume context`);
      if (!confirmed.volume_capabilities.some((c) => capabilityKey(c) === capabilityKey(cap))) {
        throw new MesosFailure(`Validation failed for volume '${volume.id}': Unsupported volume capability`);
      }
      if (!sameMap(confirmed.parameters, parameters))
        throw new MesosFailure(`Validation failed for volume '${volume.id}': Mismatched parameters`);
    } else {
      const res = await this.v0('Controller/ValidateVolumeCapabilities', (c, o) =>
        c.controller.ValidateVolumeCapabilities(
          { volume_id: volume.id, volume_capabilities: [v0Cap(cap)], volume_attributes: volume.context },
          o,
        ),
      );
      if (!res.supported) throw new MesosFailure(`Unsupported volume capability for volume '${volume.id}': ${res.message}`);
    }
    if (this.volumes.has(volume.id)) throw new MesosFailure(`Volume '${volume.id}' already validated`);
    this.volumes.set(volume.id, {
      state: 'CREATED',
      capability: cap,
      parameters,
      context: volume.context,
      publishContext: {},
      readonly: false,
    });
  }

  // ---- using a disk: ControllerPublish -> NodeStage -> NodePublish

  private volume(id: string): VolumeState {
    const v = this.volumes.get(id);
    if (!v) throw new MesosFailure(`Cannot publish unknown volume '${id}'`);
    return v;
  }

  async attach(id: string): Promise<void> {
    const v = this.volume(id);
    if (v.state !== 'CREATED') return;
    if (this.controllerCaps.has('PUBLISH_UNPUBLISH_VOLUME')) {
      if (this.nodeId === undefined) throw new MesosFailure('no node id: NodeGetInfo was not asked at start-up');
      const nodeId = this.nodeId;
      v.publishContext =
        this.needVersion() === 'v1'
          ? (
              await this.v1('Controller/ControllerPublishVolume', (c, o) =>
                c.controller.ControllerPublishVolume(
                  {
                    volume_id: id,
                    node_id: nodeId,
                    volume_capability: v1Cap(v.capability),
                    readonly: v.readonly,
                    volume_context: v.context,
                  },
                  o,
                ),
              )
            ).publish_context
          : (
              await this.v0('Controller/ControllerPublishVolume', (c, o) =>
                c.controller.ControllerPublishVolume(
                  {
                    volume_id: id,
                    node_id: nodeId,
                    volume_capability: v0Cap(v.capability),
                    readonly: v.readonly,
                    volume_attributes: v.context,
                  },
                  o,
                ),
              )
            ).publish_info;
    }
    v.state = 'NODE_READY';
  }

  /** NodeStageVolume at `<mounts>/<id>/staging`, which Mesos creates. */
  async stage(id: string, secrets: Record<string, string> = {}): Promise<void> {
    const v = this.volume(id);
    if (v.state !== 'NODE_READY') return;
    if (this.nodeCaps.has('STAGE_UNSTAGE_VOLUME')) {
      const staging = this.paths.staging(id);
      await mkdir(staging, { recursive: true });
      if (this.needVersion() === 'v1') {
        await this.v1('Node/NodeStageVolume', (c, o) =>
          c.node.NodeStageVolume(
            {
              volume_id: id,
              publish_context: v.publishContext,
              staging_target_path: staging,
              volume_capability: v1Cap(v.capability),
              volume_context: v.context,
              secrets,
            },
            o,
          ),
        );
      } else {
        await this.v0('Node/NodeStageVolume', (c, o) =>
          c.node.NodeStageVolume(
            {
              volume_id: id,
              publish_info: v.publishContext,
              staging_target_path: staging,
              volume_capability: v0Cap(v.capability),
              volume_attributes: v.context,
              node_stage_secrets: secrets,
            },
            o,
          ),
        );
      }
    }
    v.state = 'VOL_READY';
  }

  /**
   * NodePublishVolume. v1: Mesos creates only the target's parent and fails unless the plugin created the
   * target. v0: Mesos creates the target directory itself.
   */
  async publish(id: string, secrets: Record<string, string> = {}): Promise<string> {
    const v = this.volume(id);
    const target = this.paths.target(id);
    if (v.state === 'PUBLISHED') return target;
    if (this.needVersion() === 'v1') await mkdir(dirname(target), { recursive: true });
    else await mkdir(target, { recursive: true });
    const staging = this.nodeCaps.has('STAGE_UNSTAGE_VOLUME') ? this.paths.staging(id) : '';
    if (staging !== '' && !(await exists(staging))) throw new MesosFailure(`CHECK failed: staging path ${staging} does not exist`);
    if (this.needVersion() === 'v1') {
      await this.v1('Node/NodePublishVolume', (c, o) =>
        c.node.NodePublishVolume(
          {
            volume_id: id,
            publish_context: v.publishContext,
            staging_target_path: staging,
            target_path: target,
            volume_capability: v1Cap(v.capability),
            readonly: v.readonly,
            volume_context: v.context,
            secrets,
          },
          o,
        ),
      );
    } else {
      await this.v0('Node/NodePublishVolume', (c, o) =>
        c.node.NodePublishVolume(
          {
            volume_id: id,
            publish_info: v.publishContext,
            staging_target_path: staging,
            target_path: target,
            volume_capability: v0Cap(v.capability),
            readonly: v.readonly,
            volume_attributes: v.context,
            node_publish_secrets: secrets,
          },
          o,
        ),
      );
    }
    if (!(await exists(target))) throw new MesosFailure(`Target path '${target}' not created`);
    v.state = 'PUBLISHED';
    return target;
  }

  /** What a task launch does with a disk: attach, stage, publish (volumes stay published after the task). */
  async publishDisk(id: string): Promise<string> {
    await this.attach(id);
    await this.stage(id);
    return this.publish(id);
  }

  // ---- DESTROY_DISK and cleanup

  async unpublish(id: string): Promise<void> {
    const v = this.volume(id);
    if (v.state !== 'PUBLISHED') return;
    const target = this.paths.target(id);
    if (this.needVersion() === 'v1') {
      await this.v1('Node/NodeUnpublishVolume', (c, o) => c.node.NodeUnpublishVolume({ volume_id: id, target_path: target }, o));
      if (await exists(target)) throw new MesosFailure(`Target path '${target}' not removed`);
    } else {
      // v0_volume_manager.cpp: CHECK(os::exists(targetPath)) before the call; an agent abort otherwise.
      if (!(await exists(target))) throw new MesosFailure(`CHECK failed: target path ${target} does not exist`);
      await this.v0('Node/NodeUnpublishVolume', (c, o) => c.node.NodeUnpublishVolume({ volume_id: id, target_path: target }, o));
    }
    v.state = 'VOL_READY';
  }

  async unstage(id: string): Promise<void> {
    const v = this.volume(id);
    if (v.state !== 'VOL_READY') return;
    if (this.nodeCaps.has('STAGE_UNSTAGE_VOLUME')) {
      const staging = this.paths.staging(id);
      if (!(await exists(staging))) throw new MesosFailure(`CHECK failed: staging path ${staging} does not exist`);
      if (this.needVersion() === 'v1')
        await this.v1('Node/NodeUnstageVolume', (c, o) => c.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }, o));
      else await this.v0('Node/NodeUnstageVolume', (c, o) => c.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }, o));
    }
    v.state = 'NODE_READY';
  }

  async detach(id: string): Promise<void> {
    const v = this.volume(id);
    if (v.state !== 'NODE_READY') return;
    if (this.controllerCaps.has('PUBLISH_UNPUBLISH_VOLUME')) {
      const nodeId = this.nodeId ?? '';
      if (this.needVersion() === 'v1')
        await this.v1('Controller/ControllerUnpublishVolume', (c, o) =>
          c.controller.ControllerUnpublishVolume({ volume_id: id, node_id: nodeId }, o),
        );
      else
        await this.v0('Controller/ControllerUnpublishVolume', (c, o) =>
          c.controller.ControllerUnpublishVolume({ volume_id: id, node_id: nodeId }, o),
        );
      v.publishContext = {};
    }
    v.state = 'CREATED';
  }

  /**
   * DESTROY_DISK: Mesos deletes the contents of the target (not the target), then NodeUnpublish ->
   * NodeUnstage -> ControllerUnpublish -> DeleteVolume (retried), then drops its state and mount dirs.
   */
  async destroyDisk(
    id: string,
    opts: { beforeDeleteRetry?: () => Promise<void>; firstDeleteDeadlineMs?: number } = {},
  ): Promise<{ retries: number }> {
    const v = this.volume(id);
    if (v.state === 'PUBLISHED') await emptyDirectory(this.paths.target(id));
    await this.unpublish(id);
    await this.unstage(id);
    await this.detach(id);
    const { retries } = await this.retried(async (n) => {
      if (n > 0) await opts.beforeDeleteRetry?.();
      const deadline = n === 0 && opts.firstDeleteDeadlineMs !== undefined ? opts.firstDeleteDeadlineMs : this.deadlineMs;
      if (this.needVersion() === 'v1')
        await this.v1('Controller/DeleteVolume', (c, o) => c.controller.DeleteVolume({ volume_id: id }, o), deadline);
      else await this.v0('Controller/DeleteVolume', (c, o) => c.controller.DeleteVolume({ volume_id: id }, o), deadline);
    });
    await this.removeVolume(id);
    return { retries };
  }

  /** removeVolume + garbageCollectMountPath: Mesos removes `<mounts>/<id>` recursively. */
  private async removeVolume(id: string): Promise<void> {
    this.volumes.delete(id);
    const mountPath = this.paths.mountPath(id);
    const stillMounted = await mountsUnder(mountPath);
    if (stillMounted.length > 0) throw new MesosFailure(`the plugin left mounts under ${mountPath}: ${stillMounted.join(', ')}`);
    await rm(mountPath, { recursive: true, force: true });
  }

  // ---- external volumes (volume/csi isolator, Mesos 1.11)

  /** A task's CSI_VOLUME with static_provisioning: NodeStage -> NodePublish, never ControllerPublish. */
  async publishExternal(
    volumeId: string,
    provisioning: {
      capability: ProfileCapability;
      context?: Record<string, string>;
      stageSecrets?: Record<string, string>;
      publishSecrets?: Record<string, string>;
    },
    mode: 'RW' | 'RO',
  ): Promise<string> {
    if (this.volumes.has(volumeId)) throw new MesosFailure(`volume ${volumeId} is already in use by this agent`);
    this.volumes.set(volumeId, {
      state: 'NODE_READY',
      capability: provisioning.capability,
      parameters: {},
      context: provisioning.context ?? {},
      publishContext: {},
      readonly: mode === 'RO',
    });
    await this.stage(volumeId, provisioning.stageSecrets);
    return this.publish(volumeId, provisioning.publishSecrets);
  }

  /** Container cleanup: NodeUnpublish -> NodeUnstage, then the volume is forgotten (pre-provisioned). */
  async cleanupExternal(volumeId: string): Promise<void> {
    await this.unpublish(volumeId);
    await this.unstage(volumeId);
    await this.removeVolume(volumeId);
  }
}

function v1Cap(c: ProfileCapability): V1Capability {
  return c.block
    ? { block: {}, access_mode: { mode: c.access_mode.mode } }
    : { mount: { fs_type: c.mount?.fs_type ?? '', mount_flags: c.mount?.mount_flags ?? [] }, access_mode: { mode: c.access_mode.mode } };
}

function v0Cap(c: ProfileCapability): V0Capability {
  return c.block
    ? { block: {}, access_mode: { mode: c.access_mode.mode } }
    : { mount: { fs_type: c.mount?.fs_type ?? '', mount_flags: c.mount?.mount_flags ?? [] }, access_mode: { mode: c.access_mode.mode } };
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** os::rmdir(target, recursive=true, removeRoot=false): everything inside, not the directory. */
async function emptyDirectory(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
}
