// Mesos external volumes (--node-attach): NodeStageVolume arrives without ControllerPublishVolume, so the node
// attaches the volume to its own instance through the EC2 API (moto_server) and NodeUnstageVolume detaches what
// it attached. Also: expansion while mounted, concurrent expand + modify merged into one ModifyVolume, and
// snapshot restore with data intact, exercised on the backend directly (the protocol RPCs for those belong to
// another change). SIMULATED: the hypervisor's attach (test/helpers/ebs-sim.ts), as in ebs.test.ts.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EbsBackend } from '../../src/backends/ebs/ebs.js';
import { createEbsBackend } from '../../src/backends/ebs/factory.js';
import { resizeFilesystem, volumeStats } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { GiB, startEbsWorld, waitForSim, type EbsWorld } from '../helpers/ebs.js';
import { REPO_ROOT, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup } from '../helpers/tmp.js';

const MOUNT = { access_mode: { mode: 'SINGLE_NODE_WRITER' as const }, mount: { fs_type: 'ext4', mount_flags: [] } };
// xfs for the online growth: it grows with CAP_SYS_ADMIN, while ext4's online resize also needs CAP_SYS_RESOURCE,
// which this test machine's root may lack.
const XFS = { access_mode: { mode: 'SINGLE_NODE_WRITER' as const }, mount: { fs_type: 'xfs', mount_flags: [] } };

let world: EbsWorld;
let plugin: PluginProcess;
let csi: CsiClients;
let backend: EbsBackend;
const cleanup = new Cleanup();

beforeAll(async () => {
  world = await startEbsWorld('ebs-na');
  plugin = await world.startPlugin({ args: ['--node-attach'] });
  csi = csiClients(plugin.endpoint);
  // The same backend in this process, for the calls the protocol layer does not route yet.
  // (credentials for the SDK's default chain come from the environment, as in the plugin)
  Object.assign(process.env, world.moto.env());
  const opts: Record<string, string | boolean> = {};
  const args = world.pluginArgs();
  for (let i = 0; i < args.length; i += 2) opts[args[i]!.slice(2)] = args[i + 1]!;
  backend = await createEbsBackend({ nodeId: 'test', maxVolumesPerNode: 0, options: opts });
}, 60_000);

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  await cleanup.run();
  csi?.close();
  if (plugin) await writeFile(join(REPO_ROOT, 'test-results', 'plugin-ebs-node-attach.log'), plugin.logs()).catch(() => undefined);
  await plugin?.cleanup();
  await world?.stop();
});

async function createVolume(name: string, cap: typeof MOUNT = MOUNT): Promise<string> {
  const res = await csi.controller.CreateVolume({ name, capacity_range: { required_bytes: GiB }, volume_capabilities: [cap] });
  const id = res.volume!.volume_id;
  cleanup.defer(() => csi.controller.DeleteVolume({ volume_id: id }));
  return id;
}

/** NodeStage with no publish_context, as Mesos does for external volumes; cleanup unstages. */
async function stage(id: string, tag: string, cap: typeof MOUNT = MOUNT): Promise<string> {
  const staging = join(world.dir, `staging-${tag}`);
  await mkdir(staging, { recursive: true });
  await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
  cleanup.defer(() => csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }));
  return staging;
}

const attachmentsOf = async (id: string) => ((await world.describe(id))?.Attachments ?? []).map((a) => [a.InstanceId, a.State]);
const tagOf = async (id: string, key: string) => (await world.describe(id))?.Tags?.find((t) => t.Key === key)?.Value;

describe('ebs --node-attach (Mesos external volumes)', () => {
  it('attaches on NodeStage without publish_context, records it on the volume, formats and mounts it', async () => {
    const id = await createVolume('mesos-1');
    const staging = await stage(id, 'm1');
    expect(await attachmentsOf(id)).toEqual([[world.instanceId, 'attached']]);
    expect(await tagOf(id, 'rexcsi.io/node-attached')).toBe(world.instanceId);
    await writeFile(join(staging, 'data.txt'), 'mesos data\n');
    expect(await readFile(join(staging, 'data.txt'), 'utf8')).toBe('mesos data\n');
  });

  it('detaches what it attached on NodeUnstage and reattaches with the data on the next stage', async () => {
    const id = (
      await csi.controller.CreateVolume({ name: 'mesos-2', capacity_range: { required_bytes: GiB }, volume_capabilities: [MOUNT] })
    ).volume!.volume_id;
    const staging = join(world.dir, 'staging-m2');
    await mkdir(staging, { recursive: true });
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT });
    await writeFile(join(staging, 'data.txt'), 'mesos data\n');
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    expect(await attachmentsOf(id)).toEqual([]);
    expect(await tagOf(id, 'rexcsi.io/node-attached')).toBeUndefined();
    await waitForSim(world, id, false);

    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT });
    expect(await readFile(join(staging, 'data.txt'), 'utf8')).toBe('mesos data\n');
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: id });
    expect(await world.describe(id)).toBeUndefined();
  });

  it('refuses a volume attached to a running instance, and one attached to a stopped instance without --preempt', async () => {
    const id = await createVolume('mesos-busy');
    await csi.controller.ControllerPublishVolume({ volume_id: id, node_id: world.otherInstanceId, volume_capability: MOUNT });
    const staging = join(world.dir, 'staging-busy');
    await mkdir(staging, { recursive: true });
    const running = await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT }),
      'FAILED_PRECONDITION',
    );
    expect(running.details).toContain('running');
    expect(await attachmentsOf(id)).toEqual([[world.otherInstanceId, 'attached']]);
    await csi.controller.ControllerUnpublishVolume({ volume_id: id, node_id: world.otherInstanceId });

    const stopped = await world.runInstance('stopped');
    await csi.controller.ControllerPublishVolume({ volume_id: id, node_id: stopped, volume_capability: MOUNT }).catch(() => undefined);
    // moto attaches to a stopped instance too; make sure the volume is there
    const { AttachVolumeCommand } = await import('@aws-sdk/client-ec2');
    if ((await attachmentsOf(id)).length === 0)
      await world.ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: stopped, Device: '/dev/xvdf' }));
    const err = await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toContain('--preempt');
    expect(await attachmentsOf(id)).toEqual([[stopped, 'attached']]);

    // with --preempt the node force-detaches it from the stopped instance and takes it
    const preempting = await world.startPlugin({ args: ['--node-attach', '--preempt'], name: 'ebs-preempt' });
    const c2 = csiClients(preempting.endpoint);
    try {
      await c2.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT });
      expect(await attachmentsOf(id)).toEqual([[world.instanceId, 'attached']]);
      await c2.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
      expect(await attachmentsOf(id)).toEqual([]);
    } finally {
      c2.close();
      await preempting.cleanup();
    }
  });
});

