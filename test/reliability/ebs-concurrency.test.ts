// Concurrency on the ebs backend's controller path (moto_server; the attach simulator of test/helpers/ebs-sim.ts
// is the simulated part), on the driver and checks of mixed-load.ts (concurrency.test.ts runs the node path on
// every backend, ebs included): 8 clients run 60 mixed controller operations (CreateVolume, ControllerPublish/Unpublish,
// DeleteVolume, ListVolumes, ControllerGetVolume) on 10 volumes, with identical twins in flight together and
// conflicting requests on a busy volume; the backend is slowed at its fault points so requests meet. Invariants
// as for the loop backend (concurrency.test.ts): twins get the same answer, a conflicting request on a volume
// whose operation is still running gets ABORTED, nothing is INTERNAL or UNKNOWN, and the final state is what
// the successful calls made. Plus what EC2 makes easy to get wrong: never two EC2 volumes for a name (moto
// ignores ClientToken, so only the plugin prevents it), never two attachments of a volume; nothing leaks.
// The load runs once (beforeAll); each property is its own test.
import { DescribeVolumesCommand, type Volume } from '@aws-sdk/client-ec2';
import { status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients, isServiceError, type CsiClients } from '../helpers/client.js';
import { GiB, startEbsWorld, type EbsWorld } from '../helpers/ebs.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { mountCapability } from '../helpers/volumes.js';
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

type Kind = 'create' | 'publish' | 'unpublish' | 'delete' | 'list' | 'get';
type VolState = 'absent' | 'created' | 'published';
const AFTER: Partial<Record<Kind, VolState>> = { create: 'created', publish: 'published', unpublish: 'created', delete: 'absent' };
const NO_VOLUME = 'vol-00000000000000000';

type Op = LoadOp<Kind>;

interface Outcome extends TimedOutcome<Kind> {
  /** the volume id the request named (CreateVolume: the one it answered with) */
  id: string;
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
  // calls come in the order they finished (allowedEndStates)
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

const initial = new Map<number, { state: VolState; id: string }>();
let load: LoadResult<Outcome>;
/** EC2's volumes after the load, once the simulator caught up */
let volumes: Volume[];

describe('ebs concurrency, controller path (moto_server, attach SIMULATED)', () => {
  beforeAll(async () => {
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
    load = await runMixedLoad(clients, ops, timed);
    await world.sim.sync();
    volumes = await allVolumes();
    console.log(
      `ebs concurrency: ${JSON.stringify({ requests: load.requests, twins: load.twins.length, conflicts: load.conflicts.length, maxInFlight: load.maxInFlight })}`,
    );
  }, 600_000);

  it(`sends ${OPERATIONS} mixed controller operations from ${CLIENTS} clients, all of them in flight at once at some point`, () => {
    expect(load.requests).toBeGreaterThanOrEqual(OPERATIONS);
    expect(load.maxInFlight).toBeGreaterThanOrEqual(CLIENTS);
  });

  it('answers no request INTERNAL, UNKNOWN or DEADLINE_EXCEEDED', () => {
    expect(internalFailures(load.outcomes)).toEqual([]);
  });

  it('gives twins in flight together (naming the same volume) one answer: the second joined the first', () => {
    const pairs = overlappingTwins(load.twins, (a, b) => a.kind !== 'list' && a.kind !== 'get' && (a.kind === 'create' || a.id === b.id));
    expect(pairs.length).toBeGreaterThan(0);
    for (const { first, second } of twinAnswers(pairs)) expect(second).toBe(first);
  });

  it('answers a different request on a busy volume ABORTED', () => {
    const locked = new Set<Kind>(['publish', 'unpublish', 'delete']);
    const sameKey = (a: Outcome, b: Outcome) =>
      (a.kind === 'create' && b.kind === 'create') || (locked.has(a.kind) && locked.has(b.kind) && a.id === b.id);
    const { notAborted, aborted } = conflictOutcomes(load.conflicts, sameKey);
    expect(notAborted).toEqual([]);
    expect(aborted).toBeGreaterThan(0);
  });

  it('never holds two EC2 volumes for a name, nor attaches one twice, nor makes a volume of another name', () => {
    for (let v = 0; v < VOLUMES; v++) {
      const mine = volumes.filter((x) => nameOf(x) === name(v));
      expect(
        mine.map((x) => x.VolumeId),
        `EC2 volumes named ${name(v)}: never two`,
      ).toEqual(mine.slice(0, 1).map((x) => x.VolumeId));
      expect((mine[0]?.Attachments ?? []).filter((a) => a.State !== 'detached').length).toBeLessThanOrEqual(1);
    }
    expect(volumes.filter((x) => !(nameOf(x) ?? '').startsWith('conc-ebs-')).map((x) => x.VolumeId)).toEqual([]);
  });

  it('leaves every volume as its successful calls made it, in EC2 and on the node', () => {
    for (let v = 0; v < VOLUMES; v++) {
      const mine = volumes.find((x) => nameOf(x) === name(v));
      const attachments = (mine?.Attachments ?? []).filter((a) => a.State !== 'detached');
      const observed: VolState = !mine
        ? 'absent'
        : attachments.some((a) => a.InstanceId === world.instanceId && a.State === 'attached')
          ? 'published'
          : 'created';
      expect(world.sim.deviceOf(mine?.VolumeId ?? NO_VOLUME) !== undefined).toBe(observed === 'published');
      const changes = load.outcomes.filter((o) => o.volume === v && o.code === status.OK && AFTER[o.kind]);
      const allowed = allowedEndStates(changes, (calls) => replay(calls, initial.get(v)!));
      expect(allowed, `volume v${v} after ${history(load.outcomes, v, (o) => `(${(o as Outcome).id})`)}`).toContain(observed);
    }
  });

  it('comes down cleanly: no EC2 volume, attachment or loop device left', async () => {
    const c = clients[0]!;
    for (const x of volumes) {
      await c.controller.ControllerUnpublishVolume({ volume_id: x.VolumeId!, node_id: world.instanceId });
      await c.controller.DeleteVolume({ volume_id: x.VolumeId! });
    }
    await world.sim.sync();
    expect(await allVolumes()).toEqual([]);
    for (const x of volumes) expect(world.sim.deviceOf(x.VolumeId!)).toBeUndefined();
  });
});
