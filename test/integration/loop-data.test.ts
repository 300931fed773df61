// Data services of the loop backend on real loop devices, filesystems and mounts, through the plugin's
// unix socket: snapshots (consistent under writes), restores, clones, group snapshots, online expansion and
// volume health. Every check reads the data back (checksums, sequence numbers, df), not just the replies.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blockDeviceSize, hasCapability, mounter, run } from '../../src/os/index.js';
import { status as grpcStatus } from '@grpc/grpc-js';
import { csiClients, expectGrpcError, isServiceError, type CsiClients } from '../helpers/client.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup } from '../helpers/tmp.js';
import type { VolumeCapability } from '../../src/csi/gen/csi/v1/VolumeCapability.js';

const MiB = 1024 * 1024;
const canGrowExt4Online = await hasCapability('CAP_SYS_RESOURCE');

let plugin: PluginProcess;
let csi: CsiClients;
const cleanup = new Cleanup();
let seq = 0;

beforeAll(async () => {
  plugin = await startPlugin({ name: 'loop-data' });
  csi = csiClients(plugin.endpoint);
});

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  await cleanup.run();
  csi?.close();
  await plugin?.cleanup();
});

const mountCap = (fs_type = ''): VolumeCapability => ({ mount: { fs_type, mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } });
const blockCap = (): VolumeCapability => ({ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } });

interface Made {
  id: string;
  cap: VolumeCapability;
}

/** CreateVolume, with DeleteVolume deferred (after whatever is deferred later: unpublish, unstage). */
async function createVolume(opts: {
  bytes: number;
  cap: VolumeCapability;
  source?: { snapshot?: string; volume?: string };
  limit?: number;
}): Promise<Made> {
  const name = `data-${process.pid}-${++seq}`;
  const { volume } = await csi.controller.CreateVolume({
    name,
    capacity_range: { required_bytes: opts.bytes, ...(opts.limit ? { limit_bytes: opts.limit } : {}) },
    volume_capabilities: [opts.cap],
    ...(opts.source?.snapshot ? { volume_content_source: { snapshot: { snapshot_id: opts.source.snapshot } } } : {}),
    ...(opts.source?.volume ? { volume_content_source: { volume: { volume_id: opts.source.volume } } } : {}),
  });
  const id = volume!.volume_id;
  cleanup.defer(() => csi.controller.DeleteVolume({ volume_id: id }));
  return { id, cap: opts.cap };
}

/** NodeStage + NodePublish; returns the target path. Unpublish and unstage are deferred. */
async function stageAndPublish(v: Made): Promise<{ target: string; staging: string }> {
  const base = join(plugin.dir, `v${++seq}`);
  const staging = join(base, 'staging');
  await mkdir(staging, { recursive: true });
  const target = join(base, 'target');
  await csi.node.NodeStageVolume({ volume_id: v.id, staging_target_path: staging, volume_capability: v.cap });
  cleanup.defer(() => unlessGone(csi.node.NodeUnstageVolume({ volume_id: v.id, staging_target_path: staging })));
  await csi.node.NodePublishVolume({
    volume_id: v.id,
    staging_target_path: staging,
    target_path: target,
    volume_capability: v.cap,
    readonly: false,
  });
  cleanup.defer(() => unlessGone(csi.node.NodeUnpublishVolume({ volume_id: v.id, target_path: target })));
  return { target, staging };
}

/** A deferred node step for a volume the test itself may have unstaged and deleted already. */
async function unlessGone(call: Promise<unknown>): Promise<void> {
  await call.catch((e: unknown) => {
    if (!isServiceError(e) || e.code !== grpcStatus.NOT_FOUND) throw e;
  });
}

async function unpublishAndUnstage(v: Made, at: { target: string; staging: string }): Promise<void> {
  await csi.node.NodeUnpublishVolume({ volume_id: v.id, target_path: at.target });
  await csi.node.NodeUnstageVolume({ volume_id: v.id, staging_target_path: at.staging });
}

async function createSnapshot(sourceVolumeId: string): Promise<string> {
  const { snapshot } = await csi.controller.CreateSnapshot({ name: `snap-${process.pid}-${++seq}`, source_volume_id: sourceVolumeId });
  const id = snapshot!.snapshot_id;
  cleanup.defer(() => csi.controller.DeleteSnapshot({ snapshot_id: id }));
  return id;
}

