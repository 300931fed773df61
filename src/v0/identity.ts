import type { IdentityService } from '../identity/identity.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import type { IdentityHandlers } from './gen/csi/v0/Identity.js';
import type { GetPluginCapabilitiesResponse } from './gen/csi/v0/GetPluginCapabilitiesResponse.js';
import type { GetPluginInfoResponse } from './gen/csi/v0/GetPluginInfoResponse.js';
import type { ProbeResponse } from './gen/csi/v0/ProbeResponse.js';
import type { _csi_v0_PluginCapability_Service_Type as V0ServiceType } from './gen/csi/v0/PluginCapability.js';

// csi.v0.Identity on top of the one IdentityService. v0 knows two plugin capabilities; v1's
// VOLUME_ACCESSIBILITY_CONSTRAINTS is v0's ACCESSIBILITY_CONSTRAINTS.

const V0_SERVICE: Record<string, V0ServiceType> = {
  CONTROLLER_SERVICE: 'CONTROLLER_SERVICE',
  VOLUME_ACCESSIBILITY_CONSTRAINTS: 'ACCESSIBILITY_CONSTRAINTS',
};

export function v0PluginCapabilities(identity: IdentityService): GetPluginCapabilitiesResponse {
  const types = (identity.capabilities().capabilities ?? []).map((c) => V0_SERVICE[String(c.service?.type)]).filter((t) => t !== undefined);
  return { capabilities: types.map((type) => ({ service: { type } })) };
}

export function v0IdentityHandlers(identity: IdentityService, ctx: RpcContext): IdentityHandlers {
  return {
    GetPluginInfo: unary(ctx, 'v0.GetPluginInfo', async (): Promise<GetPluginInfoResponse> => identity.info(), { quiet: true }),
    GetPluginCapabilities: unary(ctx, 'v0.GetPluginCapabilities', async () => v0PluginCapabilities(identity), { quiet: true }),
    Probe: unary(ctx, 'v0.Probe', async (): Promise<ProbeResponse> => ({ ready: (await identity.probe()).ready ?? null }), { quiet: true }),
  };
}
