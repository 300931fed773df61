// Where a volume-layout volume's bricks go: one subvolume (replicate or disperse, or a single brick) with
// every brick on a different server, so losing one server never takes two copies of the same data. Pure
// functions: the backend feeds in what glusterd says about the pool.
import { invalidArgument, resourceExhausted } from '../../errors.js';

export type BrickLayout =
  | { kind: 'single' }
  /** replica bricks; with arbiter the last one holds only metadata (gluster's `replica 3 arbiter 1`) */
  | { kind: 'replicate'; replica: number; arbiter: 0 | 1 }
  /** disperse bricks, any `redundancy` of which may be lost */
  | { kind: 'disperse'; disperse: number; redundancy: number };

export interface PoolServer {
  host: string;
  /** glusterd on it is connected to the pool right now */
  up: boolean;
  /** brick root directories on it ([] = it takes no bricks) */
  roots: string[];
  /** bricks of rexcsi volumes it already holds (placement prefers the emptier servers) */
  bricks: number;
}

export interface PlacedBrick {
  host: string;
  path: string;
}

const MAX_BRICKS = 16;

export function brickCount(layout: BrickLayout): number {
  if (layout.kind === 'single') return 1;
  return layout.kind === 'replicate' ? layout.replica : layout.disperse;
}

/** The bricks whose loss the volume survives while still taking writes. */
export function toleratedLosses(layout: BrickLayout): number {
  if (layout.kind === 'single') return 0;
  if (layout.kind === 'disperse') return layout.redundancy;
  return Math.floor((layout.replica - 1) / 2); // client quorum auto: more than half must be up
}

/** Parses replica / arbiter / disperse / redundancy; defaultReplica when none is given. */
export function parseBrickLayout(p: Record<string, string>, defaultReplica: number): BrickLayout {
  const num = (key: string): number | undefined => {
    const v = p[key];
    if (v === undefined) return undefined;
    if (!/^\d{1,2}$/.test(v)) throw invalidArgument(`parameter ${key}=${JSON.stringify(v)}: expected a whole number`);
    return Number(v);
  };
  const [replica, arbiter, disperse, redundancy] = [num('replica'), num('arbiter'), num('disperse'), num('redundancy')];
  if (disperse !== undefined || redundancy !== undefined) {
    if (replica !== undefined || arbiter !== undefined)
      throw invalidArgument('parameters disperse/redundancy and replica/arbiter exclude each other');
    const n = disperse ?? 0;
    const r = redundancy ?? 1;
    if (n < 3 || n > MAX_BRICKS) throw invalidArgument(`parameter disperse=${n}: expected 3 to ${MAX_BRICKS} bricks`);
    if (r < 1 || 2 * r >= n) throw invalidArgument(`parameter redundancy=${r}: expected 1 to ${Math.floor((n - 1) / 2)} for disperse=${n}`);
    return { kind: 'disperse', disperse: n, redundancy: r };
  }
  const count = replica ?? defaultReplica;
  if (arbiter !== undefined && arbiter !== 0 && arbiter !== 1) throw invalidArgument(`parameter arbiter=${arbiter}: expected 0 or 1`);
  if (arbiter === 1 && count !== 3)
    throw invalidArgument(`parameter arbiter=1 needs replica=3 (two data bricks and an arbiter), not replica=${count}`);
  if (count === 2)
    throw invalidArgument('parameter replica=2 is refused: gluster replica 2 volumes split-brain; use 3, or 3 with arbiter=1');
  if (count < 1 || count > MAX_BRICKS) throw invalidArgument(`parameter replica=${count}: expected 1 or 3 to ${MAX_BRICKS}`);
  return count === 1 ? { kind: 'single' } : { kind: 'replicate', replica: count, arbiter: arbiter === 1 ? 1 : 0 };
}

/** The layout's words for `gluster volume create`. */
export function layoutArgs(layout: BrickLayout): string[] {
  if (layout.kind === 'single') return [];
  if (layout.kind === 'disperse') return ['disperse', String(layout.disperse), 'redundancy', String(layout.redundancy)];
  return ['replica', String(layout.replica), ...(layout.arbiter ? ['arbiter', '1'] : [])];
}

/** Servers that can take a brick now, emptiest first (ties in the configured order). */
export function eligibleServers(servers: PoolServer[]): PoolServer[] {
  return servers
    .map((s, order) => ({ s, order }))
    .filter(({ s }) => s.up && s.roots.length > 0)
    .sort((a, b) => a.s.bricks - b.s.bricks || a.order - b.order)
    .map(({ s }) => s);
}

/** Why the pool cannot place `needed` bricks on distinct servers, naming what is missing; undefined when it can. */
export function placementProblem(servers: PoolServer[], needed: number): string | undefined {
  const eligible = eligibleServers(servers);
  if (eligible.length >= needed) return undefined;
  const down = servers.filter((s) => !s.up).map((s) => s.host);
  const rootless = servers.filter((s) => s.up && s.roots.length === 0).map((s) => s.host);
  return (
    `${needed} bricks on ${needed} different servers are needed, but only ${eligible.length} server(s) can take one` +
    (eligible.length ? ` (${eligible.map((s) => s.host).join(', ')})` : '') +
    (down.length ? `; down or not in the pool: ${down.join(', ')}` : '') +
    (rootless.length ? `; without a --brick-root: ${rootless.join(', ')}` : '') +
    (servers.length < needed ? `; the pool has ${servers.length} server(s) in --gluster-server` : '')
  );
}

/**
 * One brick per server for `brickName` (a fresh directory under the server's brick root, which glusterd
 * creates), the emptiest servers first; RESOURCE_EXHAUSTED naming what is missing when too few are up.
 */
export function placeBricks(servers: PoolServer[], layout: BrickLayout, brickName: string, hash: number): PlacedBrick[] {
  const needed = brickCount(layout);
  const problem = placementProblem(servers, needed);
  if (problem) throw resourceExhausted(problem);
  return eligibleServers(servers)
    .slice(0, needed)
    .map((s) => ({ host: s.host, path: `${s.roots[hash % s.roots.length]!.replace(/\/+$/, '')}/${brickName}` }));
}

/**
 * `--brick-root` values: `DIR` (that directory on every server) or `HOST:DIR` (on that server only).
 * Throws Error (a start-up problem) naming a bad value.
 */
export function parseBrickRoots(values: string[], servers: string[]): Map<string, string[]> {
  const roots = new Map<string, string[]>(servers.map((s) => [s, []]));
  for (const v of values) {
    const colon = v.indexOf(':/');
    const [host, dir] = v.startsWith('/') ? [undefined, v] : colon > 0 ? [v.slice(0, colon), v.slice(colon + 1)] : [undefined, v];
    if (!dir.startsWith('/') || dir.split('/').includes('..'))
      throw new Error(`--brick-root=${JSON.stringify(v)}: expected DIR or HOST:DIR with an absolute DIR`);
    if (host !== undefined && !roots.has(host))
      throw new Error(`--brick-root=${JSON.stringify(v)}: ${host} is not one of --gluster-server`);
    for (const s of host === undefined ? servers : [host]) roots.get(s)!.push(dir);
  }
  return roots;
}
