import type { Backend, VolumeCapability, CreateVolumeArgs, Volume, VolumeSource } from '../backends/backend.js';
import { deriveCapabilities, requireGroup, type OptionalControllerRpc } from '../csi/capabilities.js';
import { pageOf } from '../csi/page.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound, outOfRange, CsiError } from '../errors.js';
import { toWireCondition, toWireSnapshot, toWireVolume } from '../csi/convert.js';
import { fingerprint, type Inflight } from '../csi/inflight.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import {
  checkMap,
  checkParameters,
  checkSnapshotParameters,
  parseCapabilities,
  parseCapability,
  parseCapacityRange,
  parseContentSource,
  parseTopologyRequirement,
  requireString,
  resolveCapacity,
  resolveExpansion,
  unsupportedReason,
  type CapacityRequest,
} from '../csi/validate.js';
import type { ControllerHandlers } from '../csi/gen/csi/v1/Controller.js';
import type { CreateVolumeRequest__Output } from '../csi/gen/csi/v1/CreateVolumeRequest.js';
import type { CreateVolumeResponse } from '../csi/gen/csi/v1/CreateVolumeResponse.js';
import type { DeleteVolumeRequest__Output } from '../csi/gen/csi/v1/DeleteVolumeRequest.js';
import type { DeleteVolumeResponse } from '../csi/gen/csi/v1/DeleteVolumeResponse.js';
import type { ValidateVolumeCapabilitiesRequest__Output } from '../csi/gen/csi/v1/ValidateVolumeCapabilitiesRequest.js';
import type { ValidateVolumeCapabilitiesResponse } from '../csi/gen/csi/v1/ValidateVolumeCapabilitiesResponse.js';
import type { ListVolumesRequest__Output } from '../csi/gen/csi/v1/ListVolumesRequest.js';
import type { ListVolumesResponse } from '../csi/gen/csi/v1/ListVolumesResponse.js';
import type { GetCapacityRequest__Output } from '../csi/gen/csi/v1/GetCapacityRequest.js';
import type { GetCapacityResponse } from '../csi/gen/csi/v1/GetCapacityResponse.js';
import type { ControllerGetCapabilitiesResponse } from '../csi/gen/csi/v1/ControllerGetCapabilitiesResponse.js';
import type { ControllerGetVolumeRequest__Output } from '../csi/gen/csi/v1/ControllerGetVolumeRequest.js';
import type { ControllerGetVolumeResponse } from '../csi/gen/csi/v1/ControllerGetVolumeResponse.js';
import type { ControllerPublishVolumeRequest__Output } from '../csi/gen/csi/v1/ControllerPublishVolumeRequest.js';
import type { ControllerPublishVolumeResponse } from '../csi/gen/csi/v1/ControllerPublishVolumeResponse.js';
import type { ControllerUnpublishVolumeRequest__Output } from '../csi/gen/csi/v1/ControllerUnpublishVolumeRequest.js';
import type { ControllerUnpublishVolumeResponse } from '../csi/gen/csi/v1/ControllerUnpublishVolumeResponse.js';
import type { ControllerModifyVolumeRequest__Output } from '../csi/gen/csi/v1/ControllerModifyVolumeRequest.js';
import type { ControllerModifyVolumeResponse } from '../csi/gen/csi/v1/ControllerModifyVolumeResponse.js';
import type { _csi_v1_ControllerServiceCapability_RPC_Type as RpcType } from '../csi/gen/csi/v1/ControllerServiceCapability.js';
import type { CreateSnapshotRequest__Output } from '../csi/gen/csi/v1/CreateSnapshotRequest.js';
import type { CreateSnapshotResponse } from '../csi/gen/csi/v1/CreateSnapshotResponse.js';
import type { DeleteSnapshotRequest__Output } from '../csi/gen/csi/v1/DeleteSnapshotRequest.js';
import type { DeleteSnapshotResponse } from '../csi/gen/csi/v1/DeleteSnapshotResponse.js';
import type { ListSnapshotsRequest__Output } from '../csi/gen/csi/v1/ListSnapshotsRequest.js';
import type { ListSnapshotsResponse } from '../csi/gen/csi/v1/ListSnapshotsResponse.js';
import type { GetSnapshotRequest__Output } from '../csi/gen/csi/v1/GetSnapshotRequest.js';
import type { GetSnapshotResponse } from '../csi/gen/csi/v1/GetSnapshotResponse.js';
import type { ControllerExpandVolumeRequest__Output } from '../csi/gen/csi/v1/ControllerExpandVolumeRequest.js';
import type { ControllerExpandVolumeResponse } from '../csi/gen/csi/v1/ControllerExpandVolumeResponse.js';