/** Files with random content; returns name -> sha256. */
async function writeFiles(dir: string, count: number, bytes: number): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const data = randomBytes(bytes);
    await writeFile(join(dir, `file-${i}.bin`), data);
    sums.set(`file-${i}.bin`, sha256(data));
  }
  return sums;
}

async function checksums(dir: string, names: Iterable<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const n of names) out.set(n, sha256(await readFile(join(dir, n))));
  return out;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function fsBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.blocks * s.bsize;
}

/** A shell appending increasing numbers to each file in turn, as fast as it can, until killed. */
function startWriter(files: string[]): ChildProcess {
  const body = files.map((f) => `echo $i >> '${f}'`).join('; ');
  const child = spawn('sh', ['-c', `i=0; while :; do ${body}; i=$((i+1)); done`], { stdio: 'ignore' });
  cleanup.defer(() => stopWriter(child));
  return child;
}

async function stopWriter(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** The numbers in a writer's file: must be 0, 1, 2, ... with every line whole. */
async function sequenceIn(file: string): Promise<number[]> {
  const lines = (await readFile(file, 'utf8')).split('\n');
  expect(lines.pop()).toBe(''); // the last line is complete
  return lines.map(Number);
}

function expectContiguous(numbers: number[]): void {
  expect(numbers.length).toBeGreaterThan(0);
  numbers.forEach((n, i) => expect(n).toBe(i));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('snapshots and restores', () => {
  it('a snapshot taken while mounted and under writes restores the data as it was, and its source can be deleted', async () => {
    const source = await createVolume({ bytes: 64 * MiB, cap: mountCap('ext4') });
    const at = await stageAndPublish(source);
    const before = await writeFiles(at.target, 12, 256 * 1024);
    const writer = startWriter([join(at.target, 'live.log')]);
    await sleep(500);

    const started = Date.now();
    const { snapshot } = await csi.controller.CreateSnapshot({ name: `snap-live-${process.pid}`, source_volume_id: source.id });
    cleanup.defer(() => csi.controller.DeleteSnapshot({ snapshot_id: snapshot!.snapshot_id }));
    expect(snapshot).toMatchObject({ source_volume_id: source.id, size_bytes: 64 * MiB, ready_to_use: true, group_snapshot_id: '' });
    const taken = snapshot!.creation_time!.seconds * 1000;
    expect(taken).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000);
    expect(taken).toBeLessThanOrEqual(Date.now());
    await sleep(200);
    await stopWriter(writer);
    const writtenAfter = await sequenceIn(join(at.target, 'live.log'));

    // Change the source after the snapshot, then delete it altogether: the snapshot is an independent copy.
    await writeFile(join(at.target, 'file-0.bin'), randomBytes(1000));
    await unlink(join(at.target, 'file-1.bin'));
    await writeFile(join(at.target, 'added-later.txt'), 'not in the snapshot');
    await unpublishAndUnstage(source, at);
    await csi.controller.DeleteVolume({ volume_id: source.id });

    const restored = await createVolume({ bytes: 64 * MiB, cap: mountCap('ext4'), source: { snapshot: snapshot!.snapshot_id } });
    const rat = await stageAndPublish(restored);
    expect(await checksums(rat.target, before.keys())).toEqual(before);
    expect((await readdir(rat.target)).includes('added-later.txt')).toBe(false);
    // fsfreeze made the copy at one instant: the log is a whole-line prefix of what was written.
    const inSnapshot = await sequenceIn(join(rat.target, 'live.log'));
    expectContiguous(inSnapshot);
    expect(inSnapshot.length).toBeLessThan(writtenAfter.length);
    const { snapshot: got } = await csi.controller.GetSnapshot({ snapshot_id: snapshot!.snapshot_id });
    expect(got).toEqual(snapshot);
  });

  it('a volume restored larger than its snapshot has a filesystem grown to the new size at first stage', async () => {
    for (const fsType of ['ext4', 'xfs']) {
      const bytes = fsType === 'xfs' ? 300 * MiB : 64 * MiB;
      const source = await createVolume({ bytes, cap: mountCap(fsType) });
      const at = await stageAndPublish(source);
      const before = await writeFiles(at.target, 3, 100 * 1024);
      const sourceFs = await fsBytes(at.target);
      const snap = await createSnapshot(source.id);
      const big = await createVolume({ bytes: bytes * 2, cap: mountCap(fsType), source: { snapshot: snap } });
      const bat = await stageAndPublish(big);
      expect(await checksums(bat.target, before.keys()), fsType).toEqual(before);
      expect(await fsBytes(bat.target), fsType).toBeGreaterThan(sourceFs + bytes * 0.9);
    }
  });

  it('a clone of a mounted volume holds its data; later changes to either stay apart', async () => {
    const source = await createVolume({ bytes: 64 * MiB, cap: mountCap() });
    const at = await stageAndPublish(source);
    const before = await writeFiles(at.target, 8, 128 * 1024);
    const clone = await createVolume({ bytes: 64 * MiB, cap: mountCap(), source: { volume: source.id } });
    const { volume } = await csi.controller.ControllerGetVolume({ volume_id: clone.id });
    expect(volume?.content_source?.volume?.volume_id).toBe(source.id);
    const cat = await stageAndPublish(clone);
    expect(await checksums(cat.target, before.keys())).toEqual(before);
    await writeFile(join(cat.target, 'only-in-clone'), 'x');
    expect((await readdir(at.target)).includes('only-in-clone')).toBe(false);
  });

  it('a block volume snapshot restores byte for byte', async () => {
    const source = await createVolume({ bytes: 16 * MiB, cap: blockCap() });
    const at = await stageAndPublish(source);
    const data = randomBytes(4 * MiB);
    await writeFile(at.target, data); // the target is the device node: this writes the volume
    const snap = await createSnapshot(source.id);
    await writeFile(at.target, randomBytes(4 * MiB));
    const restored = await createVolume({ bytes: 16 * MiB, cap: blockCap(), source: { snapshot: snap } });
    const rat = await stageAndPublish(restored);
    const head = (await readFile(rat.target)).subarray(0, data.length);
    expect(sha256(head)).toBe(sha256(data));
  });

  it('answers bad snapshot requests with precise codes and pages through snapshots', async () => {
    const a = await createVolume({ bytes: 8 * MiB, cap: blockCap() });
    const b = await createVolume({ bytes: 8 * MiB, cap: blockCap() });
    const name = `snap-dup-${process.pid}`;
    const { snapshot } = await csi.controller.CreateSnapshot({ name, source_volume_id: a.id });
    cleanup.defer(() => csi.controller.DeleteSnapshot({ snapshot_id: snapshot!.snapshot_id }));
    const again = await csi.controller.CreateSnapshot({ name, source_volume_id: a.id });
    expect(again.snapshot).toEqual(snapshot);
    await expectGrpcError(csi.controller.CreateSnapshot({ name, source_volume_id: b.id }), 'ALREADY_EXISTS');
    await expectGrpcError(
      csi.controller.CreateSnapshot({ name: `${name}-x`, source_volume_id: 'vol-000000000000000000000000' }),
      'NOT_FOUND',
    );
    await expectGrpcError(
      csi.controller.CreateSnapshot({ name: `${name}-y`, source_volume_id: a.id, parameters: { speed: 'fast' } }),
      'INVALID_ARGUMENT',
    );
    const second = await createSnapshot(b.id);

    const bySource = await csi.controller.ListSnapshots({ source_volume_id: b.id });
    expect(bySource.entries.map((e) => e.snapshot!.snapshot_id)).toEqual([second]);
    const byId = await csi.controller.ListSnapshots({ snapshot_id: snapshot!.snapshot_id });
    expect(byId.entries.map((e) => e.snapshot!.source_volume_id)).toEqual([a.id]);
    const first = await csi.controller.ListSnapshots({ max_entries: 1 });
    expect(first.entries).toHaveLength(1);
    const rest = await csi.controller.ListSnapshots({ starting_token: first.next_token });
    expect([...first.entries, ...rest.entries].map((e) => e.snapshot!.snapshot_id).sort()).toEqual([snapshot!.snapshot_id, second].sort());
    await expectGrpcError(csi.controller.ListSnapshots({ starting_token: 'not-a-token' }), 'ABORTED');

    await expectGrpcError(csi.controller.GetSnapshot({ snapshot_id: 'snap-000000000000000000000000' }), 'NOT_FOUND');
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: `${name}-v`,
        volume_capabilities: [blockCap()],
        volume_content_source: { snapshot: { snapshot_id: 'snap-000000000000000000000000' } },
      }),
      'NOT_FOUND',
    );
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: `${name}-w`,
        volume_capabilities: [blockCap()],
        capacity_range: { limit_bytes: 4 * MiB },
        volume_content_source: { snapshot: { snapshot_id: second } },
      }),
      'OUT_OF_RANGE',
    );
    await csi.controller.DeleteSnapshot({ snapshot_id: second });
    await csi.controller.DeleteSnapshot({ snapshot_id: second }); // gone already: still OK
    expect((await csi.controller.ListSnapshots({ source_volume_id: b.id })).entries).toEqual([]);
  });

  it('refuses to restore a snapshot as another filesystem than the one it holds', async () => {
    const source = await createVolume({ bytes: 64 * MiB, cap: mountCap('ext4') });
    const snap = await createSnapshot(source.id);
    const e = await expectGrpcError(
      csi.controller.CreateVolume({
        name: `as-xfs-${process.pid}`,
        volume_capabilities: [mountCap('xfs')],
        capacity_range: { required_bytes: 300 * MiB },
        volume_content_source: { snapshot: { snapshot_id: snap } },
      }),
      'INVALID_ARGUMENT',
    );
    expect(e.details).toMatch(/holds a ext4 filesystem/);
  });
});

