// The glusterfs backend on a real three-server pool (test/helpers/gluster-pool.ts: glusterds on
// 127.0.0.11-13, each in its own mount namespace), with servers and bricks killed while a task writes.
// The controller runs inside the first server's namespace (it drives that glusterd through its socket), the
// node plugin and its FUSE mounts in the test's own namespace; the "task" is this test writing files
// through the published target, each acknowledged only after fsync, with its checksum kept.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { startGlusterPool, type GlusterPool } from '../helpers/gluster-pool.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup, makeTempDir, removeTempDir } from '../helpers/tmp.js';
import type { VolumeCapability } from '../../src/csi/gen/csi/v1/VolumeCapability.js';
import { mounter } from '../../src/os/index.js';

const MiB = 1024 * 1024;
const HOSTING = 'hosting';
const cap: VolumeCapability = { access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' }, mount: { fs_type: '', mount_flags: [] } };

let pool: GlusterPool;
let controller: PluginProcess;
let node: PluginProcess;
let ctl: CsiClients;
let csi: CsiClients;
let dir: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  pool = await startGlusterPool();
  await pool.createReplicatedVolume(HOSTING);
  dir = await makeTempDir('gl-cluster');
  const servers = pool.hosts.flatMap((h) => ['--gluster-server', h]);
  controller = await startPlugin({
    backend: 'glusterfs',
    name: 'gl-controller',
    mode: 'controller',
    wrap: pool.servers[0]!.ns.prefix(),
    args: [
      ...servers,
      '--hosting-volume',
      HOSTING,
      ...pool.servers.flatMap((s) => ['--brick-root', `${s.host}:${s.brickRoot}`]),
      '--glusterd-socket',
      pool.servers[0]!.socket,
      '--gluster-work-dir',
      join(dir, 'work'),
    ],
    readyTimeoutMs: 60_000,
  });
  node = await startPlugin({ backend: 'glusterfs', name: 'gl-node', mode: 'node', args: servers, readyTimeoutMs: 60_000 });
  ctl = csiClients(controller.endpoint);
  csi = csiClients(node.endpoint);
}, 180_000);

afterAll(async () => {
  await cleanup.run().catch(() => undefined);
  const steps = new Cleanup();
  steps.defer(() => pool?.stop());
  steps.defer(() => dir && removeTempDir(dir));
  steps.defer(() => controller?.cleanup());
  steps.defer(() => node?.cleanup());
  steps.defer(() => ctl?.close());
  steps.defer(() => csi?.close());
  await steps.run();
}, 180_000);

async function createVolume(name: string, parameters: Record<string, string>): Promise<string> {
  const res = await ctl.controller.CreateVolume({
    name,
    capacity_range: { required_bytes: 64 * MiB },
    volume_capabilities: [cap],
    parameters,
  });
  return res.volume!.volume_id;
}

/** Stages and publishes on the node plugin; the unpublish and unstage are deferred. */
async function publish(id: string): Promise<string> {
  const base = await makeTempDir('gl-cl-pub');
  const staging = join(base, 'staging');
  const target = join(base, 'target');
  cleanup.defer(() => removeTempDir(base));
  await mkdir(staging);
  cleanup.defer(() => csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }).catch(() => mounter.unmount(staging)));
  cleanup.defer(() => csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target }).catch(() => mounter.unmount(target)));
  await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
  await csi.node.NodePublishVolume({
    volume_id: id,
    staging_target_path: staging,
    target_path: target,
    volume_capability: cap,
    readonly: false,
  });
  return target;
}

/** A task writing through a target: each file counts once write and fsync returned. */
class Writer {
  readonly acknowledged = new Map<string, string>();
  private n = 0;
  constructor(readonly target: string) {}

  async write(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.writeOne();
  }

  async writeOne(): Promise<void> {
    const name = `f${String(this.n++).padStart(4, '0')}`;
    const data = randomBytes(64 * 1024);
    const f = await open(join(this.target, name), 'w');
    try {
      await f.write(data);
      await f.sync();
    } finally {
      await f.close();
    }
    this.acknowledged.set(name, createHash('sha256').update(data).digest('hex'));
  }

