// Crash consistency of the ebs backend: for every point of EBS_FAULT_POINTS, on every RPC that reaches it, the
// plugin is killed (SIGKILL) between an EC2 call and what follows it, restarted, and the same RPC retried. The
// retry must succeed and leave exactly what one successful call leaves in EC2 (moto_server, over HTTP) and on
// the node: one volume with our tags for the name, attached once to the right instance (or detached, or gone),
// the publish/node-attach tags as one call sets them, no other volume, no loop device or mount left over; data
// written before the crash reads back. moto completes attach and detach at once and ignores ClientToken, so a
// retry that created a second volume is not absorbed by EC2: the all-volumes comparison catches it (the
// checker is itself shown to see one). SIMULATED: the hypervisor's attach (test/helpers/ebs-sim.ts).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateVolumeCommand, DeleteVolumeCommand, DescribeVolumesCommand, type Volume } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EBS_FAULT_POINTS, type EbsFaultPoint } from '../../src/backends/ebs/faults.js';
import { loopDevicesOf, mountsAt, readMountInfo, run } from '../../src/os/index.js';
import { csiClients, type CsiClients } from '../helpers/client.js';
import { GiB, startEbsWorld, ZONE, type EbsWorld } from '../helpers/ebs.js';
import { isUnder } from '../helpers/leaks.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { forceCleanupUnder, MiB, mountCapability } from '../helpers/volumes.js';

/** Controller flow: ControllerPublish/Unpublish. Node flow: --node-attach, NodeStage attaches, NodeUnstage detaches. */
type Flow = 'controller' | 'node';
type Step = 'create' | 'publish' | 'stage' | 'unstage' | 'unpublish' | 'delete';
const FLOWS: Record<Flow, Step[]> = {
  controller: ['create', 'publish', 'unpublish', 'delete'],
  node: ['create', 'stage', 'unstage', 'delete'],
};

/** Every point, on every path that reaches it: the attach and detach points are shared by both flows. */
const CASES: [EbsFaultPoint, Flow, Step][] = [
  ['ebs.create.after-create-volume', 'controller', 'create'],
  ['ebs.publish.after-mode-tag', 'controller', 'publish'],
  ['ebs.attach.after-attach-volume', 'controller', 'publish'],
  ['ebs.detach.after-detach-volume', 'controller', 'unpublish'],
  ['ebs.unpublish.after-detach', 'controller', 'unpublish'],
  ['ebs.delete.after-delete-volume', 'controller', 'delete'],
  ['ebs.node-attach.after-tag', 'node', 'stage'],
  ['ebs.attach.after-attach-volume', 'node', 'stage'],
  ['ebs.detach.after-detach-volume', 'node', 'unstage'],
  ['ebs.node-detach.after-detach', 'node', 'unstage'],
];