/** Can the filesystem at path be frozen now? "busy" means it is frozen already. Leaves it thawed. */
async function isFrozen(path: string): Promise<boolean> {
  try {
    await run('fsfreeze', ['--freeze', path]);
  } catch (e) {
    if (/busy/i.test((e as Error).message)) return true;
    throw e;
  }
  await run('fsfreeze', ['--unfreeze', path]);
  return false;
}

describe('crash safety', () => {
  it.each([
    { point: 'loop.snapshot.while-frozen', frozenAfterCrash: true, leftoverImages: 0 },
    { point: 'loop.snapshot.after-copy', frozenAfterCrash: false, leftoverImages: 1 },
  ])(
    'a CreateSnapshot killed at $point leaves no snapshot, a thawed volume once the plugin is back, and a good retry',
    async ({ point, frozenAfterCrash, leftoverImages }) => {
      const crashing = await startPlugin({ name: 'loop-data-crash', env: { REXCSI_FAULT_POINT: point } });
      const c1 = csiClients(crashing.endpoint);
      cleanup.defer(() => crashing.cleanup());
      cleanup.defer(() => c1.close());
      const { volume } = await c1.controller.CreateVolume({
        name: 'crash-src',
        capacity_range: { required_bytes: 32 * MiB },
        volume_capabilities: [mountCap('ext4')],
      });
      const id = volume!.volume_id;
      const staging = join(crashing.dir, 'staging');
      await mkdir(staging);
      await c1.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: mountCap('ext4') });
      cleanup.defer(() => mounter.unmount(staging)); // the survivor below unstages; this is the fallback
      cleanup.defer(() => run('fsfreeze', ['--unfreeze', staging]).catch(() => undefined)); // never leave it frozen
      await writeFile(join(staging, 'data'), 'before the crash');
      await expect(c1.controller.CreateSnapshot({ name: 'crash-snap', source_volume_id: id })).rejects.toThrow();
      await crashing.waitForExit();

      // A frozen filesystem outlives the process that froze it.
      expect(await isFrozen(staging)).toBe(frozenAfterCrash);

      // The same pool served by a plugin without the fault point: it thaws at start, and an image without
      // metadata is no snapshot.
      const survivor = await startPlugin({ name: 'loop-data-survivor', args: ['--pool-dir', crashing.poolDir] });
      expect(await isFrozen(staging)).toBe(false);
      await writeFile(join(staging, 'data'), 'after the crash');
      const c2 = csiClients(survivor.endpoint);
      cleanup.defer(() => survivor.cleanup());
      cleanup.defer(() => c2.close());
      cleanup.defer(() => c2.controller.DeleteVolume({ volume_id: id }));
      cleanup.defer(() => c2.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }));
      expect((await c2.controller.ListSnapshots({})).entries).toEqual([]);
      expect((await readdir(join(crashing.poolDir, 'snapshots'))).filter((n) => n.endsWith('.img'))).toHaveLength(leftoverImages);
      const { snapshot } = await c2.controller.CreateSnapshot({ name: 'crash-snap', source_volume_id: id });
      cleanup.defer(() => c2.controller.DeleteSnapshot({ snapshot_id: snapshot!.snapshot_id }));
      expect((await c2.controller.ListSnapshots({})).entries.map((e) => e.snapshot!.snapshot_id)).toEqual([snapshot!.snapshot_id]);

      const { volume: restored } = await c2.controller.CreateVolume({
        name: 'crash-restored',
        volume_capabilities: [mountCap('ext4')],
        volume_content_source: { snapshot: { snapshot_id: snapshot!.snapshot_id } },
      });
      cleanup.defer(() => c2.controller.DeleteVolume({ volume_id: restored!.volume_id }));
      const rstaging = join(survivor.dir, 'restored');
      await mkdir(rstaging);
      await c2.node.NodeStageVolume({ volume_id: restored!.volume_id, staging_target_path: rstaging, volume_capability: mountCap('ext4') });
      cleanup.defer(() => c2.node.NodeUnstageVolume({ volume_id: restored!.volume_id, staging_target_path: rstaging }));
      expect(await readFile(join(rstaging, 'data'), 'utf8')).toBe('after the crash');
    },
  );
});

