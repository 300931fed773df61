import { status as Status } from '@grpc/grpc-js';
import { CallFailed } from './client.js';
import { EXIT, type Command } from './command.js';

// `rexcsi info`: who the plugin is, what it offers, and whether it is ready.

/** The call's answer, or undefined when the plugin does not serve that service (UNIMPLEMENTED). */
async function ifServed<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (e) {
    if (e instanceof CallFailed && e.code === Status.UNIMPLEMENTED) return undefined;
    throw e;
  }
}

export const INFO_COMMANDS: Command[] = [
  {
    name: 'info',
    summary: 'Plugin name and version, its capabilities (identity, controller, node, group controller), node info and readiness.',
    notes: ['Exit code 5 when Probe answers not ready.'],
    async run({ csi, out }) {
      const plugin = await csi.identity.GetPluginInfo({});
      const caps = await csi.identity.GetPluginCapabilities({});
      const probe = await csi.identity.Probe({});
      const controller = await ifServed(csi.controller.ControllerGetCapabilities({}));
      const node = await ifServed(csi.node.NodeGetCapabilities({}));
      const nodeInfo = node ? await ifServed(csi.node.NodeGetInfo({})) : undefined;
      const group = await ifServed(csi.groupController.GroupControllerGetCapabilities({}));
      // An unset `ready` means ready (CSI spec).
      const ready = probe.ready == null || probe.ready.value;
      out.result(
        {
          plugin,
          capabilities: caps.capabilities,
          ready,
          controller: controller ?? null,
          node: node ?? null,
          nodeInfo: nodeInfo ?? null,
          groupController: group ?? null,
        },
        () => {
          const pluginCaps = caps.capabilities.map((c) =>
            c.service ? c.service.type : c.volume_expansion ? `VOLUME_EXPANSION_${c.volume_expansion.type}` : '?',
          );
          out.fields([
            ['name', plugin.name],
            ['version', plugin.vendor_version],
            [
              'manifest',
              Object.entries(plugin.manifest)
                .map(([k, v]) => `${k}=${v}`)
                .join(', '),
            ],
            ['mounter', plugin.manifest['mounter']],
            ['ready', ready ? 'yes' : 'no'],
            ['plugin capabilities', pluginCaps.join(', ') || '(none)'],
            [
              'controller',
              controller ? controller.capabilities.map((c) => c.rpc?.type ?? '?').join(', ') || '(served, no capabilities)' : 'not served',
            ],
            ['node', node ? node.capabilities.map((c) => c.rpc?.type ?? '?').join(', ') || '(served, no capabilities)' : 'not served'],
            ['node id', nodeInfo?.node_id],
            [
              'max volumes',
              nodeInfo ? (Number(nodeInfo.max_volumes_per_node) > 0 ? String(nodeInfo.max_volumes_per_node) : 'no limit') : undefined,
            ],
            [
              'topology',
              nodeInfo?.accessible_topology
                ? Object.entries(nodeInfo.accessible_topology.segments)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(', ')
                : undefined,
            ],
            [
              'group controller',
              group ? group.capabilities.map((c) => c.rpc?.type ?? '?').join(', ') || '(served, no capabilities)' : 'not served',
            ],
          ]);
        },
      );
      return ready ? EXIT.OK : EXIT.DECLINED;
    },
  },
];
