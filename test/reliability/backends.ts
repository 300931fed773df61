// The backends the reliability suites run against, and what each suite needs to know about one: how to
// start it and how to look at the storage it keeps for a volume. Only the loop backend is described today;
// another backend joins every suite by adding an entry here (REXCSI_RELIABILITY_BACKENDS=loop,ebs picks).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LOOP_LIFECYCLE_FAULT_POINTS } from '../../src/backends/loop/faults.js';
import { NODE_FAULT_POINTS } from '../../src/node/faults.js';
import { Pool } from '../../src/backends/loop/pool.js';
import { loopDevicesOf } from '../../src/os/index.js';
import { startPlugin, type PluginProcess, type StartPluginOptions } from '../helpers/plugin.js';

/** The fault points of the volume lifecycle (create, stage, publish and back down), all crash-tested. */
export const LIFECYCLE_FAULT_POINTS = [...LOOP_LIFECYCLE_FAULT_POINTS, ...NODE_FAULT_POINTS] as const;
export type LifecycleFaultPoint = (typeof LIFECYCLE_FAULT_POINTS)[number];

export interface VolumeArtifacts {
  /** The backend's record of the volume (loop: <id>.json). */
  meta: boolean;
  /** The volume's data (loop: <id>.img). */
  data: boolean;
  /** Anything else the backend keeps about the volume (temp files of an interrupted write, ...). */
  stray: string[];
}

export interface ReliabilityBackend {
  readonly name: string;
  /** The fault points on this backend's paths through the protocol layer and the backend. */
  readonly faultPoints: readonly LifecycleFaultPoint[];
  start(name: string, opts?: StartPluginOptions): Promise<PluginProcess>;
  artifacts(plugin: PluginProcess, volumeId: string): Promise<VolumeArtifacts>;
  /** Every file the backend keeps, for "nothing left" checks after a volume is deleted. */
  allArtifacts(plugin: PluginProcess): Promise<string[]>;
  /** Devices attached on this node for the volume (loop devices). */
  attachedDevices(plugin: PluginProcess, volumeId: string): Promise<string[]>;
  /** Where the volume's metadata lives, for the damaged-metadata tests. */
  metadataPath(plugin: PluginProcess, volumeId: string): string;
  /** Where the volume's data lives, for checksums. */
  dataPath(plugin: PluginProcess, volumeId: string): string;
  /** The volume id CreateVolume gives a name (to find a volume whose creator gave up waiting). */
  idForName(name: string): string;
}

const loop: ReliabilityBackend = {
  name: 'loop',
  faultPoints: LIFECYCLE_FAULT_POINTS,
  start: (name, opts = {}) => startPlugin({ name, ...opts, backend: 'loop' }),
  async artifacts(plugin, id) {
    const names = await readdir(join(plugin.poolDir, 'volumes'));
    return {
      meta: names.includes(`${id}.json`),
      data: names.includes(`${id}.img`),
      stray: names.filter((n) => n.includes(id) && n !== `${id}.json` && n !== `${id}.img`),
    };
  },
  allArtifacts: async (plugin) => (await readdir(join(plugin.poolDir, 'volumes'))).sort(),
  attachedDevices: (plugin, id) => loopDevicesOf(join(plugin.poolDir, 'volumes', `${id}.img`)),
  metadataPath: (plugin, id) => join(plugin.poolDir, 'volumes', `${id}.json`),
  dataPath: (plugin, id) => join(plugin.poolDir, 'volumes', `${id}.img`),
  idForName: (name) => Pool.idForName(name),
};

const ALL: Record<string, ReliabilityBackend> = { loop };

export function reliabilityBackends(): ReliabilityBackend[] {
  const names = (process.env['REXCSI_RELIABILITY_BACKENDS'] ?? 'loop').split(',').filter(Boolean);
  return names.map((n) => {
    const b = ALL[n];
    if (!b)
      throw new Error(
        `REXCSI_RELIABILITY_BACKENDS: no reliability description for backend ${JSON.stringify(n)} (known: ${Object.keys(ALL).join(', ')})`,
      );
    return b;
  });
}
