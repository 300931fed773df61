// The ebs backend end to end: the built plugin over its unix socket, the EC2 API served by moto_server, real
// loop devices, mkfs and mounts on the node. SIMULATED: the hypervisor's attach (test/helpers/ebs-sim.ts
// backs each volume moto reports attached to the node instance with a loop device, an NVMe by-id link and a
// serial). moto ignores ClientToken, completes attach/detach at once and accepts an attach to a second
// instance (moving the volume): every rule tested here is therefore enforced by the plugin, not by moto.
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AttachVolumeCommand } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { filesystemType } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { startEbsWorld, waitForSim, ZONE, ZONE_KEY, GiB, type EbsWorld } from '../helpers/ebs.js';
import { REPO_ROOT, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup } from '../helpers/tmp.js';

const MOUNT = { access_mode: { mode: 'SINGLE_NODE_WRITER' as const }, mount: { fs_type: 'ext4', mount_flags: [] } };
const BLOCK = { access_mode: { mode: 'SINGLE_NODE_WRITER' as const }, block: {} };

let world: EbsWorld;
let plugin: PluginProcess;
let csi: CsiClients;
const cleanup = new Cleanup();

beforeAll(async () => {
  world = await startEbsWorld('ebs');
  plugin = await world.startPlugin();
  csi = csiClients(plugin.endpoint);
}, 60_000);

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  await cleanup.run();
  csi?.close();
  if (plugin) await writeFile(join(REPO_ROOT, 'test-results', 'plugin-ebs.log'), plugin.logs()).catch(() => undefined);
  await plugin?.cleanup();
  await world?.stop();
});

async function createVolume(
  name: string,
  opts: { block?: boolean; parameters?: Record<string, string>; bytes?: number } = {},
): Promise<string> {
  const res = await csi.controller.CreateVolume({
    name,
    capacity_range: { required_bytes: opts.bytes ?? GiB },
    volume_capabilities: [opts.block ? BLOCK : MOUNT],
    parameters: opts.parameters ?? {},
  });
  const id = res.volume!.volume_id;
  cleanup.defer(() => csi.controller.DeleteVolume({ volume_id: id }));
  return id;
}

async function publish(id: string, node = world.instanceId): Promise<Record<string, string>> {
  const res = await csi.controller.ControllerPublishVolume({ volume_id: id, node_id: node, volume_capability: MOUNT });
  cleanup.defer(() => csi.controller.ControllerUnpublishVolume({ volume_id: id, node_id: node }));
  return res.publish_context;
}

/** Stage + publish on the node; cleanup unpublishes and unstages. Returns the target path. */
async function mountOnNode(
  id: string,
  publishContext: Record<string, string>,
  tag: string,
  c: CsiClients = csi,
): Promise<{ staging: string; target: string }> {
  const staging = join(world.dir, `staging-${tag}`);
  const target = join(world.dir, `target-${tag}`);
  await mkdir(staging, { recursive: true });
  await c.node.NodeStageVolume({
    volume_id: id,
    staging_target_path: staging,
    volume_capability: MOUNT,
    publish_context: publishContext,
    volume_context: { fsType: 'ext4' },
  });
  cleanup.defer(() => c.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }));
  await c.node.NodePublishVolume({
    volume_id: id,
    staging_target_path: staging,
    target_path: target,
    volume_capability: MOUNT,
    publish_context: publishContext,
    readonly: false,
  });
  cleanup.defer(() => c.node.NodeUnpublishVolume({ volume_id: id, target_path: target }));
  return { staging, target };
}