/** Parameters the CO adds on its own (Kubernetes' external-provisioner); accepted, never compared. */
const isCoParameter = (key: string): boolean => key.startsWith('csi.storage.k8s.io/');

export class ControllerService {
  constructor(
    private readonly backend: Backend,
    private readonly inflight: Inflight,
  ) {}

  /** ControllerGetCapabilities, from the backend's groups (src/csi/capabilities.ts). */
  capabilities(): RpcType[] {
    return deriveCapabilities(this.backend).controller;
  }

  handlers(ctx: RpcContext): Partial<ControllerHandlers> {
    const always: Partial<ControllerHandlers> = {
      CreateVolume: unary(ctx, 'CreateVolume', (r: CreateVolumeRequest__Output) => this.createVolume(r)),
      DeleteVolume: unary(ctx, 'DeleteVolume', (r: DeleteVolumeRequest__Output) => this.deleteVolume(r)),
      ValidateVolumeCapabilities: unary(ctx, 'ValidateVolumeCapabilities', (r: ValidateVolumeCapabilitiesRequest__Output) =>
        this.validateVolumeCapabilities(r),
      ),
      ListVolumes: unary(ctx, 'ListVolumes', (r: ListVolumesRequest__Output) => this.listVolumes(r)),
      ControllerGetVolume: unary(ctx, 'ControllerGetVolume', (r: ControllerGetVolumeRequest__Output) => this.getVolume(r)),
      ControllerGetCapabilities: unary(
        ctx,
        'ControllerGetCapabilities',
        async (): Promise<ControllerGetCapabilitiesResponse> => ({
          capabilities: this.capabilities().map((type) => ({ rpc: { type } })),
        }),
        { quiet: true },
      ),
    };
    const optional: Pick<ControllerHandlers, OptionalControllerRpc> = {
      GetCapacity: unary(ctx, 'GetCapacity', (r: GetCapacityRequest__Output) => this.getCapacity(r)),
      ControllerPublishVolume: unary(ctx, 'ControllerPublishVolume', (r: ControllerPublishVolumeRequest__Output) => this.publish(r)),
      ControllerUnpublishVolume: unary(ctx, 'ControllerUnpublishVolume', (r: ControllerUnpublishVolumeRequest__Output) =>
        this.unpublish(r),
      ),
      CreateSnapshot: unary(ctx, 'CreateSnapshot', (r: CreateSnapshotRequest__Output) => this.createSnapshot(r)),
      DeleteSnapshot: unary(ctx, 'DeleteSnapshot', (r: DeleteSnapshotRequest__Output) => this.deleteSnapshot(r)),
      ListSnapshots: unary(ctx, 'ListSnapshots', (r: ListSnapshotsRequest__Output) => this.listSnapshots(r)),
      GetSnapshot: unary(ctx, 'GetSnapshot', (r: GetSnapshotRequest__Output) => this.getSnapshot(r)),
      ControllerExpandVolume: unary(ctx, 'ControllerExpandVolume', (r: ControllerExpandVolumeRequest__Output) => this.expandVolume(r)),
      ControllerModifyVolume: unary(ctx, 'ControllerModifyVolume', (r: ControllerModifyVolumeRequest__Output) => this.modifyVolume(r)),
    };
    // Only what the backend serves is registered: the rest answers UNIMPLEMENTED, as the capabilities say.
    const served = deriveCapabilities(this.backend).controllerRpcs.map((rpc) => [rpc, optional[rpc]]);
    return { ...always, ...(Object.fromEntries(served) as Partial<ControllerHandlers>) };
  }

