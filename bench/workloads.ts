// What is measured: a volume's whole life through the plugin and through the bare commands (the floor),
// Probe round trips, and ListVolumes over a pool of metadata files.

import { spawn } from 'node:child_process';
import { mkdir, open, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, type VolumeMeta } from '../src/backends/loop/pool.js';
import { MKFS_ARGS } from '../src/os/format.js';
import type { VolumeCapability } from '../src/csi/gen/csi/v1/VolumeCapability.js';
import type { CsiClients } from '../test/helpers/client.js';
import type { Teardown } from './cleanup.js';
import { nowMs } from './stats.js';

/** The six calls of a volume's life, in order; the floor's phases carry the same names. */
export const LIFECYCLE_RPCS = [
  'CreateVolume',
  'NodeStageVolume',
  'NodePublishVolume',
  'NodeUnpublishVolume',
  'NodeUnstageVolume',
  'DeleteVolume',
] as const;
export type LifecycleRpc = (typeof LIFECYCLE_RPCS)[number];

const FLOOR_PHASES: Record<string, LifecycleRpc> = {
  create: 'CreateVolume',
  stage: 'NodeStageVolume',
  publish: 'NodePublishVolume',
  unpublish: 'NodeUnpublishVolume',
  unstage: 'NodeUnstageVolume',
  delete: 'DeleteVolume',
};

