// Concurrency on the ebs backend (moto_server; the attach simulator of test/helpers/ebs-sim.ts is the
// simulated part): 8 clients run 60 mixed controller operations (CreateVolume, ControllerPublish/Unpublish,
// DeleteVolume, ListVolumes, ControllerGetVolume) on 10 volumes, with identical twins in flight together and
// conflicting requests on a busy volume; the backend is slowed at its fault points so requests meet. Invariants
// as for the loop backend (concurrency.test.ts): twins get the same answer, a conflicting request on a volume
// whose operation is still running gets ABORTED, nothing is INTERNAL or UNKNOWN, and the final state is what
// the successful calls made. Plus what EC2 makes easy to get wrong: never two EC2 volumes for a name (moto
// ignores ClientToken, so only the plugin prevents it), never two attachments of a volume; nothing leaks.
import { DescribeVolumesCommand, type Volume } from '@aws-sdk/client-ec2';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients, grpcCodeName, isServiceError, type CsiClients } from '../helpers/client.js';
import { GiB, startEbsWorld, type EbsWorld } from '../helpers/ebs.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { mountCapability } from '../helpers/volumes.js';
import { runMixedLoad, type LoadOp } from './mixed-load.js';

const CLIENTS = 8;
const OPERATIONS = 60;
const VOLUMES = 10;
const SEED = 20261124;
const DELAYS = [
  'ebs.create.after-create-volume:150',
  'ebs.publish.after-mode-tag:100',
  'ebs.attach.after-attach-volume:150',
  'ebs.detach.after-detach-volume:150',
  'ebs.delete.after-delete-volume:100',
].join(',');

const KINDS = ['create', 'publish', 'unpublish', 'delete', 'list', 'get'] as const;
type Kind = (typeof KINDS)[number];
type VolState = 'absent' | 'created' | 'published';
const AFTER: Partial<Record<Kind, VolState>> = { create: 'created', publish: 'published', unpublish: 'created', delete: 'absent' };
const NO_VOLUME = 'vol-00000000000000000';

type Op = LoadOp<Kind>;

interface Outcome {
  kind: Kind;
  volume: number;
  /** the volume id the request named (CreateVolume: the one it answered with) */
  id: string;
  code: number;
  answer: string;
  start: number;
  end: number;
}

let world: EbsWorld;
let plugin: PluginProcess;
let clients: CsiClients[] = [];
let baseline: Set<string>;
const cap = mountCapability('ext4');
const ids = new Map<number, string>();
const name = (v: number) => `conc-ebs-${v}`;

async function allVolumes(): Promise<Volume[]> {
  const res = await world.ec2.send(new DescribeVolumesCommand({}));
  return (res.Volumes ?? []).filter((v) => v.State !== 'deleted' && !baseline.has(v.VolumeId!));
}
const nameOf = (v: Volume) => v.Tags?.find((t) => t.Key === 'CSIVolumeName')?.Value;

beforeAll(async () => {
  world = await startEbsWorld('ebs-conc');
  baseline = new Set((await world.ec2.send(new DescribeVolumesCommand({}))).Volumes?.map((v) => v.VolumeId!) ?? []);
  plugin = await world.startPlugin({ name: 'ebs-conc' });
  await plugin.restart({ REXCSI_FAULT_DELAY: DELAYS });
  clients = Array.from({ length: CLIENTS }, () => csiClients(plugin.endpoint));
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await plugin?.cleanup();
  await world?.stop();
});

async function send(c: CsiClients, kind: Kind, v: number, id: string): Promise<[string, string]> {
  switch (kind) {
    case 'create': {
      const { volume } = await c.controller.CreateVolume({
        name: name(v),
        capacity_range: { required_bytes: GiB },
        volume_capabilities: [cap],
      });
      ids.set(v, volume!.volume_id);
      return [volume!.volume_id, JSON.stringify(volume)];
    }
    case 'publish':
      return [
        id,
        JSON.stringify(
          await c.controller.ControllerPublishVolume({ volume_id: id, node_id: world.instanceId, volume_capability: cap, readonly: false }),
        ),
      ];
    case 'unpublish':
      return [id, JSON.stringify(await c.controller.ControllerUnpublishVolume({ volume_id: id, node_id: world.instanceId }))];
    case 'delete':
      return [id, JSON.stringify(await c.controller.DeleteVolume({ volume_id: id }))];
    case 'list':
      await c.controller.ListVolumes({});
      return [id, 'listed'];
    case 'get':
      await c.controller.ControllerGetVolume({ volume_id: id });
      return [id, 'got'];
  }
}

async function timed(c: CsiClients, kind: Kind, v: number): Promise<Outcome> {
  const id = ids.get(v) ?? NO_VOLUME;
  const start = performance.now();
  try {
    const [used, answer] = await send(c, kind, v, id);
    return { kind, volume: v, id: used, code: status.OK, answer, start, end: performance.now() };
  } catch (e) {
    if (!isServiceError(e)) throw e;
    return { kind, volume: v, id, code: e.code, answer: e.details, start, end: performance.now() };
  }
}

/** A name's state replayed from the successful calls: a call on a volume id the name no longer has changes nothing. */
function replay(calls: Outcome[], first: { state: VolState; id: string }): VolState {
  let { state, id } = first;
  for (const o of calls) {
    if (o.kind === 'create') {
      if (state === 'absent') [state, id] = ['created', o.id];
      continue;
    }
    if (o.id !== id || state === 'absent') continue;
    if (o.kind === 'publish') state = 'published';
    else if (o.kind === 'unpublish') state = 'created';
    else if (o.kind === 'delete') state = 'absent';
  }
  return state;
}

