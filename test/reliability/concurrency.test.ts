// Concurrency, on every backend: clients (each its own connection) run mixed operations (create, stage,
// publish and back down, list, stats) on a set of volumes, with identical twins of a request in flight
// together and conflicting requests on a volume that is busy; the backend is slowed at its fault points so
// that they meet. The load runs once (beforeAll); each property is its own test: no answer is INTERNAL or
// UNKNOWN, twins get the same answer, a request on a volume whose operation still runs gets ABORTED, the
// final state is what the successful calls made, and everything comes down leaving nothing. Sizes are per
// backend (backends.ts `load`): a call on moto or glusterd costs more than one on a loop device.
// ebs's ControllerPublish path has its own load on the same driver (ebs-concurrency.test.ts).
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt } from '../../src/os/index.js';
import { csiClients, isServiceError, type CsiClients } from '../helpers/client.js';
import { forceCleanupUnder } from '../helpers/volumes.js';
import { backendsFor, type ReliabilityBackend, type RunningBackend } from './backends.js';
import {
  allowedEndStates,
  conflictOutcomes,
  history,
  internalFailures,
  overlappingTwins,
  runMixedLoad,
  twinAnswers,
  type LoadOp,
  type LoadResult,
  type TimedOutcome,
} from './mixed-load.js';

const SEED = 20240609;

type Kind = 'create' | 'stage' | 'publish' | 'unpublish' | 'unstage' | 'delete' | 'list' | 'stats';
type VolState = 'absent' | 'created' | 'staged' | 'published';
const AFTER: Partial<Record<Kind, VolState>> = {
  create: 'created',
  stage: 'staged',
  publish: 'published',
  unpublish: 'staged',
  unstage: 'created',
  delete: 'absent',
};
const RANK: Record<VolState, number> = { absent: 0, created: 1, staged: 2, published: 3 };
/** Requests that take the volume's lock (CreateVolume takes the name's). */
const LOCKED = new Set<Kind>(['stage', 'publish', 'unpublish', 'unstage', 'delete']);

type Outcome = TimedOutcome<Kind>;

/**
 * A successful call's effect on a volume. One that had nothing to do (CreateVolume of an existing volume,
 * NodeUnpublishVolume of an unpublished one, ...) changes nothing: up to, never down, and the other way.
 */
function step(state: VolState, kind: Kind): VolState {
  const to = AFTER[kind]!;
  if (kind === 'create' || kind === 'stage') return RANK[state] < RANK[to] ? to : state;
  if (kind === 'unpublish' || kind === 'unstage') return RANK[state] > RANK[to] ? to : state;
  return to;
}
const replay = (calls: Outcome[]): VolState => calls.reduce<VolState>((state, o) => step(state, o.kind), 'created');