interface EbsState {
  /** the volume's EC2 state ('gone' once deleted) */
  state: string;
  /** volumes in EC2 whose CSIVolumeName tag is the name, ours or not */
  named: number;
  /** any other volume in EC2 that was not there before the suite */
  strays: string[];
  attachments: string[];
  publishTags: string[];
  nodeAttachedTag: string | null;
  /** the simulator's loop devices over the volume's data */
  loopDevices: number;
  stagingFs: string | null;
  mountsUnderPlugin: number;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let world: EbsWorld;
let plugin: PluginProcess;
/** volumes in EC2 before the suite (the instances' root volumes) */
let baseline: Set<string>;

beforeAll(async () => {
  world = await startEbsWorld('ebs-crash');
  baseline = new Set((await allVolumes()).map((v) => v.VolumeId!));
  plugin = await world.startPlugin({ name: 'ebs-crash', args: ['--node-attach'] });
}, 60_000);

afterAll(async () => {
  if (plugin) {
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  }
  await world?.stop();
});

async function allVolumes(): Promise<Volume[]> {
  const res = await world.ec2.send(new DescribeVolumesCommand({}));
  return (res.Volumes ?? []).filter((v) => v.State !== 'deleted');
}

const tagsOf = (v: Volume | undefined): Record<string, string> =>
  Object.fromEntries((v?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

/** What EC2 and this machine hold for the volume, after the simulator has caught up with EC2. */
async function observe(id: string, name: string, staging: string): Promise<EbsState> {
  await world.sim.sync();
  const [all, loops, atStaging, mounts] = await Promise.all([
    allVolumes(),
    id === '' ? [] : loopDevicesOf(join(world.dir, 'ebs-data', `${id}.img`)),
    mountsAt(staging),
    readMountInfo(),
  ]);
  const v = all.find((x) => x.VolumeId === id);
  const tags = tagsOf(v);
  return {
    state: v?.State ?? 'gone',
    named: all.filter((x) => tagsOf(x)['CSIVolumeName'] === name).length,
    strays: all.map((x) => x.VolumeId!).filter((x) => !baseline.has(x) && x !== id),
    attachments: (v?.Attachments ?? []).filter((a) => a.State !== 'detached').map((a) => `${a.InstanceId} ${a.State}`),
    publishTags: Object.entries(tags)
      .filter(([k]) => k.startsWith('rexcsi.io/publish-mode/'))
      .map(([k, val]) => `${k}=${val}`),
    nodeAttachedTag: tags['rexcsi.io/node-attached'] ?? null,
    loopDevices: loops.length,
    stagingFs: atStaging.at(-1)?.fsType ?? null,
    mountsUnderPlugin: mounts.filter((m) => isUnder(m.mountPoint, plugin.dir)).length,
  };
}

/** What one successful call of each step leaves, starting from nothing. */
function expectedAfter(step: Step, flow: Flow): EbsState {
  const me = world.instanceId;
  const base: EbsState = {
    state: 'available',
    named: 1,
    strays: [],
    attachments: [],
    publishTags: [],
    nodeAttachedTag: null,
    loopDevices: 0,
    stagingFs: null,
    mountsUnderPlugin: 0,
  };
  switch (step) {
    case 'create':
      return base;
    case 'publish':
      return {
        ...base,
        state: 'in-use',
        attachments: [`${me} attached`],
        publishTags: [`rexcsi.io/publish-mode/${me}=rw`],
        loopDevices: 1,
      };
    case 'stage':
      return {
        ...base,
        state: 'in-use',
        attachments: [`${me} attached`],
        nodeAttachedTag: me,
        loopDevices: 1,
        stagingFs: 'ext4',
        mountsUnderPlugin: 1,
      };
    case 'unpublish':
    case 'unstage':
      return base;
    case 'delete':
      return { ...base, state: 'gone', named: 0 };
  }
  throw new Error(`no expectation for ${step} in the ${flow} flow`);
}

describe('ebs crash consistency (moto_server)', () => {
  it('covers every ebs fault point', () => {
    expect(EBS_FAULT_POINTS.filter((p) => !CASES.some(([point]) => point === p))).toEqual([]);
  });

  it('sees a second volume made for the same name (the check a double create must fail)', async () => {
    const name = 'crash-twin-check';
    const twin = async () => {
      const res = await world.ec2.send(
        new CreateVolumeCommand({
          AvailabilityZone: ZONE,
          Size: 1,
          TagSpecifications: [
            {
              ResourceType: 'volume',
              Tags: [
                { Key: 'CSIVolumeName', Value: name },
                { Key: 'rexcsi.io/cluster', Value: world.clusterTag },
              ],
            },
          ],
        }),
      );
      return res.VolumeId!;
    };
    const [a, b] = [await twin(), await twin()];
    try {
      const seen = await observe(a, name, join(plugin.dir, 'nowhere'));
      expect(seen.named).toBe(2);
      expect(seen.strays).toEqual([b]);
    } finally {
      for (const id of [a, b]) await world.ec2.send(new DeleteVolumeCommand({ VolumeId: id }));
    }
    expect((await allVolumes()).filter((v) => !baseline.has(v.VolumeId!))).toEqual([]);
  });

  it.each(CASES)('dies at %s (%s flow), and the retried call completes it exactly once', async (point, flow, step) => {
    const slug = `${flow}-${point}`.replace(/[^a-z0-9]+/g, '-');
    const name = `crash-${slug}`;
    const staging = join(plugin.dir, `staging-${slug}`);
    await mkdir(staging);
    const cap = mountCapability('ext4');
    let csi = csiClients(plugin.endpoint);
    let volumeId = '';
    let devicePath = '';
    const opts = { deadlineMs: 60_000 };

    const call = async (s: Step, c: CsiClients): Promise<void> => {
      switch (s) {
        case 'create': {
          const { volume } = await c.controller.CreateVolume(
            { name, capacity_range: { required_bytes: GiB }, volume_capabilities: [cap] },
            opts,
          );
          if (volumeId !== '') expect(volume?.volume_id).toBe(volumeId);
          volumeId = volume!.volume_id;
          return;
        }
        case 'publish': {
          const res = await c.controller.ControllerPublishVolume(
            { volume_id: volumeId, node_id: world.instanceId, volume_capability: cap, readonly: false },
            opts,
          );
          const path = res.publish_context?.['devicePath'] ?? '';
          expect(path).toMatch(/^\/dev\/xvd[a-z]+$/);
          if (devicePath !== '') expect(path).toBe(devicePath);
          devicePath = path;
          return;
        }
        case 'unpublish':
          await c.controller.ControllerUnpublishVolume({ volume_id: volumeId, node_id: world.instanceId }, opts);
          devicePath = '';
          return;
        case 'stage': {
          // With a publish_context in the controller flow; without one (the node attaches) in the node flow.
          const publish_context: Record<string, string> = flow === 'controller' ? { devicePath } : {};
          await c.node.NodeStageVolume(
            { volume_id: volumeId, staging_target_path: staging, volume_capability: cap, publish_context },
            opts,
          );
          return;
        }
        case 'unstage':
          await c.node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, opts);
          return;
        case 'delete':
          await c.controller.DeleteVolume({ volume_id: volumeId }, opts);
      }
    };
    const steps = FLOWS[flow];
    const up = steps[1]!;
    const down = steps[2]!;

    // Data goes in once the volume is up; in the controller flow that means staged through the publish_context.
    const payload = randomBytes(2 * MiB);
    const onStaged = async (c: CsiClients, fn: () => Promise<void>) => {
      if (flow === 'controller') await call('stage', c);
      await fn();
      if (flow === 'controller') await call('unstage', c);
    };
    const writePayload = async () => {
      await writeFile(join(staging, 'payload.bin'), payload);
      await run('sync', []);
    };
    const expectPayload = async () => expect(sha256(await readFile(join(staging, 'payload.bin')))).toBe(sha256(payload));

    try {
      // DeleteVolume needs only a volume: the way up and down is covered by the other cases.
      const before = step === 'delete' ? ['create' as const] : steps.slice(0, steps.indexOf(step));
      for (const s of before) {
        await call(s, csi);
        if (s === up) await onStaged(csi, writePayload);
      }
      csi.close();

      await plugin.restart({ REXCSI_FAULT_POINT: point });
      csi = csiClients(plugin.endpoint);
      await expect(call(step, csi)).rejects.toThrow(/UNAVAILABLE|Connection dropped|socket closed|Received RST_STREAM/i);
      await plugin.waitForExit(10_000);
      expect(plugin.proc.signalCode).toBe('SIGKILL');
      expect(plugin.logs()).not.toMatch(/"level":50/);
      csi.close();

      await plugin.restart();
      csi = csiClients(plugin.endpoint);
      await call(step, csi); // the retry
      expect(await observe(volumeId, name, staging)).toEqual(expectedAfter(step, flow));
      await call(step, csi); // and it stays idempotent
      expect(await observe(volumeId, name, staging)).toEqual(expectedAfter(step, flow));

      // The volume works after the crash: data goes in on the way up, and what went in before reads back.
      if (step === up) {
        await onStaged(csi, async () => {
          await writePayload();
          await expectPayload();
        });
      } else if (step === down) {
        await call(up, csi);
        await onStaged(csi, expectPayload);
        await call(down, csi);
      }
      // The rest of the way down leaves nothing: no volume, attachment, tag, loop device or mount.
      const rest =
        step === 'create' ? ['delete' as const] : step === up ? [down, 'delete' as const] : step === down ? ['delete' as const] : [];
      for (const s of rest) await call(s, csi);
      expect(await observe(volumeId, name, staging)).toEqual(expectedAfter('delete', flow));
    } finally {
      csi.close();
      if (!plugin.proc.exitCode && plugin.proc.signalCode) await plugin.restart(); // a running plugin for the next case
    }
  });
});