const FLOOR_SCRIPT = fileURLToPath(new URL('./floor.sh', import.meta.url));
const MOUNT_EXT4: VolumeCapability = { mount: { fs_type: 'ext4', mount_flags: [] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

export interface LifecycleResult {
  /** Per call (or floor phase): one duration per volume, ms. */
  latencies: Record<LifecycleRpc, number[]>;
  /** Per volume: the six calls end to end, ms. */
  perVolume: number[];
  /** From the first volume's start to the last one's end, ms. */
  wallMs: number;
  volumes: number;
}

export interface LifecycleOptions {
  /** Directory for staging and target paths (and the floor's backing files). */
  dir: string;
  volumes: number;
  concurrency: number;
  sizeBytes: number;
  /** Distinguishes the volume names of one pass from every other. */
  tag: string;
  teardown: Teardown;
}

export function emptyLatencies(): Record<LifecycleRpc, number[]> {
  return Object.fromEntries(LIFECYCLE_RPCS.map((r) => [r, [] as number[]])) as unknown as Record<LifecycleRpc, number[]>;
}

/** Runs work(i) for i in 0..count-1 on `concurrency` workers; stops taking new items once teardown began. */
export async function onWorkers(
  count: number,
  concurrency: number,
  teardown: Teardown,
  work: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const started = nowMs();
  const worker = async (): Promise<void> => {
    while (next < count && !teardown.stopping) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (teardown.stopping) throw new Error('interrupted');
  return nowMs() - started;
}

export async function volumeDirs(o: LifecycleOptions, kind: string, i: number): Promise<{ staging: string; target: string }> {
  const base = join(o.dir, `${kind}-${o.tag}`);
  const staging = join(base, 'staging', String(i));
  // The CO creates the staging directory and the target's parent; neither is part of any timing.
  await mkdir(staging, { recursive: true });
  await mkdir(join(base, 'target'), { recursive: true });
  return { staging, target: join(base, 'target', String(i)) };
}

/** create -> stage -> publish -> unpublish -> unstage -> delete through the plugin, each call timed by the client. */
export async function pluginLifecycle(csi: CsiClients, o: LifecycleOptions): Promise<LifecycleResult> {
  const latencies = emptyLatencies();
  const perVolume: number[] = [];
  const timed = async <T>(rpc: LifecycleRpc, call: () => Promise<T>): Promise<T> => {
    const t0 = nowMs();
    const res = await call();
    latencies[rpc].push(nowMs() - t0);
    return res;
  };
  const wallMs = await onWorkers(o.volumes, o.concurrency, o.teardown, async (i) => {
    const { staging, target } = await volumeDirs(o, 'plugin', i);
    const t0 = nowMs();
    const { volume } = await timed('CreateVolume', () =>
      csi.controller.CreateVolume({
        name: `bench-${o.tag}-${i}`,
        capacity_range: { required_bytes: o.sizeBytes },
        volume_capabilities: [MOUNT_EXT4],
      }),
    );
    if (!volume) throw new Error('CreateVolume answered without a volume');
    const volume_id = volume.volume_id;
    const volume_context = volume.volume_context;
    await timed('NodeStageVolume', () =>
      csi.node.NodeStageVolume({ volume_id, staging_target_path: staging, volume_capability: MOUNT_EXT4, volume_context }),
    );
    await timed('NodePublishVolume', () =>
      csi.node.NodePublishVolume({
        volume_id,
        staging_target_path: staging,
        target_path: target,
        volume_capability: MOUNT_EXT4,
        volume_context,
        readonly: false,
      }),
    );
    await timed('NodeUnpublishVolume', () => csi.node.NodeUnpublishVolume({ volume_id, target_path: target }));
    await timed('NodeUnstageVolume', () => csi.node.NodeUnstageVolume({ volume_id, staging_target_path: staging }));
    await deleteVolume(csi, volume_id, latencies.DeleteVolume);
    perVolume.push(nowMs() - t0);
    await rmdir(staging);
  });
  return { latencies, perVolume, wallMs, volumes: o.volumes };
}

// Another engineer's sandbox (unshare -m) made while our volume was staged keeps the loop device held, and
// DeleteVolume rightly refuses; wait for it to let go. Only the attempt that succeeded is timed.
const HELD_ELSEWHERE = /another mount namespace/;

async function deleteVolume(csi: CsiClients, volume_id: string, into: number[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const t0 = nowMs();
    try {
      await csi.controller.DeleteVolume({ volume_id });
      into.push(nowMs() - t0);
      return;
    } catch (e) {
      if (attempt >= 100 || !HELD_ELSEWHERE.test((e as Error).message)) throw e;
      if (attempt === 1) process.stderr.write(`bench: ${volume_id} held by another mount namespace; retrying DeleteVolume\n`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The same volume lives done by bench/floor.sh with the bare commands, same size, same mkfs options. */
export async function floorLifecycle(o: LifecycleOptions): Promise<LifecycleResult> {
  const latencies = emptyLatencies();
  const perVolume: number[] = [];
  const images = join(o.dir, `floor-${o.tag}`, 'images');
  await mkdir(images, { recursive: true });
  const wallMs = await onWorkers(o.volumes, o.concurrency, o.teardown, async (i) => {
    const { staging, target } = await volumeDirs(o, 'floor', i);
    const phases = await runFloorScript([join(images, `${i}.img`), staging, target, String(o.sizeBytes), ...MKFS_ARGS.ext4], o.teardown);
    let total = 0;
    for (const [phase, ms] of phases) {
      latencies[FLOOR_PHASES[phase]!].push(ms);
      total += ms;
    }
    perVolume.push(total);
    await rmdir(staging);
  });
  return { latencies, perVolume, wallMs, volumes: o.volumes };
}

function runFloorScript(args: string[], teardown: Teardown): Promise<[string, number][]> {
  return new Promise((resolve, reject) => {
    // Its own process group, so teardown can stop the script together with the command it is running.
    const child = spawn('bash', [FLOOR_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    teardown.addChild(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`floor.sh ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${err.trim()}`));
      const phases: [string, number][] = [];
      for (const line of out.trim().split('\n')) {
        const [phase, us] = line.split(' ');
        if (!phase || !(phase in FLOOR_PHASES) || !us) return reject(new Error(`floor.sh printed an unexpected line: ${line}`));
        phases.push([phase, Number(us) / 1000]);
      }
      if (phases.length !== LIFECYCLE_RPCS.length) return reject(new Error(`floor.sh printed ${phases.length} phases:\n${out}`));
      resolve(phases);
    });
  });
}

/** `count` sequential Probe round trips on an open channel (after a warm-up), each in ms. */
export async function probeLatencies(csi: CsiClients, count: number): Promise<number[]> {
  for (let i = 0; i < Math.min(100, count); i++) await csi.identity.Probe({});
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    const res = await csi.identity.Probe({});
    out.push(nowMs() - t0);
    if (res.ready && !res.ready.value) throw new Error('Probe answered ready=false');
  }
  return out;
}

/**
 * A loop pool of `count` volumes as the loop backend lays it out (src/backends/loop/pool.ts): a metadata
 * file and a sparse backing file per volume, no loop devices. Written directly, not through the plugin:
 * creating 10,000 volumes by RPC would measure CreateVolume, not ListVolumes.
 */
export async function makeListPool(poolDir: string, count: number, sizeBytes: number): Promise<void> {
  const pool = new Pool(poolDir);
  await pool.init();
  const BATCH = 200;
  for (let start = 0; start < count; start += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, count - start) }, async (_, k) => {
        const name = `bench-list-${start + k}`;
        const id = Pool.idForName(name);
        const meta: VolumeMeta = {
          version: 1,
          id,
          name,
          capacityBytes: sizeBytes,
          accessType: 'mount',
          fsType: 'ext4',
          parameters: {},
          createdAt: new Date().toISOString(),
        };
        // The plugin's own serialisation (Pool.writeMeta), without its fsync: the files are scaffolding.
        await writeFile(pool.metaPath(id), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
        const image = await open(pool.imagePath(id), 'w', 0o600);
        await image.truncate(sizeBytes);
        await image.close();
      }),
    );
  }
}

export interface ListResult {
  /** One duration per page, ms. */
  pages: number[];
  totalMs: number;
  entries: number;
}

/** Every page of ListVolumes, `pageSize` entries each, following next_token to the end. */
export async function listAllVolumes(csi: CsiClients, pageSize: number): Promise<ListResult> {
  const pages: number[] = [];
  let token = '';
  let entries = 0;
  const t0 = nowMs();
  do {
    const t = nowMs();
    const res = await csi.controller.ListVolumes({ max_entries: pageSize, starting_token: token });
    pages.push(nowMs() - t);
    entries += res.entries.length;
    token = res.next_token;
  } while (token !== '');
  return { pages, totalMs: nowMs() - t0, entries };
}