describe('ebs concurrency (moto_server)', () => {
  it(`${CLIENTS} clients, ${OPERATIONS} mixed operations on ${VOLUMES} volumes: joined twins, ABORTED conflicts, one EC2 volume per name`, async () => {
    const initial = new Map<number, { state: VolState; id: string }>();
    for (let v = 0; v < VOLUMES; v++) {
      const id = (
        await clients[0]!.controller.CreateVolume({ name: name(v), capacity_range: { required_bytes: GiB }, volume_capabilities: [cap] })
      ).volume!.volume_id;
      ids.set(v, id);
      initial.set(v, { state: 'created', id });
    }
    const kind = fc.constantFrom<Kind>('create', 'publish', 'publish', 'unpublish', 'delete', 'list', 'get');
    const ops: Op[] = fc.sample(
      fc.record({
        kind,
        volume: fc.nat(VOLUMES - 1),
        shape: fc.constantFrom<Op['shape']>('single', 'twin', 'twin', 'conflict'),
        conflictKind: kind,
      }),
      { numRuns: OPERATIONS, seed: SEED },
    );
    const { outcomes, twins, conflicts, requests, maxInFlight } = await runMixedLoad(clients, ops, timed);

    const bad = outcomes.filter((o) => o.code === status.INTERNAL || o.code === status.UNKNOWN || o.code === status.DEADLINE_EXCEEDED);
    expect(bad.map((o) => `${o.kind} v${o.volume}: ${grpcCodeName(o.code)} ${o.answer}`)).toEqual([]);

    // Twins that overlapped (and named the same volume) got the same answer: the second joined the first.
    const overlapping = twins.filter(
      ([a, b]) => a.start < b.end && b.start < a.end && a.kind !== 'list' && a.kind !== 'get' && (a.kind === 'create' || a.id === b.id),
    );
    for (const [a, b] of overlapping)
      expect({ code: grpcCodeName(b.code), answer: b.answer }).toEqual({ code: grpcCodeName(a.code), answer: a.answer });
    expect(overlapping.length).toBeGreaterThan(0);

    // A different request on the same volume, answered well before the first finished, met it running: ABORTED.
    const locked = new Set<Kind>(['publish', 'unpublish', 'delete']);
    let abortedSeen = 0;
    for (const [first, second] of conflicts) {
      const sameKey =
        (first.kind === 'create' && second.kind === 'create') ||
        (locked.has(first.kind) && locked.has(second.kind) && first.id === second.id);
      if (!sameKey || first.kind === second.kind || first.code === status.NOT_FOUND) continue;
      if (second.end + 20 < first.end) {
        expect(grpcCodeName(second.code), `${first.kind} then ${second.kind} on v${first.volume}: ${second.answer}`).toBe('ABORTED');
      }
      if (second.code === status.ABORTED) abortedSeen++;
    }
    expect(abortedSeen).toBeGreaterThan(0);

    // EC2 holds at most one volume per name, attached at most once; its state is what the successful calls made.
    await world.sim.sync();
    const volumes = await allVolumes();
    for (let v = 0; v < VOLUMES; v++) {
      const mine = volumes.filter((x) => nameOf(x) === name(v));
      expect(
        mine.map((x) => x.VolumeId),
        `EC2 volumes named ${name(v)}: never two`,
      ).toEqual(mine.slice(0, 1).map((x) => x.VolumeId));
      const attachments = (mine[0]?.Attachments ?? []).filter((a) => a.State !== 'detached');
      expect(attachments.length).toBeLessThanOrEqual(1);
      const observed: VolState =
        mine.length === 0
          ? 'absent'
          : attachments.some((a) => a.InstanceId === world.instanceId && a.State === 'attached')
            ? 'published'
            : 'created';
      expect(world.sim.deviceOf(mine[0]?.VolumeId ?? NO_VOLUME) !== undefined).toBe(observed === 'published');

      const changes = outcomes.filter((o) => o.volume === v && o.code === status.OK && AFTER[o.kind]).sort((a, b) => a.end - b.end);
      const allowed = new Set<VolState>([replay(changes, initial.get(v)!)]);
      const [prev, last] = changes.slice(-2);
      if (prev && last && prev.end > last.start) allowed.add(replay([...changes.slice(0, -2), last, prev], initial.get(v)!));
      const history = outcomes.filter((o) => o.volume === v).map((o) => `${o.kind}(${o.id}):${grpcCodeName(o.code)}`);
      expect([...allowed], `volume v${v} after ${history.join(' ')}`).toContain(observed);
    }
    expect(volumes.filter((x) => !(nameOf(x) ?? '').startsWith('conc-ebs-')).map((x) => x.VolumeId)).toEqual([]);

    // Everything comes down: no EC2 volume, attachment or loop device left.
    const c = clients[0]!;
    for (const x of volumes) {
      await c.controller.ControllerUnpublishVolume({ volume_id: x.VolumeId!, node_id: world.instanceId });
      await c.controller.DeleteVolume({ volume_id: x.VolumeId! });
    }
    await world.sim.sync();
    expect(await allVolumes()).toEqual([]);
    for (const x of volumes) expect(world.sim.deviceOf(x.VolumeId!)).toBeUndefined();

    const summary = {
      requests,
      twins: twins.length,
      overlappingTwins: overlapping.length,
      conflicts: conflicts.length,
      aborted: abortedSeen,
      maxInFlight,
    };
    console.log(`ebs concurrency: ${JSON.stringify(summary)}`);
    expect(requests).toBeGreaterThanOrEqual(OPERATIONS);
    expect(maxInFlight).toBeGreaterThanOrEqual(CLIENTS);
  });
});