describe('group snapshots', () => {
  it('two volumes written in a known order are captured at one moment, and restore after their sources are deleted', async () => {
    const a = await createVolume({ bytes: 64 * MiB, cap: mountCap('ext4') });
    const b = await createVolume({ bytes: 300 * MiB, cap: mountCap('xfs') });
    const aat = await stageAndPublish(a);
    const bat = await stageAndPublish(b);
    // Each round appends i to a's log, then to b's: at any instant b is at most one number behind a.
    const writer = startWriter([join(aat.target, 'log'), join(bat.target, 'log')]);
    await sleep(500);
    const name = `group-${process.pid}`;
    const { group_snapshot: group } = await csi.groupController.CreateVolumeGroupSnapshot({ name, source_volume_ids: [a.id, b.id] });
    const groupId = group!.group_snapshot_id;
    cleanup.defer(() => csi.groupController.DeleteVolumeGroupSnapshot({ group_snapshot_id: groupId, snapshot_ids: [] }));
    await sleep(200);
    await stopWriter(writer);

    expect(group!.ready_to_use).toBe(true);
    expect(group!.snapshots.map((s) => s.source_volume_id).sort()).toEqual([a.id, b.id].sort());
    for (const s of group!.snapshots) expect(s.group_snapshot_id).toBe(groupId);
    const again = await csi.groupController.CreateVolumeGroupSnapshot({ name, source_volume_ids: [b.id, a.id] });
    expect(again.group_snapshot).toEqual(group);
    await expectGrpcError(csi.groupController.CreateVolumeGroupSnapshot({ name, source_volume_ids: [a.id] }), 'ALREADY_EXISTS');
    const member = group!.snapshots[0]!.snapshot_id;
    await expectGrpcError(csi.controller.DeleteSnapshot({ snapshot_id: member }), 'FAILED_PRECONDITION');
    await expectGrpcError(
      csi.groupController.GetVolumeGroupSnapshot({ group_snapshot_id: groupId, snapshot_ids: [member] }),
      'FAILED_PRECONDITION',
    );
    const got = await csi.groupController.GetVolumeGroupSnapshot({
      group_snapshot_id: groupId,
      snapshot_ids: group!.snapshots.map((s) => s.snapshot_id),
    });
    expect(got.group_snapshot).toEqual(group);

    await unpublishAndUnstage(a, aat);
    await unpublishAndUnstage(b, bat);
    await csi.controller.DeleteVolume({ volume_id: a.id });
    await csi.controller.DeleteVolume({ volume_id: b.id });

    const snapOf = (v: Made) => group!.snapshots.find((s) => s.source_volume_id === v.id)!.snapshot_id;
    const ra = await createVolume({ bytes: 64 * MiB, cap: mountCap('ext4'), source: { snapshot: snapOf(a) } });
    const rb = await createVolume({ bytes: 300 * MiB, cap: mountCap('xfs'), source: { snapshot: snapOf(b) } });
    const inA = await sequenceIn(join((await stageAndPublish(ra)).target, 'log'));
    const inB = await sequenceIn(join((await stageAndPublish(rb)).target, 'log'));
    expectContiguous(inA);
    expectContiguous(inB);
    expect(inA.length - inB.length).toBeGreaterThanOrEqual(0);
    expect(inA.length - inB.length).toBeLessThanOrEqual(1);

    await csi.groupController.DeleteVolumeGroupSnapshot({
      group_snapshot_id: groupId,
      snapshot_ids: group!.snapshots.map((s) => s.snapshot_id),
    });
    await expectGrpcError(csi.groupController.GetVolumeGroupSnapshot({ group_snapshot_id: groupId, snapshot_ids: [] }), 'NOT_FOUND');
    expect((await csi.controller.ListSnapshots({ snapshot_id: member })).entries).toEqual([]);
  });

  it('refuses a group of a missing volume with NOT_FOUND and makes nothing', async () => {
    const a = await createVolume({ bytes: 8 * MiB, cap: blockCap() });
    await expectGrpcError(
      csi.groupController.CreateVolumeGroupSnapshot({
        name: `group-missing-${process.pid}`,
        source_volume_ids: [a.id, 'vol-000000000000000000000000'],
      }),
      'NOT_FOUND',
    );
    expect((await csi.controller.ListSnapshots({ source_volume_id: a.id })).entries).toEqual([]);
  });
});

