// Helpers of the data-mobility tests: volumes filled through a real stage, their trees read back the same
// way, the rexcsi CLI run with a repository password in its environment, and what a plugin holds.
import { createHash } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import type { CsiClients } from '../helpers/client.js';
import { blockCapability, mountCapability } from '../helpers/volumes.js';
import { makeTree, manifest, type Entry } from './tree.js';

export const PASSWORD = 'correct horse battery staple';
export const MiB = 1024 * 1024;

export interface Side {
  csi: CsiClients;
  endpoint: string;
  /** ControllerPublish is needed before staging (ebs) */
  nodeId?: string;
}

function cap(block: boolean, readOnly = false) {
  const mode = readOnly ? 'SINGLE_NODE_READER_ONLY' : 'SINGLE_NODE_WRITER';
  return block ? blockCapability(mode) : mountCapability('', mode);
}

/** Stages (and for block, publishes to a file) a volume under dir, runs fn on its data path, undoes it all. */
export async function withVolume<T>(side: Side, id: string, dir: string, block: boolean, fn: (path: string) => Promise<T>): Promise<T> {
  const staging = join(dir, `stage-${id.replace(/[^\w.-]/g, '_')}`);
  await mkdir(staging, { recursive: true });
  const target = `${staging}.dev`;
  let publishContext: Record<string, string> = {};
  if (side.nodeId) {
    const res = await side.csi.controller.ControllerPublishVolume({
      volume_id: id,
      node_id: side.nodeId,
      volume_capability: cap(block),
      readonly: false,
    });
    publishContext = res.publish_context;
  }
  const vol = await side.csi.controller.ControllerGetVolume({ volume_id: id }).catch(() => undefined);
  const context = vol?.volume?.volume_context ?? {};
  try {
    await side.csi.node.NodeStageVolume({
      volume_id: id,
      staging_target_path: staging,
      volume_capability: cap(block),
      publish_context: publishContext,
      volume_context: context,
    });
    try {
      if (!block) return await fn(staging);
      await side.csi.node.NodePublishVolume({
        volume_id: id,
        staging_target_path: staging,
        target_path: target,
        volume_capability: cap(block),
        publish_context: publishContext,
        volume_context: context,
      });
      try {
        return await fn(target);
      } finally {
        await side.csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
      }
    } finally {
      await side.csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    }
  } finally {
    if (side.nodeId) await side.csi.controller.ControllerUnpublishVolume({ volume_id: id, node_id: side.nodeId });
    await rm(target, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

export async function createVolume(side: Side, name: string, bytes: number, block = false): Promise<string> {
  const res = await side.csi.controller.CreateVolume({
    name,
    capacity_range: { required_bytes: bytes },
    volume_capabilities: [cap(block)],
  });
  return res.volume!.volume_id;
}

/** A mount volume holding makeTree's tree; returns its id and the tree's manifest. */
export async function treeVolume(side: Side, name: string, dir: string, bytes = 128 * MiB): Promise<{ id: string; tree: Entry[] }> {
  const id = await createVolume(side, name, bytes);
  const tree = await withVolume(side, id, dir, false, async (path) => {
    await makeTree(path);
    return manifest(path);
  });
  return { id, tree };
}

/** A block volume with a few MiB of pseudo-random data at three offsets (zeros between); returns its checksum. */
export async function dataBlockVolume(side: Side, name: string, dir: string, bytes = 64 * MiB): Promise<{ id: string; sha256: string }> {
  const id = await createVolume(side, name, bytes, true);
  const sha256 = await withVolume(side, id, dir, true, async (dev) => {
    const fh = await open(dev, 'r+');
    for (const at of [0, 17 * MiB + 4096, bytes - 2 * MiB]) {
      const data = Buffer.alloc(MiB);
      for (let i = 0; i < data.length; i += 32) createHash('sha256').update(`${name}:${at}:${i}`).digest().copy(data, i);
      await fh.write(data, 0, data.length, at);
    }
    await fh.sync();
    await fh.close();
    return checksum(dev, bytes);
  });
  return { id, sha256 };
}

export async function checksum(path: string, bytes: number): Promise<string> {
  const fh = await open(path, 'r');
  const hash = createHash('sha256');
  const buf = Buffer.alloc(4 * MiB);
  for (let at = 0; at < bytes;) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, bytes - at), at);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  await fh.close();
  return hash.digest('hex');
}

export const treeOf = (side: Side, id: string, dir: string): Promise<Entry[]> => withVolume(side, id, dir, false, (p) => manifest(p));
export const blockSumOf = (side: Side, id: string, dir: string, bytes: number): Promise<string> =>
  withVolume(side, id, dir, true, (p) => checksum(p, bytes));

/** rexcsi with the repository password in its environment (never on the command line). */
export function rexcsi(args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): Promise<CliResult> {
  return runCli(args, { env: { RESTIC_PASSWORD: PASSWORD, ...env }, timeoutMs });
}

export async function volumeIds(side: Side): Promise<string[]> {
  const res = await side.csi.controller.ListVolumes({});
  return res.entries.map((e) => e.volume!.volume_id).sort();
}

export async function snapshotIds(side: Side): Promise<string[]> {
  const res = await side.csi.controller.ListSnapshots({});
  return res.entries.map((e) => e.snapshot!.snapshot_id).sort();
}

export function lastJson<T>(r: CliResult): T {
  if (r.code !== 0) throw new Error(`rexcsi exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}