describe.each(backendsFor('concurrency').map((b) => [b.label, b] as const))('concurrency (%s)', (_label, backend: ReliabilityBackend) => {
  const { clients: CLIENTS, operations: OPERATIONS, volumes: VOLUMES } = backend.load;
  let running: RunningBackend;
  let clients: CsiClients[] = [];
  let load: LoadResult<Outcome>;
  const cap = backend.capability;
  const ids = new Map<number, string>();
  const staging = (v: number) => join(running.plugin.dir, 'staging', `v${v}`);
  const target = (v: number) => join(running.plugin.dir, 'pods', `v${v}`);
  const name = (v: number) => `conc-${v}`;
  const createReq = (v: number) => ({
    name: name(v),
    capacity_range: { required_bytes: backend.capacityBytes },
    volume_capabilities: [cap],
    parameters: running.parameters,
  });

  /** One request of a kind on a volume; ids come from the name (a deleted volume keeps its id). */
  async function send(c: CsiClients, kind: Kind, v: number): Promise<string> {
    const volume_id = ids.get(v) ?? 'vol-000000000000000000000000';
    switch (kind) {
      case 'create': {
        const { volume } = await c.controller.CreateVolume(createReq(v));
        ids.set(v, volume!.volume_id);
        return JSON.stringify(volume);
      }
      case 'stage':
        return JSON.stringify(await c.node.NodeStageVolume({ volume_id, staging_target_path: staging(v), volume_capability: cap }));
      case 'publish':
        return JSON.stringify(
          await c.node.NodePublishVolume({ volume_id, staging_target_path: staging(v), target_path: target(v), volume_capability: cap }),
        );
      case 'unpublish':
        return JSON.stringify(await c.node.NodeUnpublishVolume({ volume_id, target_path: target(v) }));
      case 'unstage':
        return JSON.stringify(await c.node.NodeUnstageVolume({ volume_id, staging_target_path: staging(v) }));
      case 'delete':
        return JSON.stringify(await c.controller.DeleteVolume({ volume_id }));
      case 'list':
        await c.controller.ListVolumes({});
        return 'listed';
      case 'stats':
        await c.node.NodeGetVolumeStats({ volume_id, volume_path: staging(v) });
        return 'stats';
    }
  }

  async function timed(c: CsiClients, kind: Kind, v: number): Promise<Outcome> {
    const start = performance.now();
    try {
      const answer = await send(c, kind, v);
      return { kind, volume: v, code: status.OK, answer, start, end: performance.now() };
    } catch (e) {
      if (!isServiceError(e)) throw e;
      return { kind, volume: v, code: e.code, answer: e.details, start, end: performance.now() };
    }
  }

  async function observe(v: number): Promise<VolState> {
    const id = ids.get(v);
    if (!id || !(await running.artifacts(id)).meta) return 'absent';
    if ((await mountsAt(target(v))).length > 0) return 'published';
    if ((await mountsAt(staging(v))).length > 0) return 'staged';
    return 'created';
  }

  beforeAll(async () => {
    running = await backend.start('concurrency', { env: { REXCSI_FAULT_DELAY: backend.concurrencyDelays } });
    clients = Array.from({ length: CLIENTS }, () => csiClients(running.plugin.endpoint));
    for (let v = 0; v < VOLUMES; v++) await mkdir(staging(v), { recursive: true });
    await mkdir(join(running.plugin.dir, 'pods'));
    // Every volume exists first, so the mix exercises stage/publish rather than NOT_FOUND.
    for (let v = 0; v < VOLUMES; v++) ids.set(v, (await clients[0]!.controller.CreateVolume(createReq(v))).volume!.volume_id);
    // Bias towards the way up so that volumes get staged and published while others go down.
    const kind = fc.constantFrom<Kind>('create', 'stage', 'stage', 'publish', 'publish', 'unpublish', 'unstage', 'delete', 'list', 'stats');
    const ops: LoadOp<Kind>[] = fc.sample(
      fc.record({
        kind,
        volume: fc.nat(VOLUMES - 1),
        shape: fc.constantFrom<LoadOp<Kind>['shape']>('single', 'single', 'twin', 'conflict'),
        conflictKind: kind,
      }),
      { numRuns: OPERATIONS, seed: SEED },
    );
    load = await runMixedLoad(clients, ops, timed);
    console.log(
      `concurrency (${backend.name}): ${JSON.stringify({ requests: load.requests, twins: load.twins.length, conflicts: load.conflicts.length, maxInFlight: load.maxInFlight })}`,
    );
  }, backend.startTimeoutMs + 600_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    if (!running) return;
    const dir = running.plugin.dir;
    await running.plugin.stop();
    await forceCleanupUnder(dir);
    await running.stop();
  }, 120_000);

  it(`sends ${OPERATIONS} mixed operations from ${CLIENTS} clients, all of them in flight at once at some point`, () => {
    expect(load.requests).toBeGreaterThanOrEqual(OPERATIONS);
    expect(load.maxInFlight).toBeGreaterThanOrEqual(CLIENTS);
  });

  it('answers no request INTERNAL, UNKNOWN or DEADLINE_EXCEEDED', () => {
    expect(internalFailures(load.outcomes)).toEqual([]);
  });

  it('gives twins in flight together one answer', () => {
    const pairs = overlappingTwins(load.twins, (a) => a.kind !== 'list' && a.kind !== 'stats');
    expect(pairs.length).toBeGreaterThan(0);
    for (const { first, second } of twinAnswers(pairs)) expect(second).toBe(first);
  });

  it('answers a different request on a busy volume ABORTED', () => {
    const sameKey = (a: Outcome, b: Outcome) => (a.kind === 'create' && b.kind === 'create') || (LOCKED.has(a.kind) && LOCKED.has(b.kind));
    const { notAborted, aborted } = conflictOutcomes(load.conflicts, sameKey);
    expect(notAborted).toEqual([]);
    expect(aborted).toBeGreaterThan(0);
  });

  it('leaves every volume as its successful calls made it', async () => {
    for (let v = 0; v < VOLUMES; v++) {
      const changes = load.outcomes.filter((o) => o.volume === v && o.code === status.OK && AFTER[o.kind]);
      expect(allowedEndStates(changes, replay), `volume v${v} after ${history(load.outcomes, v)}`).toContain(await observe(v));
    }
  });

  it('comes down cleanly, leaving no volume, mount or target behind', async () => {
    const c = clients[0]!;
    for (let v = 0; v < VOLUMES; v++) {
      if (!ids.has(v)) continue;
      await c.node.NodeUnpublishVolume({ volume_id: ids.get(v)!, target_path: target(v) }).catch(() => undefined);
      await c.node.NodeUnstageVolume({ volume_id: ids.get(v)!, staging_target_path: staging(v) }).catch(() => undefined);
      await c.controller.DeleteVolume({ volume_id: ids.get(v)! });
      await expect(stat(target(v))).rejects.toThrow(/ENOENT/);
      expect(await mountsAt(staging(v))).toEqual([]);
    }
    expect(await running.allArtifacts()).toEqual([]);
  });
});
