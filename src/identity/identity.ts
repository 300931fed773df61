import type { Backend } from '../backends/backend.js';
import { failedPrecondition } from '../errors.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import { VERSION } from '../version.js';
import type { IdentityHandlers } from '../csi/gen/csi/v1/Identity.js';
import type { GetPluginInfoResponse } from '../csi/gen/csi/v1/GetPluginInfoResponse.js';
import type { GetPluginCapabilitiesResponse } from '../csi/gen/csi/v1/GetPluginCapabilitiesResponse.js';
import type { ProbeResponse } from '../csi/gen/csi/v1/ProbeResponse.js';
import type { _csi_v1_PluginCapability_Service_Type as ServiceType } from '../csi/gen/csi/v1/PluginCapability.js';

export interface IdentityOptions {
  pluginName: string;
  serveController: boolean;
  serveNode: boolean;
  /** why this process cannot act as a node plugin (no privileges, tools missing), found at start-up */
  nodeProblem?: string | undefined;
  /** how the node service mounts ('syscall' or 'mount(8)'), shown in GetPluginInfo's manifest */
  mounter?: string | undefined;
}

export class IdentityService {
  constructor(
    private readonly backend: Backend,
    private readonly opts: IdentityOptions,
  ) {}

  handlers(ctx: RpcContext): IdentityHandlers {
    return {
      GetPluginInfo: unary(ctx, 'GetPluginInfo', async (): Promise<GetPluginInfoResponse> => this.info(), { quiet: true }),
      GetPluginCapabilities: unary(ctx, 'GetPluginCapabilities', async (): Promise<GetPluginCapabilitiesResponse> => this.capabilities(), {
        quiet: true,
      }),
      Probe: unary(ctx, 'Probe', () => this.probe(), { quiet: true }),
    };
  }

  info(): GetPluginInfoResponse {
    const modes = [this.opts.serveController && 'controller', this.opts.serveNode && 'node'].filter(Boolean).join(',');
    const manifest: Record<string, string> = { backend: this.backend.name, modes };
    if (this.opts.mounter) manifest['mounter'] = this.opts.mounter;
    return { name: this.opts.pluginName, vendor_version: VERSION, manifest };
  }

  capabilities(): GetPluginCapabilitiesResponse {
    const services: ServiceType[] = [];
    if (this.opts.serveController) services.push('CONTROLLER_SERVICE');
    if (this.backend.features.topologyKeys.length > 0) services.push('VOLUME_ACCESSIBILITY_CONSTRAINTS');
    if (this.opts.serveController && this.backend.features.groupSnapshots) services.push('GROUP_CONTROLLER_SERVICE');
    const capabilities: GetPluginCapabilitiesResponse['capabilities'] = services.map((type) => ({ service: { type } }));
    const expansion = this.backend.features.expansion;
    if (this.opts.serveController && expansion !== 'none' && this.backend.expandVolume) {
      capabilities.push({ volume_expansion: { type: expansion === 'online' ? 'ONLINE' : 'OFFLINE' } });
    }
    return { capabilities };
  }

  /** Ready only when the backend really works; a lasting problem is FAILED_PRECONDITION with its cause. */
  async probe(): Promise<ProbeResponse> {
    if (this.opts.serveNode && this.opts.nodeProblem) throw failedPrecondition(this.opts.nodeProblem);
    await this.backend.probe();
    return { ready: { value: true } };
  }
}