describe('expansion', () => {
  it('grows a mounted xfs volume online: df of the target grows and the data is intact', async () => {
    const v = await createVolume({ bytes: 300 * MiB, cap: mountCap('xfs') });
    const at = await stageAndPublish(v);
    const before = await writeFiles(at.target, 4, 256 * 1024);
    const dfBefore = await fsBytes(at.target);
    const res = await csi.controller.ControllerExpandVolume({ volume_id: v.id, capacity_range: { required_bytes: 500 * MiB } });
    expect(res).toEqual({ capacity_bytes: 500 * MiB, node_expansion_required: true });
    const node = await csi.node.NodeExpandVolume({
      volume_id: v.id,
      volume_path: at.target,
      capacity_range: { required_bytes: 500 * MiB },
    });
    expect(node.capacity_bytes).toBe(500 * MiB);
    expect(await fsBytes(at.target)).toBeGreaterThanOrEqual(dfBefore + 190 * MiB);
    expect(await checksums(at.target, before.keys())).toEqual(before);
    const { volume } = await csi.controller.ControllerGetVolume({ volume_id: v.id });
    expect(volume!.capacity_bytes).toBe(500 * MiB);
  });

  it(
    canGrowExt4Online
      ? 'grows a mounted ext4 volume online (CAP_SYS_RESOURCE present)'
      : 'without CAP_SYS_RESOURCE a mounted ext4 cannot grow online: FAILED_PRECONDITION naming it, then it grows at the next stage',
    async () => {
      const v = await createVolume({ bytes: 64 * MiB, cap: mountCap('ext4') });
      let at = await stageAndPublish(v);
      const before = await writeFiles(at.target, 4, 256 * 1024);
      const dfBefore = await fsBytes(at.target);
      await csi.controller.ControllerExpandVolume({ volume_id: v.id, capacity_range: { required_bytes: 192 * MiB } });
      const expand = () => csi.node.NodeExpandVolume({ volume_id: v.id, volume_path: at.target });
      if (canGrowExt4Online) {
        expect((await expand()).capacity_bytes).toBe(192 * MiB);
      } else {
        const e = await expectGrpcError(expand(), 'FAILED_PRECONDITION');
        expect(e.details).toMatch(/CAP_SYS_RESOURCE/);
        expect(e.details).toMatch(/next NodeStageVolume/);
        expect(await fsBytes(at.target)).toBe(dfBefore); // nothing changed half-way
        await unpublishAndUnstage(v, at);
        at = await stageAndPublish(v);
        expect((await expand()).capacity_bytes).toBe(192 * MiB); // nothing left to grow: OK
      }
      expect(await fsBytes(at.target)).toBeGreaterThanOrEqual(dfBefore + 120 * MiB);
      expect(await checksums(at.target, before.keys())).toEqual(before);
    },
  );

  it('grows a published block volume: the device shows the new size, no node step needed', async () => {
    const v = await createVolume({ bytes: 16 * MiB, cap: blockCap() });
    const at = await stageAndPublish(v);
    const data = randomBytes(MiB);
    await writeFile(at.target, data);
    const res = await csi.controller.ControllerExpandVolume({ volume_id: v.id, capacity_range: { required_bytes: 40 * MiB } });
    expect(res).toEqual({ capacity_bytes: 40 * MiB, node_expansion_required: false });
    expect(await blockDeviceSize(at.target)).toBe(40 * MiB);
    const node = await csi.node.NodeExpandVolume({ volume_id: v.id, volume_path: at.target });
    expect(node.capacity_bytes).toBe(40 * MiB);
    expect(sha256((await readFile(at.target)).subarray(0, MiB))).toBe(sha256(data));
  });

  it('refuses a shrink with OUT_OF_RANGE, keeps a smaller request a no-op, and answers NOT_FOUND for a missing volume', async () => {
    const v = await createVolume({ bytes: 32 * MiB, cap: blockCap() });
    await expectGrpcError(
      csi.controller.ControllerExpandVolume({ volume_id: v.id, capacity_range: { required_bytes: 16 * MiB, limit_bytes: 16 * MiB } }),
      'OUT_OF_RANGE',
    );
    expect(await csi.controller.ControllerExpandVolume({ volume_id: v.id, capacity_range: { required_bytes: 16 * MiB } })).toEqual({
      capacity_bytes: 32 * MiB,
      node_expansion_required: false,
    });
    await expectGrpcError(csi.controller.ControllerExpandVolume({ volume_id: v.id }), 'INVALID_ARGUMENT');
    await expectGrpcError(
      csi.controller.ControllerExpandVolume({ volume_id: 'vol-000000000000000000000000', capacity_range: { required_bytes: MiB } }),
      'NOT_FOUND',
    );
    await expectGrpcError(csi.node.NodeExpandVolume({ volume_id: v.id, volume_path: join(plugin.dir, 'nowhere') }), 'NOT_FOUND');
  });
});

