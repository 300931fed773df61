// A volume's health as glusterd sees it: which bricks are down (`volume status`), and whether the ones
// left still hold quorum, so writes go on. Pure: the backend feeds in volume info and status.
import type { VolumeCondition } from '../backend.js';
import type { GlusterVolumeInfo } from './cli.js';

export interface BrickState {
  host: string;
  path: string;
  online: boolean;
}

export function healthy(): VolumeCondition {
  return { abnormal: false, message: 'volume is healthy' };
}

/** How many bricks of each subvolume must be up for writes (client quorum auto on replica, data bricks on disperse). */
function quorumOf(info: GlusterVolumeInfo): { size: number; needed: number } {
  if (info.disperseCount > 0) return { size: info.disperseCount, needed: info.disperseCount - info.redundancyCount };
  if (info.replicaCount > 1) return { size: info.replicaCount, needed: Math.floor(info.replicaCount / 2) + 1 };
  return { size: 1, needed: 1 };
}

/** The condition of a started volume from its bricks' states (bricks glusterd did not report count as down). */
export function brickCondition(info: GlusterVolumeInfo, online: BrickState[]): VolumeCondition {
  const up = new Set(online.filter((b) => b.online).map((b) => `${b.host}:${b.path}`));
  const names = info.bricks.map((b) => `${b.host}:${b.path}`);
  const down = names.filter((n) => !up.has(n));
  if (down.length === 0) return healthy();
  const { size, needed } = quorumOf(info);
  const lost: number[] = [];
  for (let first = 0; first < names.length; first += size) {
    const upHere = names.slice(first, first + size).filter((n) => up.has(n)).length;
    if (upHere < needed) lost.push(first / size);
  }
  const what = `gluster volume ${info.name}: ${down.length} of ${names.length} bricks down (${down.join(', ')})`;
  if (lost.length > 0) {
    const detail = size > 1 ? `fewer than ${needed} of ${size} bricks of a subvolume are up` : 'its only brick is down';
    return { abnormal: true, message: `${what}; quorum lost (${detail}): writes fail until the servers return` };
  }
  return { abnormal: true, message: `${what}; quorum held: reads and writes go on, the bricks heal when they return` };
}