  async modifyVolume(req: ControllerModifyVolumeRequest__Output): Promise<ControllerModifyVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    checkMap(req.secrets, 'secrets');
    const mutable = this.checkMutableParameters(req.mutable_parameters);
    if (Object.keys(mutable).length === 0) throw invalidArgument('mutable_parameters must name at least one parameter');
    // Its own key, not vol:<id>: a ControllerExpandVolume of the same volume may run at the same time, and
    // the backend merges the two into one change of the volume.
    const modify = requireGroup(this.backend.modify, 'ControllerModifyVolume', this.backend);
    return this.inflight.run('ControllerModifyVolume', [`modify:${id}`], fingerprint('ControllerModifyVolume', req), async () => {
      await this.requireVolume(id);
      await modify.modifyVolume(id, mutable);
      return {};
    });
  }

  /** Every mutable parameter key must be one the backend can change; the message names the first other one. */
  private checkMutableParameters(params: Record<string, string> | undefined | null): Record<string, string> {
    const p = checkMap(params, 'mutable_parameters');
    const known = this.backend.modify?.mutableParameterKeys ?? [];
    for (const key of Object.keys(p)) {
      if (!known.includes(key)) {
        throw invalidArgument(
          `mutable parameter ${JSON.stringify(key)} cannot be changed (this backend accepts: ${known.length ? known.join(', ') : 'none'})`,
        );
      }
    }
    return p;
  }

  async createVolume(req: CreateVolumeRequest__Output): Promise<CreateVolumeResponse> {
    const name = requireString(req.name, 'name');
    const capabilities = parseCapabilities(req.volume_capabilities, 'volume_capabilities');
    const parameters = checkParameters(req.parameters, this.backend.features);
    const mutableParameters = this.checkMutableParameters(req.mutable_parameters);
    const accessType = this.commonAccessType(capabilities);
    const fsType = accessType === 'mount' ? this.chooseFsType(capabilities, parameters) : '';
    const range = parseCapacityRange(req.capacity_range);
    const args = {
      name,
      capabilities,
      parameters,
      accessType,
      fsType,
      range,
      secrets: checkMap(req.secrets, 'secrets'),
      topology: parseTopologyRequirement(req.accessibility_requirements),
      source: parseContentSource(req.volume_content_source),
    };
    if (args.source) this.checkSourceSupported(args.source);
    // A source volume is locked too: it must not be deleted, staged or grown while it is copied.
    const keys = [`name:${name}`, ...(args.source?.kind === 'volume' ? [`vol:${args.source.id}`] : [])];
    return this.inflight.run('CreateVolume', keys, fingerprint('CreateVolume', req), async () => {
      const existing = await this.backend.findVolumeByName(name);
      if (existing) {
        const why = incompatibility(existing, args);
        if (why) throw alreadyExists(`a volume named ${JSON.stringify(name)} already exists (${existing.id}) but ${why}`);
        return { volume: toWireVolume(existing) };
      }
      const capacityBytes = resolveCapacity(
        args.source ? await this.rangeForSource(range, args.source) : range,
        this.backend.features,
        fsType,
      );
      const create: CreateVolumeArgs = {
        ...args,
        capacityBytes,
        limitBytes: range.limitBytes,
        ...(Object.keys(mutableParameters).length ? { mutableParameters } : {}),
      };
      return { volume: toWireVolume(await this.backend.createVolume(create)) };
    });
  }

  async deleteVolume(req: DeleteVolumeRequest__Output): Promise<DeleteVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    checkMap(req.secrets, 'secrets');
    await this.inflight.run('DeleteVolume', [`vol:${id}`], fingerprint('DeleteVolume', req), () => this.backend.deleteVolume(id));
    return {};
  }

  async validateVolumeCapabilities(req: ValidateVolumeCapabilitiesRequest__Output): Promise<ValidateVolumeCapabilitiesResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const capabilities = parseCapabilities(req.volume_capabilities, 'volume_capabilities');
    const volume = await this.requireVolume(id);
    const refusal =
      this.capabilityRefusal(volume, capabilities) ?? contextRefusal(volume, req.volume_context) ?? this.parameterRefusal(req.parameters);
    if (refusal) return { confirmed: null, message: refusal };
    return {
      confirmed: {
        volume_context: req.volume_context,
        volume_capabilities: req.volume_capabilities,
        parameters: req.parameters,
        mutable_parameters: req.mutable_parameters,
      },
      message: '',
    };
  }

  async listVolumes(req: ListVolumesRequest__Output): Promise<ListVolumesResponse> {
    if (req.max_entries < 0) throw invalidArgument('max_entries must not be negative');
    const page = await pageOf(
      (range) => this.backend.listVolumes(range),
      req.max_entries,
      req.starting_token ?? '',
      (id) => this.backend.isVolumeId(id),
    );
    const f = this.backend.features;
    return {
      entries: page.entries.map((v) => ({
        volume: toWireVolume(v),
        status: {
          published_node_ids: f.listVolumesPublishedNodes ? v.publishedNodes : [],
          volume_condition: f.volumeCondition ? toWireCondition(v) : null,
        },
      })),
      next_token: page.nextToken,
    };
  }

  async getVolume(req: ControllerGetVolumeRequest__Output): Promise<ControllerGetVolumeResponse> {
    const volume = await this.requireVolume(requireString(req.volume_id, 'volume_id'));
    const f = this.backend.features;
    return {
      volume: toWireVolume(volume),
      status: {
        published_node_ids: f.listVolumesPublishedNodes || this.backend.publish ? volume.publishedNodes : [],
        volume_condition: f.volumeCondition ? toWireCondition(volume) : null,
      },
    };
  }

  async getCapacity(req: GetCapacityRequest__Output): Promise<GetCapacityResponse> {
    const capacity = requireGroup(this.backend.capacity, 'GetCapacity', this.backend);
    const capabilities = req.volume_capabilities.length ? parseCapabilities(req.volume_capabilities, 'volume_capabilities') : [];
    const zero: GetCapacityResponse = { available_capacity: 0 };
    if (capabilities.some((c) => unsupportedReason(c, this.backend.features))) return zero;
    let parameters: Record<string, string>;
    try {
      parameters = checkParameters(req.parameters, this.backend.features);
      if (capabilities.length) this.chooseFsType(capabilities, parameters);
    } catch (e) {
      if (e instanceof CsiError && e.code === 'INVALID_ARGUMENT') return zero; // what cannot be served has no capacity
      throw e;
    }
    const info = await capacity.getCapacity({
      capabilities,
      parameters,
      ...(req.accessible_topology ? { topology: checkMap(req.accessible_topology.segments, 'accessible_topology.segments') } : {}),
    });
    return {
      available_capacity: info.availableBytes,
      maximum_volume_size: info.maximumVolumeSize !== undefined ? { value: info.maximumVolumeSize } : null,
      minimum_volume_size: info.minimumVolumeSize !== undefined ? { value: info.minimumVolumeSize } : null,
    };
  }

  async publish(req: ControllerPublishVolumeRequest__Output): Promise<ControllerPublishVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    const nodeId = requireString(req.node_id, 'node_id');
    const capability = parseCapability(req.volume_capability, 'volume_capability');
    checkMap(req.secrets, 'secrets');
    checkMap(req.volume_context, 'volume_context');
    const publish = requireGroup(this.backend.publish, 'ControllerPublishVolume', this.backend);
    return this.inflight.run('ControllerPublishVolume', [`vol:${id}`], fingerprint('ControllerPublishVolume', req), async () => {
      const volume = await this.requireVolume(id);
      const refusal = this.capabilityRefusal(volume, [capability]);
      if (refusal) throw invalidArgument(refusal);
      const publish_context = await publish.controllerPublish(id, nodeId, req.readonly, capability);
      return { publish_context };
    });
  }

  async unpublish(req: ControllerUnpublishVolumeRequest__Output): Promise<ControllerUnpublishVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    checkMap(req.secrets, 'secrets');
    const nodeId = req.node_id ?? '';
    const publish = requireGroup(this.backend.publish, 'ControllerUnpublishVolume', this.backend);
    await this.inflight.run('ControllerUnpublishVolume', [`vol:${id}`], fingerprint('ControllerUnpublishVolume', req), () =>
      publish.controllerUnpublish(id, nodeId),
    );
    return {};
  }

  // ---- snapshots

  async createSnapshot(req: CreateSnapshotRequest__Output): Promise<CreateSnapshotResponse> {
    const sourceVolumeId = requireString(req.source_volume_id, 'source_volume_id');
    const name = requireString(req.name, 'name');
    const snapshots = requireGroup(this.backend.snapshots, 'CreateSnapshot', this.backend);
    const parameters = checkSnapshotParameters(req.parameters, snapshots.parameterKeys);
    const secrets = checkMap(req.secrets, 'secrets');
    const keys = [`snapshot-name:${name}`, `vol:${sourceVolumeId}`];
    return this.inflight.run('CreateSnapshot', keys, fingerprint('CreateSnapshot', req), async () => {
      const existing = await snapshots.findByName(name);
      if (existing) {
        if (existing.sourceVolumeId !== sourceVolumeId) {
          throw alreadyExists(
            `a snapshot named ${JSON.stringify(name)} already exists (${existing.id}) of volume ${existing.sourceVolumeId}, not ${sourceVolumeId}`,
          );
        }
        return { snapshot: toWireSnapshot(existing) };
      }
      await this.requireVolume(sourceVolumeId, 'source volume');
      return { snapshot: toWireSnapshot(await snapshots.create({ name, sourceVolumeId, parameters, secrets })) };
    });
  }

  async deleteSnapshot(req: DeleteSnapshotRequest__Output): Promise<DeleteSnapshotResponse> {
    const id = requireString(req.snapshot_id, 'snapshot_id');
    checkMap(req.secrets, 'secrets');
    const snapshots = requireGroup(this.backend.snapshots, 'DeleteSnapshot', this.backend);
    await this.inflight.run('DeleteSnapshot', [`snap:${id}`], fingerprint('DeleteSnapshot', req), () => snapshots.delete(id));
    return {};
  }

  async listSnapshots(req: ListSnapshotsRequest__Output): Promise<ListSnapshotsResponse> {
    if (req.max_entries < 0) throw invalidArgument('max_entries must not be negative');
    checkMap(req.secrets, 'secrets');
    const snapshots = requireGroup(this.backend.snapshots, 'ListSnapshots', this.backend);
    const filter = {
      ...(req.snapshot_id ? { snapshotId: req.snapshot_id } : {}),
      ...(req.source_volume_id ? { sourceVolumeId: req.source_volume_id } : {}),
    };
    const page = await pageOf(
      (range) => snapshots.list(filter, range),
      req.max_entries,
      req.starting_token ?? '',
      (id) => snapshots.isId(id),
    );
    return { entries: page.entries.map((s) => ({ snapshot: toWireSnapshot(s) })), next_token: page.nextToken };
  }

  async getSnapshot(req: GetSnapshotRequest__Output): Promise<GetSnapshotResponse> {
    const id = requireString(req.snapshot_id, 'snapshot_id');
    checkMap(req.secrets, 'secrets');
    const snapshot = await requireGroup(this.backend.snapshots, 'GetSnapshot', this.backend).get(id);
    if (!snapshot) throw notFound(`snapshot ${JSON.stringify(id)} does not exist`);
    return { snapshot: toWireSnapshot(snapshot) };
  }

  // ---- expansion

  async expandVolume(req: ControllerExpandVolumeRequest__Output): Promise<ControllerExpandVolumeResponse> {
    const id = requireString(req.volume_id, 'volume_id');
    if (!req.capacity_range) throw invalidArgument('capacity_range is required');
    const range = parseCapacityRange(req.capacity_range);
    if (req.volume_capability) {
      const why = unsupportedReason(parseCapability(req.volume_capability, 'volume_capability'), this.backend.features);
      if (why) throw invalidArgument(why);
    }
    checkMap(req.secrets, 'secrets');
    const expand = requireGroup(this.backend.expand, 'ControllerExpandVolume', this.backend);
    return this.inflight.run('ControllerExpandVolume', [`vol:${id}`], fingerprint('ControllerExpandVolume', req), async () => {
      const volume = await this.requireVolume(id);
      if (expand.mode === 'offline' && volume.publishedNodes.length > 0) {
        throw failedPrecondition(`volume ${id} can only grow while not published; it is published on ${volume.publishedNodes.join(', ')}`);
      }
      const capacityBytes = resolveExpansion(range, this.backend.features, volume.capacityBytes);
      const result = await expand.expandVolume(id, capacityBytes, volume.accessType);
      return { capacity_bytes: result.capacityBytes, node_expansion_required: result.nodeExpansionRequired };
    });
  }

  private checkSourceSupported(source: VolumeSource): void {
    if (source.kind === 'snapshot' && !this.backend.snapshots)
      throw invalidArgument(`the ${this.backend.name} backend cannot create a volume from a snapshot`);
    if (source.kind === 'volume' && !this.backend.features.cloneFromVolume)
      throw invalidArgument(`the ${this.backend.name} backend cannot clone a volume`);
  }

  /** A volume made from a source holds all of it: at least the source's size, NOT_FOUND without a source. */
  private async rangeForSource(range: CapacityRequest, source: VolumeSource): Promise<CapacityRequest> {
    let sourceBytes: number;
    if (source.kind === 'snapshot') {
      const snapshot = await this.backend.snapshots?.get(source.id);
      if (!snapshot) throw notFound(`source snapshot ${JSON.stringify(source.id)} does not exist`);
      sourceBytes = snapshot.sizeBytes;
    } else {
      sourceBytes = (await this.requireVolume(source.id, 'source volume')).capacityBytes;
    }
    if (range.limitBytes > 0 && range.limitBytes < sourceBytes) {
      throw outOfRange(`the source ${source.kind} ${source.id} is ${sourceBytes} bytes, more than limit_bytes ${range.limitBytes}`);
    }
    return { requiredBytes: Math.max(range.requiredBytes, sourceBytes), limitBytes: range.limitBytes };
  }

  private async requireVolume(id: string, what = 'volume'): Promise<Volume> {
    const volume = await this.backend.getVolume(id);
    if (!volume) throw notFound(`${what} ${JSON.stringify(id)} does not exist`);
    return volume;
  }

  private commonAccessType(capabilities: VolumeCapability[]): VolumeCapability['accessType'] {
    for (const c of capabilities) {
      const why = unsupportedReason(c, this.backend.features);
      if (why) throw invalidArgument(why);
    }
    const types = new Set(capabilities.map((c) => c.accessType));
    if (types.size > 1) throw invalidArgument('a volume is either a block or a mount volume: volume_capabilities ask for both');
    return capabilities[0]!.accessType;
  }

  /** One filesystem for a mount volume: from the capabilities, else the fsType parameter, else the default. */
  private chooseFsType(capabilities: VolumeCapability[], parameters: Record<string, string>): string {
    const f = this.backend.features;
    const asked = new Set(capabilities.map((c) => c.fsType).filter((t) => t !== ''));
    if (parameters.fsType) asked.add(parameters.fsType);
    if (asked.size > 1) throw invalidArgument(`conflicting filesystem types asked for: ${[...asked].join(', ')}`);
    const fsType = [...asked][0] ?? f.defaultFsType;
    if (f.fsTypes.length > 0 && !f.fsTypes.includes(fsType)) {
      throw invalidArgument(`fsType ${fsType} is not supported (supported: ${f.fsTypes.join(', ')})`);
    }
    return fsType;
  }

  private capabilityRefusal(volume: Volume, capabilities: VolumeCapability[]): string | undefined {
    for (const c of capabilities) {
      const why = unsupportedReason(c, this.backend.features);
      if (why) return why;
      if (c.accessType !== volume.accessType) return `volume ${volume.id} is a ${volume.accessType} volume, not ${c.accessType}`;
      const fsType = volume.context.fsType;
      if (c.accessType === 'mount' && c.fsType !== '' && fsType && c.fsType !== fsType) {
        return `volume ${volume.id} is formatted ${fsType}, not ${c.fsType}`;
      }
    }
    return undefined;
  }

  private parameterRefusal(parameters: Record<string, string>): string | undefined {
    try {
      checkParameters(parameters, this.backend.features);
      return undefined;
    } catch (e) {
      if (e instanceof CsiError) return e.message;
      throw e;
    }
  }
}

