// The health of the bricks behind a FUSE mount, as its client sees them, for NodeGetVolumeStats: the
// client's translator graph is readable under <mount>/.meta/graphs/active (gluster's meta translator, also
// on a subdirectory mount): `<vol>-client-N/private` says `connected = 0|1`, `options/remote-host` and
// `options/remote-subvolume` name the brick, `<vol>-replicate-K` / `<vol>-disperse-K` group them.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { VolumeCondition } from '../backend.js';
import type { GlusterVolumeInfo } from './cli.js';
import { brickCondition, type BrickState } from './health.js';

const CLIENT = /^(.+)-client-(\d+)$/;

const read = (path: string) => readFile(path, 'utf8').then((t) => t.trim());

/** undefined when the graph cannot be read (not a gluster mount, or an old client without .meta). */
export async function mountBrickCondition(mountPoint: string): Promise<VolumeCondition | undefined> {
  const graph = join(mountPoint, '.meta', 'graphs', 'active');
  let entries: string[];
  try {
    entries = await readdir(graph);
  } catch {
    return undefined;
  }
  const clients = entries
    .map((e) => CLIENT.exec(e))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[2]) - Number(b[2]));
  if (clients.length === 0) return undefined;
  const volume = clients[0]![1]!;
  const states: BrickState[] = [];
  for (const c of clients) {
    const dir = join(graph, c[0]);
    const [priv, host, path] = await Promise.all([
      read(join(dir, 'private')),
      read(join(dir, 'options', 'remote-host')),
      read(join(dir, 'options', 'remote-subvolume')),
    ]);
    states.push({ host, path, online: /connected = 1/.test(priv) });
  }
  const group = entries.find((e) => e === `${volume}-replicate-0` || e === `${volume}-disperse-0`);
  const size = group ? (await readdir(join(graph, group, 'subvolumes'))).length : 1;
  const redundancy = group?.includes('-disperse-') ? Number(await read(join(graph, group, 'options', 'redundancy')).catch(() => '1')) : 0;
  const info: GlusterVolumeInfo = {
    name: volume,
    started: true,
    typeStr: '',
    replicaCount: group?.includes('-replicate-') ? size : 1,
    disperseCount: redundancy ? size : 0,
    redundancyCount: redundancy,
    arbiterCount: 0,
    bricks: states.map((s) => ({ host: s.host, path: s.path })),
    options: new Map(),
  };
  const condition = brickCondition(info, states);
  return condition.abnormal ? { abnormal: true, message: `as this node's client sees it: ${condition.message}` } : undefined;
}