describe('ebs expansion, modification and snapshots (backend level)', () => {
  it('grows a volume while it is mounted: EC2 size, the device and the filesystem, data intact', async () => {
    const id = await createVolume('grow', XFS);
    const staging = await stage(id, 'grow', XFS);
    await writeFile(join(staging, 'keep.txt'), 'still here\n');
    const before = (await volumeStats(staging)).totalBytes;
    const res = await backend.expandVolume(id, 3 * GiB, 'mount');
    expect(res).toEqual({ capacityBytes: 3 * GiB, nodeExpansionRequired: true });
    expect((await world.describe(id))?.Size).toBe(3);
    await world.sim.sync(); // the simulated hypervisor grows the device
    const device = (await backend.locateVolume(id))!;
    expect(device.kind).toBe('block');
    await resizeFilesystem((device as { device: string }).device, staging, 'xfs');
    expect((await volumeStats(staging)).totalBytes).toBeGreaterThan(before + GiB);
    expect(await readFile(join(staging, 'keep.txt'), 'utf8')).toBe('still here\n');
    // asking for a size it already has is a no-op
    expect(await backend.expandVolume(id, 2 * GiB, 'mount')).toEqual({ capacityBytes: 3 * GiB, nodeExpansionRequired: true });
  });

  it('merges an expansion and a modification arriving together into one ModifyVolume call', async () => {
    const id = await createVolume('merge');
    const calls = backend.merger.calls;
    await Promise.all([backend.expandVolume(id, 4 * GiB, 'mount'), backend.modifyVolume(id, { type: 'io1', iops: '150' })]);
    expect(backend.merger.calls - calls).toBe(1);
    const v = await world.describe(id);
    expect([v?.Size, v?.VolumeType, v?.Iops]).toEqual([4, 'io1', 150]);
    // contradicting changes in one window: the second is ABORTED, the first goes through
    const results = await Promise.allSettled([backend.modifyVolume(id, { type: 'io2' }), backend.modifyVolume(id, { type: 'gp3' })]);
    expect(results[0]?.status).toBe('fulfilled');
    expect(results[1]?.status === 'rejected' && (results[1].reason as { code?: string }).code).toBe('ABORTED');
  });

  it('restores a snapshot with the data it had when taken', async () => {
    const id = await createVolume('snap-src');
    const staging = await stage(id, 'snap-src');
    await writeFile(join(staging, 'before.txt'), 'in the snapshot\n');
    await (await import('../../src/os/index.js')).run('sync', []);
    const snap = await backend.createSnapshot({
      name: 'snap-1',
      sourceVolumeId: id,
      parameters: { tagSpecification_1: 'purpose=test' },
      secrets: {},
    });
    cleanup.defer(() => backend.deleteSnapshot(snap.id));
    expect(snap).toMatchObject({ name: 'snap-1', sourceVolumeId: id, sizeBytes: GiB });
    await world.sim.sync(); // the simulated EBS copies the data at snapshot time
    await writeFile(join(staging, 'after.txt'), 'not in the snapshot\n');
    expect((await backend.createSnapshot({ name: 'snap-1', sourceVolumeId: id, parameters: {}, secrets: {} })).id).toBe(snap.id);
    expect((await backend.findSnapshotByName('snap-1'))?.id).toBe(snap.id);
    expect((await backend.listSnapshots({ sourceVolumeId: id }, { afterId: '', limit: 0 })).map((s) => s.id)).toEqual([snap.id]);

    const restored = await backend.createVolume({
      name: 'snap-restored',
      capacityBytes: GiB,
      limitBytes: 0,
      capabilities: [{ accessType: 'mount', accessMode: 'SINGLE_NODE_WRITER', fsType: 'ext4', mountFlags: [] }],
      accessType: 'mount',
      fsType: 'ext4',
      parameters: {},
      source: { kind: 'snapshot', id: snap.id },
      secrets: {},
    });
    cleanup.defer(() => csi.controller.DeleteVolume({ volume_id: restored.id }));
    expect(restored.source).toEqual({ kind: 'snapshot', id: snap.id });
    const staged = await stage(restored.id, 'snap-restored');
    expect(await readFile(join(staged, 'before.txt'), 'utf8')).toBe('in the snapshot\n');
    await expect(readFile(join(staged, 'after.txt'), 'utf8')).rejects.toThrow();
    await expect(
      backend.createVolume({
        name: 'x',
        capacityBytes: GiB,
        limitBytes: 0,
        capabilities: [],
        accessType: 'mount',
        fsType: 'ext4',
        parameters: {},
        source: { kind: 'snapshot', id: 'snap-00000000000000000' },
        secrets: {},
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