function contextRefusal(volume: Volume, context: Record<string, string>): string | undefined {
  for (const [k, v] of Object.entries(context ?? {})) {
    if (volume.context[k] !== v)
      return `volume_context ${k}=${JSON.stringify(v)} does not match the volume's (${JSON.stringify(volume.context[k] ?? '')})`;
  }
  return undefined;
}

interface CreateShape {
  range: CapacityRequest;
  parameters: Record<string, string>;
  accessType: VolumeCapability['accessType'];
  fsType: string;
  source?: { kind: string; id: string } | undefined;
  topology?: { requisite: Record<string, string>[] } | undefined;
}

/** Why an existing volume does not answer a CreateVolume of the same name, or undefined when it does. */
export function incompatibility(existing: Volume, req: CreateShape): string | undefined {
  const { requiredBytes, limitBytes } = req.range;
  if (existing.capacityBytes < requiredBytes) return `its capacity ${existing.capacityBytes} is below required_bytes ${requiredBytes}`;
  if (limitBytes > 0 && existing.capacityBytes > limitBytes)
    return `its capacity ${existing.capacityBytes} is above limit_bytes ${limitBytes}`;
  const strip = (p: Record<string, string>) =>
    Object.entries(p)
      .filter(([k]) => !isCoParameter(k))
      .sort(([a], [b]) => a.localeCompare(b));
  if (JSON.stringify(strip(existing.parameters)) !== JSON.stringify(strip(req.parameters))) return 'it was created with other parameters';
  if (existing.accessType !== req.accessType) return `it is a ${existing.accessType} volume`;
  if (req.fsType && existing.context.fsType && existing.context.fsType !== req.fsType) return `it is formatted ${existing.context.fsType}`;
  const src = (s?: { kind: string; id: string }) => (s ? `${s.kind}:${s.id}` : 'none');
  if (src(existing.source) !== src(req.source)) return `its content source is ${src(existing.source)}`;
  const requisite = req.topology?.requisite ?? [];
  if (requisite.length > 0 && !existing.accessibleTopology.some((t) => requisite.some((r) => sameSegments(t, r)))) {
    return 'it is not accessible from the requisite topology';
  }
  return undefined;
}

function sameSegments(a: Record<string, string>, b: Record<string, string>): boolean {
  return Object.entries(b).every(([k, v]) => a[k] === v);
}
