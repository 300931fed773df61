// Concurrency: 16 clients (each its own connection) run 200 mixed operations on 50 volumes, with identical
// twins of a request in flight together and conflicting requests on a volume that is busy. Invariants:
// twins get the same answer; a request on a volume whose operation is still running gets ABORTED; no
// answer is INTERNAL or UNKNOWN; the final state is what the successful calls made; nothing leaks.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt } from '../../src/os/index.js';
import { csiClients, grpcCodeName, isServiceError, type CsiClients } from '../helpers/client.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { forceCleanupUnder, MiB, mountCapability } from '../helpers/volumes.js';
import { reliabilityBackends } from './backends.js';
import { runMixedLoad, type LoadOp } from './mixed-load.js';

const CLIENTS = 16;
const OPERATIONS = 200;
const VOLUMES = 50;
const SEED = 20240609;
// Slow enough that twins and conflicts overlap with the operation they meet.
const DELAYS = 'loop.create.after-file:150,node.stage.after-format:150,node.publish.after-target:100,node.unstage.after-unmount:100';

const KINDS = ['create', 'stage', 'publish', 'unpublish', 'unstage', 'delete', 'list', 'stats'] as const;
type Kind = (typeof KINDS)[number];
type VolState = 'absent' | 'created' | 'staged' | 'published';
const AFTER: Partial<Record<Kind, VolState>> = {
  create: 'created',
  stage: 'staged',
  publish: 'published',
  unpublish: 'staged',
  unstage: 'created',
  delete: 'absent',
};

type Op = LoadOp<Kind>;

interface Outcome {
  kind: Kind;
  volume: number;
  code: number;
  answer: string;
  start: number;
  end: number;
}