describe('ebs backend', () => {
  it('advertises publish/unpublish, list with published nodes and modify, and reports the instance as node id with its zone', async () => {
    const caps = (await csi.controller.ControllerGetCapabilities({})).capabilities.map((c) => c.rpc?.type);
    expect(caps).toEqual(
      expect.arrayContaining([
        'CREATE_DELETE_VOLUME',
        'PUBLISH_UNPUBLISH_VOLUME',
        'LIST_VOLUMES',
        'LIST_VOLUMES_PUBLISHED_NODES',
        'MODIFY_VOLUME',
      ]),
    );
    const info = await csi.node.NodeGetInfo({});
    expect(info.node_id).toBe(world.instanceId);
    expect(info.accessible_topology?.segments).toEqual({ [ZONE_KEY]: ZONE });
    // m5.large: 28 shared Nitro slots, one for the network interface, one for the root volume
    expect(info.max_volumes_per_node).toBe(26);
  });

  it("advertises GET_CAPACITY and answers the largest volume of the parameters' type (EBS is elastic; Mesos offers nothing without it)", async () => {
    const caps = (await csi.controller.ControllerGetCapabilities({})).capabilities.map((c) => c.rpc?.type);
    expect(caps).toContain('GET_CAPACITY');
    const gp3 = await csi.controller.GetCapacity({
      volume_capabilities: [MOUNT],
      parameters: { type: 'gp3', fsType: 'ext4' },
      accessible_topology: { segments: { [ZONE_KEY]: ZONE } },
    });
    expect(Number(gp3.available_capacity)).toBe(16384 * GiB);
    expect(Number(gp3.maximum_volume_size?.value)).toBe(16384 * GiB);
    expect(Number(gp3.minimum_volume_size?.value)).toBe(GiB);
    expect(
      Number(
        (await csi.controller.GetCapacity({ volume_capabilities: [MOUNT], parameters: { type: 'io2', iops: '1000' } })).available_capacity,
      ),
    ).toBe(65536 * GiB);
    expect(
      Number(
        (await csi.controller.GetCapacity({ volume_capabilities: [MOUNT], parameters: { type: 'gp2', iops: '100' } })).available_capacity,
      ),
    ).toBe(0);
    expect(
      Number(
        (
          await csi.controller.GetCapacity({
            volume_capabilities: [MOUNT],
            parameters: {},
            accessible_topology: { segments: { [ZONE_KEY]: 'eu-west-1a' } },
          })
        ).available_capacity,
      ),
    ).toBe(0);
  });

  it('runs the whole lifecycle with data on a real device: create, attach, format, mount, write, detach, reattach, read, delete', async () => {
    const id = await createVolume('lifecycle');
    expect(id).toMatch(/^vol-[0-9a-f]+$/);
    const ebs = await world.describe(id);
    expect(ebs?.Size).toBe(1);
    expect(ebs?.AvailabilityZone).toBe(ZONE);
    expect(ebs?.VolumeType).toBe('gp3');

    const ctx = await publish(id);
    expect(ctx.devicePath).toMatch(/^\/dev\/xvd[b-z][a-z]$/);
    expect((await world.describe(id))?.Attachments?.map((a) => [a.InstanceId, a.State])).toEqual([[world.instanceId, 'attached']]);
    // publishing again to the same node is idempotent and names the same device
    expect(await csi.controller.ControllerPublishVolume({ volume_id: id, node_id: world.instanceId, volume_capability: MOUNT })).toEqual({
      publish_context: ctx,
    });

    const { target, staging } = await mountOnNode(id, ctx, 'life');
    expect(await filesystemType(world.sim.deviceOf(id)!)).toBe('ext4');
    await writeFile(join(target, 'hello.txt'), 'kept across detach\n');
    const listed = (await csi.controller.ListVolumes({})).entries.find((e) => e.volume?.volume_id === id);
    expect(listed?.status?.published_node_ids).toEqual([world.instanceId]);

    await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.ControllerUnpublishVolume({ volume_id: id, node_id: world.instanceId });
    expect((await world.describe(id))?.Attachments ?? []).toEqual([]);
    await waitForSim(world, id, false);
    // not attached any more: unpublishing again is fine
    await csi.controller.ControllerUnpublishVolume({ volume_id: id, node_id: world.instanceId });

    const ctx2 = await publish(id);
    await waitForSim(world, id, true);
    const again = await mountOnNode(id, ctx2, 'life2');
    expect(await readFile(join(again.target, 'hello.txt'), 'utf8')).toBe('kept across detach\n');

    // in use: deleting is refused while attached
    await expectGrpcError(csi.controller.DeleteVolume({ volume_id: id }), 'FAILED_PRECONDITION');
    await cleanup.run();
    expect(await world.describe(id)).toBeUndefined();
    await csi.controller.DeleteVolume({ volume_id: id }); // gone: OK
  });

  it('creates one EC2 volume for the same name asked twice, even across a restart (moto ignores ClientToken)', async () => {
    const first = await createVolume('same-name');
    const second = await csi.controller.CreateVolume({
      name: 'same-name',
      capacity_range: { required_bytes: GiB },
      volume_capabilities: [MOUNT],
    });
    expect(second.volume?.volume_id).toBe(first);
    await plugin.restart();
    const third = await csi.controller.CreateVolume({
      name: 'same-name',
      capacity_range: { required_bytes: GiB },
      volume_capabilities: [MOUNT],
    });
    expect(third.volume?.volume_id).toBe(first);
    const named = (await world.managedVolumes()).filter((v) => v.Tags?.some((t) => t.Key === 'CSIVolumeName' && t.Value === 'same-name'));
    expect(named.map((v) => v.VolumeId)).toEqual([first]);
    // same name, incompatible request
    await expectGrpcError(
      csi.controller.CreateVolume({ name: 'same-name', capacity_range: { required_bytes: 5 * GiB }, volume_capabilities: [MOUNT] }),
      'ALREADY_EXISTS',
    );
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: 'same-name',
        capacity_range: { required_bytes: GiB },
        volume_capabilities: [MOUNT],
        parameters: { type: 'gp2' },
      }),
      'ALREADY_EXISTS',
    );
  });

  it('refuses to attach a volume attached to another instance (FAILED_PRECONDITION) and leaves that attachment alone', async () => {
    const id = await createVolume('elsewhere');
    await publish(id, world.otherInstanceId);
    const err = await expectGrpcError(
      csi.controller.ControllerPublishVolume({ volume_id: id, node_id: world.instanceId, volume_capability: MOUNT }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toContain(world.otherInstanceId);
    // moto would have moved the volume; the plugin never asked it to
    expect((await world.describe(id))?.Attachments?.map((a) => a.InstanceId)).toEqual([world.otherInstanceId]);
    await expectGrpcError(
      csi.controller.ControllerPublishVolume({ volume_id: id, node_id: 'i-0000000000000dead', volume_capability: MOUNT }),
      'NOT_FOUND',
    );
    await expectGrpcError(
      csi.controller.ControllerPublishVolume({ volume_id: 'vol-00000000000000000', node_id: world.instanceId, volume_capability: MOUNT }),
      'NOT_FOUND',
    );
  });

  it("refuses attaches beyond the node's attach limit with RESOURCE_EXHAUSTED, also when they arrive at once", async () => {
    // --attach-limit 3: the root volume and two more. moto itself has no limit.
    const limited = await world.startPlugin({ args: ['--attach-limit', '3'], name: 'ebs-limit' });
    const c = csiClients(limited.endpoint);
    try {
      expect((await c.node.NodeGetInfo({})).max_volumes_per_node).toBe(2);
      const ids = await Promise.all(['limit-1', 'limit-2', 'limit-3'].map((n) => createVolume(n)));
      const results = await Promise.allSettled(
        ids.map((id) => c.controller.ControllerPublishVolume({ volume_id: id, node_id: world.instanceId, volume_capability: MOUNT })),
      );
      for (const id of ids) cleanup.defer(() => c.controller.ControllerUnpublishVolume({ volume_id: id, node_id: world.instanceId }));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      await expectGrpcError(Promise.reject(refused?.reason as Error), 'RESOURCE_EXHAUSTED');
      const devices = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.publish_context.devicePath] : []));
      expect(new Set(devices).size).toBe(2); // never the same name twice
      const attached = await Promise.all(ids.map(async (id) => (await world.describe(id))?.Attachments?.length ?? 0));
      expect(attached.reduce((a, b) => a + b, 0)).toBe(2);
      await cleanup.run();
    } finally {
      c.close();
      await limited.cleanup();
    }
  });

  it('refuses a device whose NVMe serial names another volume, and writes nothing to it', async () => {
    const a = await createVolume('serial-a');
    const b = await createVolume('serial-b');
    const ctxA = await publish(a);
    await publish(b);
    await waitForSim(world, a, true);
    await waitForSim(world, b, true);
    await world.sim.mislink(a, b);
    const staging = join(world.dir, 'staging-serial');
    await mkdir(staging, { recursive: true });
    const err = await expectGrpcError(
      csi.node.NodeStageVolume({
        volume_id: a,
        staging_target_path: staging,
        volume_capability: MOUNT,
        publish_context: ctxA,
        volume_context: { fsType: 'ext4' },
      }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toContain(b.replace('-', ''));
    expect(await filesystemType(world.sim.deviceOf(b)!)).toBeUndefined();
    expect(await filesystemType(world.sim.deviceOf(a)!)).toBeUndefined();
  });

  it('rejects bad parameters with INVALID_ARGUMENT naming the parameter, and sizes beyond the type with OUT_OF_RANGE, creating nothing', async () => {
    const before = (await world.managedVolumes()).length;
    const cases: [Record<string, string>, string][] = [
      [{ type: 'gp2', iops: '3000' }, 'iops'],
      [{ type: 'io1', iops: '200', iopsPerGB: '10' }, 'iopsPerGB'],
      [{ type: 'gp9' }, 'type'],
      [{ colour: 'blue' }, 'colour'],
      [{ type: 'io2', throughput: '200', iops: '200' }, 'throughput'],
      [{ type: 'io1' }, 'iops'],
      [{ encrypted: 'yes' }, 'encrypted'],
      [{ kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/x' }, 'kmsKeyId'],
      [{ tagSpecification_1: 'novalue' }, 'tagSpecification_1'],
      [{ tagSpecification_1: 'CSIVolumeName=x' }, 'tagSpecification_1'],
    ];
    for (const [parameters, named] of cases) {
      const err = await expectGrpcError(
        csi.controller.CreateVolume({
          name: `bad-${named}`,
          capacity_range: { required_bytes: GiB },
          volume_capabilities: [MOUNT],
          parameters,
        }),
        'INVALID_ARGUMENT',
      );
      expect(err.details, JSON.stringify(parameters)).toContain(named);
    }
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: 'too-big',
        capacity_range: { required_bytes: 2000 * GiB },
        volume_capabilities: [MOUNT],
        parameters: { type: 'standard' },
      }),
      'OUT_OF_RANGE',
    );
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: 'st1-small',
        capacity_range: { required_bytes: GiB, limit_bytes: 10 * GiB },
        volume_capabilities: [MOUNT],
        parameters: { type: 'st1' },
      }),
      'OUT_OF_RANGE',
    );
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: 'multi-mount',
        volume_capabilities: [{ access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' }, mount: { fs_type: 'ext4', mount_flags: [] } }],
      }),
      'INVALID_ARGUMENT',
    );
    expect((await world.managedVolumes()).length).toBe(before);
  });

  it('creates with every valid parameter, tags and the zone from the preferred topology', async () => {
    const id = await createVolume('params', {
      bytes: 10 * GiB,
      parameters: { type: 'io2', iopsPerGB: '50', encrypted: 'true', tagSpecification_1: 'team=storage', tagSpecification_2: 'env=test' },
    });
    const v = await world.describe(id);
    expect([v?.VolumeType, v?.Iops, v?.Size, v?.Encrypted]).toEqual(['io2', 500, 10, true]);
    const tags = Object.fromEntries((v?.Tags ?? []).map((t): [string, string | undefined] => [t.Key ?? '', t.Value]));
    expect(tags).toMatchObject({ team: 'storage', env: 'test', CSIVolumeName: 'params', 'rexcsi.io/cluster': world.clusterTag });

    const res = await csi.controller.CreateVolume({
      name: 'zoned',
      volume_capabilities: [BLOCK],
      accessibility_requirements: {
        requisite: [{ segments: { [ZONE_KEY]: 'us-east-1b' } }, { segments: { [ZONE_KEY]: 'us-east-1c' } }],
        preferred: [{ segments: { [ZONE_KEY]: 'us-east-1c' } }],
      },
    });
    cleanup.defer(() => csi.controller.DeleteVolume({ volume_id: res.volume!.volume_id }));
    expect(res.volume?.accessible_topology).toEqual([{ segments: { [ZONE_KEY]: 'us-east-1c' } }]);
    expect((await world.describe(res.volume!.volume_id))?.AvailabilityZone).toBe('us-east-1c');
    // a volume in another zone cannot be attached to this node
    await expectGrpcError(
      csi.controller.ControllerPublishVolume({ volume_id: res.volume!.volume_id, node_id: world.instanceId, volume_capability: BLOCK }),
      'FAILED_PRECONDITION',
    );
  });

  it('modifies type, IOPS and throughput through ControllerModifyVolume; unknown keys are INVALID_ARGUMENT', async () => {
    const id = await createVolume('modify');
    await csi.controller.ControllerModifyVolume({ volume_id: id, mutable_parameters: { type: 'io2', iops: '200' } });
    const v = await world.describe(id);
    expect([v?.VolumeType, v?.Iops]).toEqual(['io2', 200]);
    const err = await expectGrpcError(
      csi.controller.ControllerModifyVolume({ volume_id: id, mutable_parameters: { size: '5' } }),
      'INVALID_ARGUMENT',
    );
    expect(err.details).toContain('size');
    await expectGrpcError(
      csi.controller.ControllerModifyVolume({ volume_id: id, mutable_parameters: { type: 'fast' } }),
      'INVALID_ARGUMENT',
    );
    await expectGrpcError(
      csi.controller.ControllerModifyVolume({ volume_id: 'vol-00000000000000000', mutable_parameters: { type: 'gp3' } }),
      'NOT_FOUND',
    );
    await expectGrpcError(
      csi.controller.ControllerModifyVolume({ volume_id: '', mutable_parameters: { type: 'gp3' } }),
      'INVALID_ARGUMENT',
    );
  });

  it('deletes only volumes it manages', async () => {
    const { CreateVolumeCommand } = await import('@aws-sdk/client-ec2');
    const foreign = await world.ec2.send(new CreateVolumeCommand({ Size: 1, AvailabilityZone: ZONE }));
    await expectGrpcError(csi.controller.DeleteVolume({ volume_id: foreign.VolumeId! }), 'FAILED_PRECONDITION');
    expect((await world.describe(foreign.VolumeId!))?.State).toBe('available');
    await expectGrpcError(
      csi.controller.ControllerPublishVolume({ volume_id: foreign.VolumeId!, node_id: world.instanceId, volume_capability: MOUNT }),
      'NOT_FOUND',
    );
  });

  it('stages a block volume and hands the verified device out raw', async () => {
    const id = await createVolume('raw', { block: true });
    const res = await csi.controller.ControllerPublishVolume({ volume_id: id, node_id: world.instanceId, volume_capability: BLOCK });
    cleanup.defer(() => csi.controller.ControllerUnpublishVolume({ volume_id: id, node_id: world.instanceId }));
    const staging = join(world.dir, 'staging-raw');
    const target = join(world.dir, 'target-raw');
    await mkdir(staging, { recursive: true });
    await csi.node.NodeStageVolume({
      volume_id: id,
      staging_target_path: staging,
      volume_capability: BLOCK,
      publish_context: res.publish_context,
    });
    cleanup.defer(() => csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }));
    await csi.node.NodePublishVolume({
      volume_id: id,
      staging_target_path: staging,
      target_path: target,
      volume_capability: BLOCK,
      readonly: false,
    });
    cleanup.defer(() => csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target }));
    await writeFile(target, Buffer.from('raw bytes'));
    const fh = await open(world.sim.deviceOf(id)!, 'r');
    const back = Buffer.alloc(9);
    await fh.read(back, 0, 9, 0).finally(() => fh.close());
    expect(back.toString()).toBe('raw bytes');
    expect(await filesystemType(world.sim.deviceOf(id)!)).toBeUndefined(); // never formatted
  });

  it('answers a stage without publish_context, when the volume is not attached here, with FAILED_PRECONDITION (no --node-attach)', async () => {
    const id = await createVolume('not-attached');
    const staging = join(world.dir, 'staging-na');
    await mkdir(staging, { recursive: true });
    const err = await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toContain('--node-attach');
    expect((await world.describe(id))?.Attachments ?? []).toEqual([]);
  });

  it('treats a volume moved to another instance behind its back as attached elsewhere (FAILED_PRECONDITION)', async () => {
    // moto moves a volume on a second attach; the plugin's publish to our node must not be fooled by a
    // stale attachment elsewhere that someone else made after the check.
    const id = await createVolume('moved');
    const ctx = await publish(id);
    await world.ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: world.otherInstanceId, Device: '/dev/xvdq' }));
    await expectGrpcError(
      csi.controller.ControllerPublishVolume({ volume_id: id, node_id: world.instanceId, volume_capability: MOUNT }),
      'FAILED_PRECONDITION',
    );
    expect(ctx.devicePath).toBeTruthy();
    await csi.controller.ControllerUnpublishVolume({ volume_id: id, node_id: world.otherInstanceId });
  });
});