  /** Every acknowledged file is there with its content, read at dir (the target, or a brick). */
  async verify(at = this.target): Promise<void> {
    for (const [name, sum] of this.acknowledged) {
      expect(
        createHash('sha256')
          .update(await readFile(join(at, name)))
          .digest('hex'),
        `${name} at ${at}`,
      ).toBe(sum);
    }
  }
}

async function condition(id: string) {
  const res = await ctl.controller.ControllerGetVolume({ volume_id: id });
  return res.status!.volume_condition!;
}

async function brickDirs(volume: string): Promise<string[]> {
  const info = await pool.cli(['volume', 'info', volume]);
  return [...info.matchAll(/^Brick\d+: (\S+)$/gm)].map((m) => m[1]!);
}

describe('glusterfs on a three-server pool: failures while a task writes', () => {
  let id: string;
  let writer: Writer;

  it('a volume-layout volume is replica 3 by default, one brick per server, client quorum auto', async () => {
    id = await createVolume('cl-r3', { layout: 'volume' });
    const bricks = await brickDirs(id);
    expect(bricks.map((b) => b.split(':')[0])).toEqual(pool.hosts);
    expect(await pool.cli(['volume', 'get', id, 'cluster.quorum-type'])).toMatch(/cluster\.quorum-type\s+auto/);
    writer = new Writer(await publish(id));
    await writer.write(20);
    expect((await condition(id)).abnormal).toBe(false);
  });

  it('one brick killed: writes go on, health names the brick; it returns and heals', async () => {
    const s2 = pool.servers[1]!;
    await s2.killBrick(id);
    await writer.write(20);
    const c = await condition(id);
    expect(c.abnormal).toBe(true);
    expect(c.message).toMatch(/1 of 3 bricks down \(127\.0\.0\.12:.*\); quorum held/);
    const stats = await csi.node.NodeGetVolumeStats({ volume_id: id, volume_path: writer.target });
    expect(stats.volume_condition?.abnormal).toBe(true);
    expect(stats.volume_condition?.message).toMatch(/as this node's client sees it: .*1 of 3 bricks down \(127\.0\.0\.12:.*quorum held/);
    await pool.servers[0]!.cli(['volume', 'start', id, 'force']);
    await s2.waitBrick(id);
    await pool.waitHealed(id);
    expect((await condition(id)).abnormal).toBe(false);
    await writer.verify();
  });

  it('a whole server killed: writes go on; ListVolumes, CreateVolume and DeleteVolume work or say what is missing', async () => {
    const s3 = pool.servers[2]!;
    await s3.kill();
    await writer.write(20);
    const listed = await ctl.controller.ListVolumes({});
    expect(listed.entries.find((e) => e.volume!.volume_id === id)?.status?.volume_condition?.message).toMatch(/quorum held/);
    const err = await expectGrpcError(createVolume('cl-r3-b', { layout: 'volume' }), 'RESOURCE_EXHAUSTED');
    expect(err.details).toMatch(/down or not in the pool: 127\.0\.0\.13/);
    // a subdir volume on the replicated hosting volume, and a one-brick volume, are made and deleted
    const sub = await createVolume('cl-sub-down', {});
    const single = await createVolume('cl-single-down', { layout: 'volume', replica: '1' });
    await ctl.controller.DeleteVolume({ volume_id: sub });
    await ctl.controller.DeleteVolume({ volume_id: single });
    const ids = (await ctl.controller.ListVolumes({})).entries.map((e) => e.volume!.volume_id);
    expect(ids).not.toContain(sub);
    expect(ids).not.toContain(single); // marked deleted: glusterd deletes no volume while a server is down
    await s3.start();
    await s3.waitBrick(id);
    await s3.waitBrick(HOSTING);
    await pool.waitHealed(id);
    await writer.verify();
    for (const brick of await brickDirs(id)) await writer.verify(brick.slice(brick.indexOf(':') + 1));
    await ctl.controller.DeleteVolume({ volume_id: single }); // finishes the deletion now that all are up
    expect(await pool.cli(['volume', 'list'])).not.toContain(single);
  });
});