describe.each(reliabilityBackends())('concurrency ($name backend)', (backend) => {
  let plugin: PluginProcess;
  let clients: CsiClients[];
  const cap = mountCapability('ext4');
  const ids = new Map<number, string>();
  const staging = (v: number) => join(plugin.dir, 'staging', `v${v}`);
  const target = (v: number) => join(plugin.dir, 'pods', `v${v}`);
  const name = (v: number) => `conc-${v}`;

  beforeAll(async () => {
    plugin = await backend.start('concurrency', { env: { REXCSI_FAULT_DELAY: DELAYS } });
    clients = Array.from({ length: CLIENTS }, () => csiClients(plugin.endpoint));
    for (let v = 0; v < VOLUMES; v++) await mkdir(staging(v), { recursive: true });
    await mkdir(join(plugin.dir, 'pods'));
  });

  afterAll(async () => {
    for (const c of clients ?? []) c.close();
    if (!plugin) return;
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  });

  /** One request of a kind on a volume; ids come from the name (a deleted volume keeps its id). */
  async function send(c: CsiClients, kind: Kind, v: number): Promise<string> {
    const volume_id = ids.get(v) ?? 'vol-000000000000000000000000';
    switch (kind) {
      case 'create': {
        const { volume } = await c.controller.CreateVolume({
          name: name(v),
          capacity_range: { required_bytes: 16 * MiB },
          volume_capabilities: [cap],
        });
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
    if (!id || !(await backend.artifacts(plugin, id)).meta) return 'absent';
    if ((await mountsAt(target(v))).length > 0) return 'published';
    if ((await mountsAt(staging(v))).length > 0) return 'staged';
    return 'created';
  }

  it(`${CLIENTS} clients, ${OPERATIONS} mixed operations on ${VOLUMES} volumes: joined twins, ABORTED conflicts, consistent end state`, async () => {
    // Every volume exists first, so the mix exercises stage/publish rather than NOT_FOUND.
    for (let v = 0; v < VOLUMES; v++)
      ids.set(
        v,
        (
          await clients[0]!.controller.CreateVolume({
            name: name(v),
            capacity_range: { required_bytes: 16 * MiB },
            volume_capabilities: [cap],
          })
        ).volume!.volume_id,
      );
    // Bias towards the way up so that volumes get staged and published while others go down.
    const kind = fc.constantFrom<Kind>('create', 'stage', 'stage', 'publish', 'publish', 'unpublish', 'unstage', 'delete', 'list', 'stats');
    const ops: Op[] = fc.sample(
      fc.record({
        kind,
        volume: fc.nat(VOLUMES - 1),
        shape: fc.constantFrom<Op['shape']>('single', 'single', 'twin', 'conflict'),
        conflictKind: kind,
      }),
      { numRuns: OPERATIONS, seed: SEED },
    );
    const { outcomes, twins, conflicts, requests, maxInFlight } = await runMixedLoad(clients, ops, timed);

    // No answer is an internal failure.
    const bad = outcomes.filter((o) => o.code === status.INTERNAL || o.code === status.UNKNOWN || o.code === status.DEADLINE_EXCEEDED);
    expect(bad.map((o) => `${o.kind} v${o.volume}: ${grpcCodeName(o.code)} ${o.answer}`)).toEqual([]);

    // Twins that overlapped got the same answer.
    const overlapping = twins.filter(([a, b]) => a.start < b.end && b.start < a.end && a.kind !== 'list' && a.kind !== 'stats');
    for (const [a, b] of overlapping)
      expect({ code: grpcCodeName(b.code), answer: b.answer }).toEqual({ code: grpcCodeName(a.code), answer: a.answer });

    // A conflicting request on the same volume (same lock key) answered well before the first one finished
    // met it running: ABORTED, unless it was the very same request (then it joined).
    const locked = new Set<Kind>(['stage', 'publish', 'unpublish', 'unstage', 'delete']);
    let abortedSeen = 0;
    for (const [first, second] of conflicts) {
      const sameKey = (first.kind === 'create' && second.kind === 'create') || (locked.has(first.kind) && locked.has(second.kind));
      if (!sameKey || first.kind === second.kind || first.code === status.NOT_FOUND) continue;
      if (second.end + 20 < first.end) {
        expect(grpcCodeName(second.code), `${first.kind} then ${second.kind} on v${first.volume}: ${second.answer}`).toBe('ABORTED');
      }
      if (second.code === status.ABORTED) abortedSeen++;
    }
    expect(abortedSeen).toBeGreaterThan(0);

    // The end state of every volume is what its successful state-changing calls made, replayed in the order
    // they finished (also with the last two swapped when they overlapped: a CreateVolume and a DeleteVolume
    // hold different keys). A successful call that had nothing to do (CreateVolume of an existing volume,
    // NodeUnpublishVolume of an unpublished one, ...) changes nothing.
    const RANK: Record<VolState, number> = { absent: 0, created: 1, staged: 2, published: 3 };
    const step = (state: VolState, kind: Kind): VolState => {
      const to = AFTER[kind]!;
      if (kind === 'create' || kind === 'stage') return RANK[state] < RANK[to] ? to : state; // up to, never down
      if (kind === 'unpublish' || kind === 'unstage') return RANK[state] > RANK[to] ? to : state; // down to, never up
      return to;
    };
    const replay = (calls: Outcome[]): VolState => calls.reduce<VolState>((state, o) => step(state, o.kind), 'created');
    for (let v = 0; v < VOLUMES; v++) {
      const changes = outcomes.filter((o) => o.volume === v && o.code === status.OK && AFTER[o.kind]).sort((a, b) => a.end - b.end);
      const allowed = new Set<VolState>([replay(changes)]);
      const [prev, last] = changes.slice(-2);
      if (prev && last && prev.end > last.start) allowed.add(replay([...changes.slice(0, -2), last, prev]));
      const history = outcomes.filter((o) => o.volume === v).map((o) => `${o.kind}:${grpcCodeName(o.code)}`);
      expect([...allowed], `volume v${v} after ${history.join(' ')}`).toContain(await observe(v));
    }

    // And everything comes down cleanly.
    const c = clients[0]!;
    for (let v = 0; v < VOLUMES; v++) {
      if (!ids.has(v)) continue;
      await c.node.NodeUnpublishVolume({ volume_id: ids.get(v)!, target_path: target(v) }).catch(() => undefined);
      await c.node.NodeUnstageVolume({ volume_id: ids.get(v)!, staging_target_path: staging(v) }).catch(() => undefined);
      await c.controller.DeleteVolume({ volume_id: ids.get(v)! });
      await expect(stat(target(v))).rejects.toThrow(/ENOENT/);
    }
    expect(await backend.allArtifacts(plugin)).toEqual([]);
    const summary = {
      requests,
      twins: twins.length,
      overlappingTwins: overlapping.length,
      conflicts: conflicts.length,
      aborted: abortedSeen,
      maxInFlight,
    };
    console.log(`concurrency: ${JSON.stringify(summary)}`);
    expect(requests).toBeGreaterThanOrEqual(OPERATIONS);
    expect(maxInFlight).toBeGreaterThanOrEqual(CLIENTS);
  });
});
