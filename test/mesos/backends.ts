// The backends the Mesos scenarios run against. Adding one is an entry here: the plugin type its profiles
// select in examples/mesos/disk-profiles.json, and a function that starts the plugin (and whatever the
// backend needs: glusterd, moto) and hands back the plugin and a way to stop it all.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, startPlugin, type PluginProcess } from '../helpers/plugin.js';
import type { CsiVersions } from '../../src/config.js';
import { probeV0 } from './mesos-client.js';

export const PROFILE_DOCUMENT_URI = pathToFileURL(join(REPO_ROOT, 'examples', 'mesos', 'disk-profiles.json')).href;

export interface StartArgs {
  /** `--csi-versions`: 'v0' makes the plugin look like a CSI 0.2/0.3 plugin to Mesos */
  csiVersions: CsiVersions;
  /** what Mesos puts in MESOS_AGENT_ID for a plugin container that provides NODE_SERVICE */
  agentId: string;
}

export interface RunningBackend {
  plugin: PluginProcess;
  /** stops the plugin and everything the backend started */
  stop(): Promise<void>;
}

export interface MesosBackend {
  name: string;
  /** CSIPluginInfo.type, and the plugin_type the disk profiles select */
  pluginType: string;
  /** disk size for CREATE_DISK, in MB as Mesos sizes disks */
  diskSizeMB: number;
  /** false where the volume cannot be formatted and written by this test machine (none yet) */
  writesData: boolean;
  start(args: StartArgs): Promise<RunningBackend>;
}

/** A plugin serving only csi.v0 is ready when its v0 Probe says so (the v1 one is UNIMPLEMENTED). */
export function readyFor(csiVersions: CsiVersions): ((endpoint: string) => Promise<void>) | undefined {
  if (csiVersions !== 'v0') return undefined;
  return async (endpoint) => {
    const res = await probeV0(endpoint);
    if (res.ready && !res.ready.value) throw new Error('csi.v0 Probe answered ready=false');
  };
}

export const MESOS_BACKENDS: MesosBackend[] = [
  {
    name: 'loop',
    pluginType: 'io.rexcsi.loop',
    diskSizeMB: 64,
    writesData: true,
    async start({ csiVersions, agentId }) {
      // No --node-id: the node id must come from MESOS_AGENT_ID, as Mesos starts the plugin.
      const plugin = await startPlugin({ name: 'mesos-loop', nodeId: null, env: { MESOS_AGENT_ID: agentId }, args: ['--csi-versions', csiVersions], ready: readyFor(csiVersions) });
      return { plugin, stop: () => plugin.cleanup() };
    },
  },
];
