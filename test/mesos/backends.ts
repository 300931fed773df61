// The backends the Mesos scenarios run against. Adding one is an entry here (the plugin type its profiles
// select in examples/mesos/disk-profiles.json, and a function that starts the plugin and whatever the
// backend needs: glusterd, moto) and a test file scenarios-<name>.test.ts calling describeBackendScenarios.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { startEbsWorld } from '../helpers/ebs.js';
import { startGlusterd, waitForForeignGlusterd, type Glusterd } from '../helpers/gluster.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
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
  /** the node id NodeGetInfo / NodeGetId must answer */
  nodeId: string;
  /** stops the plugin and everything the backend started */
  stop(): Promise<void>;
}

export interface MesosBackend {
  name: string;
  /** CSIPluginInfo.type, and the plugin_type the disk profiles select */
  pluginType: string;
  /** disk size for CREATE_DISK, in MB as Mesos sizes disks (a multiple of the backend's allocation unit) */
  diskSizeMB: number;
  /** false where the volume cannot be formatted and written by this test machine (none yet) */
  writesData: boolean;
  /** where the node id comes from, for the test's name */
  nodeIdFrom: string;
  start(args: StartArgs): Promise<RunningBackend>;
  /** once per test file, before every group: what is one per machine (glusterd) */
  setUpFile?(): Promise<void>;
  setUpTimeoutMs?: number;
  tearDownFile?(): Promise<void>;
}

/** A plugin serving only csi.v0 is ready when its v0 Probe says so (the v1 one is UNIMPLEMENTED). */
export function readyFor(csiVersions: CsiVersions): ((endpoint: string) => Promise<void>) | undefined {
  if (csiVersions !== 'v0') return undefined;
  return async (endpoint) => {
    const res = await probeV0(endpoint);
    if (res.ready && !res.ready.value) throw new Error('csi.v0 Probe answered ready=false');
  };
}

const loop: MesosBackend = {
  name: 'loop',
  pluginType: 'io.rexcsi.loop',
  diskSizeMB: 64,
  writesData: true,
  nodeIdFrom: 'MESOS_AGENT_ID',
  async start({ csiVersions, agentId }) {
    // No --node-id: the node id must come from MESOS_AGENT_ID, as Mesos starts the plugin.
    const plugin = await startPlugin({
      name: 'mesos-loop',
      nodeId: null,
      env: { MESOS_AGENT_ID: agentId },
      args: ['--csi-versions', csiVersions],
      ready: readyFor(csiVersions),
    });
    return { plugin, nodeId: agentId, stop: () => plugin.cleanup() };
  },
};

// EBS allocates whole GiB and Mesos asks required == limit, so a disk is 1024 MB (1 GiB, a sparse file behind
// the simulated attach). The node id is the EC2 instance id (ControllerPublish attaches to it), whatever
// MESOS_AGENT_ID says. --node-attach: external volumes get no ControllerPublish, so the node attaches itself.
const ebs: MesosBackend = {
  name: 'ebs',
  pluginType: 'io.rexcsi.ebs',
  diskSizeMB: 1024,
  writesData: true,
  nodeIdFrom: 'the EC2 instance id, not MESOS_AGENT_ID',
  async start({ csiVersions, agentId }) {
    const world = await startEbsWorld(`mesos-ebs-${csiVersions}`);
    let plugin: PluginProcess;
    try {
      plugin = await startPlugin({
        backend: 'ebs',
        name: `mesos-ebs-${csiVersions}`,
        nodeId: null,
        env: { ...world.moto.env(), MESOS_AGENT_ID: agentId },
        args: world.pluginArgs(['--node-attach', '--csi-versions', csiVersions]),
        ready: readyFor(csiVersions),
        readyTimeoutMs: 60_000,
      });
    } catch (e) {
      await world.stop();
      throw e;
    }
    return {
      plugin,
      nodeId: world.instanceId,
      async stop() {
        try {
          await plugin.cleanup();
        } finally {
          await world.stop();
        }
      },
    };
  },
};

// One glusterd per test file (machine-exclusive: port 24007 on 127.0.0.2), a hosting volume for the
// `subdir` profile; one plugin per version group on it, each with its own work dir.
const HOSTING = 'mesos-hosting';
let glusterd: Glusterd | undefined;
const glusterfs: MesosBackend = {
  name: 'glusterfs',
  pluginType: 'io.rexcsi.glusterfs',
  diskSizeMB: 64,
  writesData: true,
  nodeIdFrom: 'MESOS_AGENT_ID',
  setUpTimeoutMs: 45 * 60_000,
  async setUpFile() {
    await waitForForeignGlusterd();
    glusterd = await startGlusterd();
    await glusterd.createHostingVolume(HOSTING);
  },
  async tearDownFile() {
    await glusterd?.stop();
    glusterd = undefined;
  },
  async start({ csiVersions, agentId }) {
    const g = glusterd;
    if (!g) throw new Error('glusterd is not running: setUpFile() first');
    const dir = await makeTempDir(`mesos-glusterfs-${csiVersions}`);
    let plugin: PluginProcess;
    try {
      plugin = await startPlugin({
        backend: 'glusterfs',
        name: `mesos-glusterfs-${csiVersions}`,
        nodeId: null,
        env: { MESOS_AGENT_ID: agentId },
        args: [
          '--gluster-server',
          g.host,
          '--hosting-volume',
          HOSTING,
          '--glusterd-socket',
          g.socket,
          '--gluster-work-dir',
          join(dir, 'work'),
          '--csi-versions',
          csiVersions,
        ],
        ready: readyFor(csiVersions),
        readyTimeoutMs: 60_000,
      });
    } catch (e) {
      await removeTempDir(dir);
      throw e;
    }
    return {
      plugin,
      nodeId: agentId,
      async stop() {
        try {
          await plugin.cleanup();
        } finally {
          await removeTempDir(dir);
        }
      },
    };
  },
};

export const MESOS_BACKENDS: MesosBackend[] = [loop, ebs, glusterfs];

export function mesosBackend(name: string): MesosBackend {
  const found = MESOS_BACKENDS.find((b) => b.name === name);
  if (!found) throw new Error(`no Mesos backend ${name}`);
  return found;
}
