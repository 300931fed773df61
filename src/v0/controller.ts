import type { ControllerService } from '../controller/controller.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import { capabilitiesToV1, capabilityToV1, contentSourceToV1, topologyRequirementToV1, topologyToV1, volumeToV0 } from './convert.js';
import type { ControllerHandlers } from './gen/csi/v0/Controller.js';
import type { CreateVolumeRequest__Output } from './gen/csi/v0/CreateVolumeRequest.js';
import type { CreateVolumeResponse } from './gen/csi/v0/CreateVolumeResponse.js';
import type { DeleteVolumeRequest__Output } from './gen/csi/v0/DeleteVolumeRequest.js';
import type { DeleteVolumeResponse } from './gen/csi/v0/DeleteVolumeResponse.js';
import type { ControllerPublishVolumeRequest__Output } from './gen/csi/v0/ControllerPublishVolumeRequest.js';
import type { ControllerPublishVolumeResponse } from './gen/csi/v0/ControllerPublishVolumeResponse.js';
import type { ControllerUnpublishVolumeRequest__Output } from './gen/csi/v0/ControllerUnpublishVolumeRequest.js';
import type { ControllerUnpublishVolumeResponse } from './gen/csi/v0/ControllerUnpublishVolumeResponse.js';
import type { ValidateVolumeCapabilitiesRequest__Output } from './gen/csi/v0/ValidateVolumeCapabilitiesRequest.js';
import type { ValidateVolumeCapabilitiesResponse } from './gen/csi/v0/ValidateVolumeCapabilitiesResponse.js';
import type { ListVolumesRequest__Output } from './gen/csi/v0/ListVolumesRequest.js';
import type { ListVolumesResponse } from './gen/csi/v0/ListVolumesResponse.js';
import type { GetCapacityRequest__Output } from './gen/csi/v0/GetCapacityRequest.js';
import type { GetCapacityResponse } from './gen/csi/v0/GetCapacityResponse.js';
import type { ControllerGetCapabilitiesResponse } from './gen/csi/v0/ControllerGetCapabilitiesResponse.js';

// csi.v0.Controller: each RPC renames its fields onto the csi.v1 request, calls the one ControllerService
// (which validates, locks and maps errors) and renames the answer back. Snapshot RPCs are not served.

/** The v1 controller capabilities that exist in v0 and have a translated RPC here. */
const V0_RPCS = ['CREATE_DELETE_VOLUME', 'PUBLISH_UNPUBLISH_VOLUME', 'LIST_VOLUMES', 'GET_CAPACITY'] as const;

export function v0ControllerCapabilities(controller: ControllerService): (typeof V0_RPCS)[number][] {
  const v1 = new Set(controller.capabilities().map(String));
  return V0_RPCS.filter((c) => v1.has(c));
}

export async function createVolumeV0(controller: ControllerService, r: CreateVolumeRequest__Output): Promise<CreateVolumeResponse> {
  const res = await controller.createVolume({
    name: r.name,
    capacity_range: r.capacity_range,
    volume_capabilities: capabilitiesToV1(r.volume_capabilities),
    parameters: r.parameters,
    secrets: r.controller_create_secrets,
    volume_content_source: contentSourceToV1(r.volume_content_source),
    accessibility_requirements: topologyRequirementToV1(r.accessibility_requirements),
    mutable_parameters: {},
  });
  return { volume: volumeToV0(res.volume) };
}

export async function deleteVolumeV0(controller: ControllerService, r: DeleteVolumeRequest__Output): Promise<DeleteVolumeResponse> {
  return controller.deleteVolume({ volume_id: r.volume_id, secrets: r.controller_delete_secrets });
}

