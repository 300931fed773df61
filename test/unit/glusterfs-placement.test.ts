// Brick placement and volume health of the glusterfs backend (pure functions, no glusterd).
import { describe, expect, it } from 'vitest';
import { brickCondition } from '../../src/backends/glusterfs/health.js';
import type { GlusterVolumeInfo } from '../../src/backends/glusterfs/cli.js';
import {
  layoutArgs,
  parseBrickLayout,
  parseBrickRoots,
  placeBricks,
  placementProblem,
  type PoolServer,
} from '../../src/backends/glusterfs/placement.js';
import { isCsiError } from '../../src/errors.js';

const server = (host: string, up = true, bricks = 0, roots = ['/bricks']): PoolServer => ({ host, up, roots, bricks });

describe('glusterfs brick layout parameters', () => {
  it('defaults to the given replica count and reads replica, arbiter, disperse and redundancy', () => {
    expect(parseBrickLayout({}, 3)).toEqual({ kind: 'replicate', replica: 3, arbiter: 0 });
    expect(parseBrickLayout({}, 1)).toEqual({ kind: 'single' });
    expect(parseBrickLayout({ replica: '3', arbiter: '1' }, 1)).toEqual({ kind: 'replicate', replica: 3, arbiter: 1 });
    expect(parseBrickLayout({ disperse: '6', redundancy: '2' }, 3)).toEqual({ kind: 'disperse', disperse: 6, redundancy: 2 });
    expect(parseBrickLayout({ disperse: '3' }, 3)).toEqual({ kind: 'disperse', disperse: 3, redundancy: 1 });
    expect(layoutArgs({ kind: 'replicate', replica: 3, arbiter: 1 })).toEqual(['replica', '3', 'arbiter', '1']);
    expect(layoutArgs({ kind: 'disperse', disperse: 6, redundancy: 2 })).toEqual(['disperse', '6', 'redundancy', '2']);
    expect(layoutArgs({ kind: 'single' })).toEqual([]);
  });

  it.each([
    [{ replica: '2' }, /split-brain/],
    [{ replica: '17' }, /1 or 3 to 16/],
    [{ replica: 'x' }, /whole number/],
    [{ replica: '5', arbiter: '1' }, /arbiter=1 needs replica=3/],
    [{ arbiter: '2' }, /0 or 1/],
    [{ disperse: '4', redundancy: '2' }, /redundancy=2: expected 1 to 1/],
    [{ disperse: '2' }, /3 to 16/],
    [{ disperse: '3', replica: '3' }, /exclude each other/],
  ])('refuses %j with INVALID_ARGUMENT', (p, message) => {
    try {
      parseBrickLayout(p, 3);
      expect.unreachable();
    } catch (e) {
      expect(isCsiError(e, 'INVALID_ARGUMENT')).toBe(true);
      expect((e as Error).message).toMatch(message);
    }
  });
});

