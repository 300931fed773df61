import type { Backend } from '../backends/backend.js';
import { failedPrecondition } from '../errors.js';
import { deriveCapabilities } from '../csi/capabilities.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import { VERSION } from '../version.js';
import type { IdentityHandlers } from '../csi/gen/csi/v1/Identity.js';
import type { GetPluginInfoResponse } from '../csi/gen/csi/v1/GetPluginInfoResponse.js';
import type { GetPluginCapabilitiesResponse } from '../csi/gen/csi/v1/GetPluginCapabilitiesResponse.js';
import type { ProbeResponse } from '../csi/gen/csi/v1/ProbeResponse.js';

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

  /** GetPluginCapabilities, from the backend's groups and the services served (src/csi/capabilities.ts). */
  capabilities(): GetPluginCapabilitiesResponse {
    const served = { controller: this.opts.serveController, node: this.opts.serveNode };
    return { capabilities: deriveCapabilities(this.backend, served).plugin };
  }

  /** Ready only when the backend really works; a lasting problem is FAILED_PRECONDITION with its cause. */
  async probe(): Promise<ProbeResponse> {
    if (this.opts.serveNode && this.opts.nodeProblem) throw failedPrecondition(this.opts.nodeProblem);
    await this.backend.probe();
    return { ready: { value: true } };
  }
}