export async function publishV0(
  controller: ControllerService,
  r: ControllerPublishVolumeRequest__Output,
): Promise<ControllerPublishVolumeResponse> {
  const res = await controller.publish({
    volume_id: r.volume_id,
    node_id: r.node_id,
    volume_capability: capabilityToV1(r.volume_capability),
    readonly: r.readonly,
    secrets: r.controller_publish_secrets,
    volume_context: r.volume_attributes,
  });
  return { publish_info: res.publish_context ?? {} };
}

export async function unpublishV0(
  controller: ControllerService,
  r: ControllerUnpublishVolumeRequest__Output,
): Promise<ControllerUnpublishVolumeResponse> {
  return controller.unpublish({ volume_id: r.volume_id, node_id: r.node_id, secrets: r.controller_unpublish_secrets });
}

/** v0 answers `supported` instead of echoing a `confirmed` set; v0 requests carry no parameters. */
export async function validateV0(
  controller: ControllerService,
  r: ValidateVolumeCapabilitiesRequest__Output,
): Promise<ValidateVolumeCapabilitiesResponse> {
  const res = await controller.validateVolumeCapabilities({
    volume_id: r.volume_id,
    volume_context: r.volume_attributes,
    volume_capabilities: capabilitiesToV1(r.volume_capabilities),
    parameters: {},
    secrets: {},
    mutable_parameters: {},
  });
  return { supported: res.confirmed != null, message: res.message ?? '' };
}

export async function listVolumesV0(controller: ControllerService, r: ListVolumesRequest__Output): Promise<ListVolumesResponse> {
  const res = await controller.listVolumes({ max_entries: r.max_entries, starting_token: r.starting_token });
  return { entries: (res.entries ?? []).map((e) => ({ volume: volumeToV0(e.volume) })), next_token: res.next_token ?? '' };
}

export async function getCapacityV0(controller: ControllerService, r: GetCapacityRequest__Output): Promise<GetCapacityResponse> {
  const res = await controller.getCapacity({
    volume_capabilities: capabilitiesToV1(r.volume_capabilities),
    parameters: r.parameters,
    accessible_topology: topologyToV1(r.accessible_topology),
  });
  return { available_capacity: res.available_capacity ?? 0 };
}

export function v0ControllerHandlers(controller: ControllerService, ctx: RpcContext): Partial<ControllerHandlers> {
  const caps = v0ControllerCapabilities(controller);
  const h: Partial<ControllerHandlers> = {
    CreateVolume: unary(ctx, 'v0.CreateVolume', (r: CreateVolumeRequest__Output) => createVolumeV0(controller, r)),
    DeleteVolume: unary(ctx, 'v0.DeleteVolume', (r: DeleteVolumeRequest__Output) => deleteVolumeV0(controller, r)),
    ValidateVolumeCapabilities: unary(ctx, 'v0.ValidateVolumeCapabilities', (r: ValidateVolumeCapabilitiesRequest__Output) =>
      validateV0(controller, r),
    ),
    ListVolumes: unary(ctx, 'v0.ListVolumes', (r: ListVolumesRequest__Output) => listVolumesV0(controller, r)),
    ControllerGetCapabilities: unary(
      ctx,
      'v0.ControllerGetCapabilities',
      async (): Promise<ControllerGetCapabilitiesResponse> => ({ capabilities: caps.map((type) => ({ rpc: { type } })) }),
      { quiet: true },
    ),
  };
  if (caps.includes('GET_CAPACITY'))
    h.GetCapacity = unary(ctx, 'v0.GetCapacity', (r: GetCapacityRequest__Output) => getCapacityV0(controller, r));
  if (caps.includes('PUBLISH_UNPUBLISH_VOLUME')) {
    h.ControllerPublishVolume = unary(ctx, 'v0.ControllerPublishVolume', (r: ControllerPublishVolumeRequest__Output) =>
      publishV0(controller, r),
    );
    h.ControllerUnpublishVolume = unary(ctx, 'v0.ControllerUnpublishVolume', (r: ControllerUnpublishVolumeRequest__Output) =>
      unpublishV0(controller, r),
    );
  }
  return h;
}