describe('volume health', () => {
  it('reports a lost mount and a filesystem gone read-only on the node, a deleted backing file on the controller', async () => {
    const v = await createVolume({ bytes: 32 * MiB, cap: mountCap('ext4') });
    const at = await stageAndPublish(v);
    const stats = () => csi.node.NodeGetVolumeStats({ volume_id: v.id, volume_path: at.target });
    expect((await stats()).volume_condition).toEqual({ abnormal: false, message: 'volume is healthy' });

    // What ext4's errors=remount-ro does: the filesystem (superblock) turns read-only under a rw mount.
    await run('mount', ['-o', 'remount,ro', at.staging]);
    const ro = (await stats()).volume_condition!;
    expect(ro.abnormal).toBe(true);
    expect(ro.message).toMatch(/read-only after errors/);
    await run('mount', ['-o', 'remount,rw', at.staging]);

    await mounter.unmount(at.target);
    const lost = (await stats()).volume_condition!;
    expect(lost.abnormal).toBe(true);
    expect(lost.message).toMatch(/mount was lost/);

    await rm(join(plugin.poolDir, 'volumes', `${v.id}.img`));
    const { status } = await csi.controller.ControllerGetVolume({ volume_id: v.id });
    expect(status!.volume_condition!.abnormal).toBe(true);
    expect(status!.volume_condition!.message).toMatch(/deleted while attached/);
  });
});