describe('glusterfs brick placement', () => {
  const three = [server('a'), server('b'), server('c')];

  it('puts every brick of a replica volume on a different server, under its brick root', () => {
    const bricks = placeBricks(three, { kind: 'replicate', replica: 3, arbiter: 0 }, 'gv-1-ab', 0);
    expect(bricks).toEqual([
      { host: 'a', path: '/bricks/gv-1-ab' },
      { host: 'b', path: '/bricks/gv-1-ab' },
      { host: 'c', path: '/bricks/gv-1-ab' },
    ]);
  });

  it('prefers the emptiest servers and never two bricks on one server', () => {
    const five = [server('a', true, 4), server('b', true, 1), server('c', true, 0), server('d', true, 2), server('e', true, 9)];
    const hosts = placeBricks(five, { kind: 'replicate', replica: 3, arbiter: 0 }, 'x', 0).map((b) => b.host);
    expect(hosts).toEqual(['c', 'b', 'd']);
    const all = placeBricks(five, { kind: 'disperse', disperse: 5, redundancy: 2 }, 'x', 0).map((b) => b.host);
    expect(new Set(all).size).toBe(5);
  });

  it('spreads volumes over several brick roots of a server by hash', () => {
    const s = [server('a', true, 0, ['/b1', '/b2/'])];
    expect(placeBricks(s, { kind: 'single' }, 'x', 0)[0]!.path).toBe('/b1/x');
    expect(placeBricks(s, { kind: 'single' }, 'x', 1)[0]!.path).toBe('/b2/x');
  });

  it('refuses with RESOURCE_EXHAUSTED naming the servers down and without a brick root', () => {
    const pool = [server('a'), server('b', false), server('c', true, 0, [])];
    try {
      placeBricks(pool, { kind: 'replicate', replica: 3, arbiter: 0 }, 'x', 0);
      expect.unreachable();
    } catch (e) {
      expect(isCsiError(e, 'RESOURCE_EXHAUSTED')).toBe(true);
      expect((e as Error).message).toMatch(/3 bricks on 3 different servers are needed, but only 1 server\(s\) can take one \(a\)/);
      expect((e as Error).message).toMatch(/down or not in the pool: b/);
      expect((e as Error).message).toMatch(/without a --brick-root: c/);
    }
    expect(placementProblem([server('a')], 3)).toMatch(/the pool has 1 server\(s\) in --gluster-server/);
    expect(placementProblem(three, 3)).toBeUndefined();
  });

  it('reads --brick-root as DIR for every server or HOST:DIR for one', () => {
    const roots = parseBrickRoots(['/all', 'b:/only-b'], ['a', 'b']);
    expect(roots.get('a')).toEqual(['/all']);
    expect(roots.get('b')).toEqual(['/all', '/only-b']);
    expect(() => parseBrickRoots(['x:/d'], ['a'])).toThrow(/x is not one of --gluster-server/);
    expect(() => parseBrickRoots(['rel'], ['a'])).toThrow(/absolute DIR/);
    expect(() => parseBrickRoots(['/a/../b'], ['a'])).toThrow(/absolute DIR/);
  });
});

describe('glusterfs volume health from brick states', () => {
  const info = (replica: number, disperse = 0, redundancy = 0, n = 3): GlusterVolumeInfo => ({
    name: 'gv-x',
    started: true,
    typeStr: 'Replicate',
    replicaCount: replica,
    disperseCount: disperse,
    redundancyCount: redundancy,
    arbiterCount: 0,
    bricks: Array.from({ length: n }, (_, i) => ({ host: `h${i}`, path: `/b${i}` })),
    options: new Map(),
  });
  const states = (online: boolean[]) => online.map((o, i) => ({ host: `h${i}`, path: `/b${i}`, online: o }));

  it('is healthy with every brick up', () => {
    expect(brickCondition(info(3), states([true, true, true]))).toEqual({ abnormal: false, message: 'volume is healthy' });
  });

  it('names the bricks down; one of three keeps quorum, two of three lose it', () => {
    const one = brickCondition(info(3), states([true, true, false]));
    expect(one.abnormal).toBe(true);
    expect(one.message).toMatch(/1 of 3 bricks down \(h2:\/b2\); quorum held/);
    // a server that is down is left out of `volume status`: its brick counts as down
    const two = brickCondition(info(3), states([true]));
    expect(two.message).toMatch(/2 of 3 bricks down \(h1:\/b1, h2:\/b2\); quorum lost/);
  });

  it('disperse volumes lose quorum past their redundancy; a single brick down is quorum lost', () => {
    expect(brickCondition(info(1, 3, 1), states([true, true, false])).message).toMatch(/quorum held/);
    expect(brickCondition(info(1, 3, 1), states([true, false, false])).message).toMatch(/quorum lost/);
    expect(brickCondition(info(1, 0, 0, 1), states([false])).message).toMatch(/quorum lost \(its only brick is down\)/);
  });
});
