// A test world for the ebs backend: moto_server (the real EC2 API emulator) with instances made by
// RunInstances, the attach simulator for the node instance (see ebs-sim.ts: the simulated part), and the
// plugin started with flags that point it at both.
import { DescribeVolumesCommand, EC2Client, RunInstancesCommand, StopInstancesCommand, type Volume } from '@aws-sdk/client-ec2';
import { AttachSimulator } from './ebs-sim.js';
import { startMoto, type MotoServer } from './moto.js';
import { startPlugin, type PluginProcess, type StartPluginOptions } from './plugin.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export const REGION = 'us-east-1';
export const ZONE = 'us-east-1a';
export const ZONE_KEY = 'topology.rexcsi.io/zone';
export const GiB = 1024 ** 3;

export interface EbsWorld {
  moto: MotoServer;
  ec2: EC2Client;
  /** the node the plugin runs on (simulated attachments) */
  instanceId: string;
  /** another running instance in the same zone */
  otherInstanceId: string;
  sim: AttachSimulator;
  dir: string;
  clusterTag: string;
  /** the flags that point a plugin at moto and the simulator */
  pluginArgs(extra?: string[]): string[];
  startPlugin(opts?: { args?: string[]; mode?: StartPluginOptions['mode']; name?: string }): Promise<PluginProcess>;
  /** every volume of this world's cluster tag, as moto has them */
  managedVolumes(): Promise<Volume[]>;
  describe(id: string): Promise<Volume | undefined>;
  runInstance(state?: 'running' | 'stopped'): Promise<string>;
  stop(): Promise<void>;
}

export async function startEbsWorld(name = 'ebs'): Promise<EbsWorld> {
  const moto = await startMoto();
  const env = moto.env();
  const ec2 = new EC2Client({
    endpoint: moto.endpoint,
    region: REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  const dir = await makeTempDir(name);
  const runInstance = async (state: 'running' | 'stopped' = 'running'): Promise<string> => {
    const res = await ec2.send(
      new RunInstancesCommand({
        ImageId: 'ami-12c6146b',
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 'm5.large',
        Placement: { AvailabilityZone: ZONE },
      }),
    );
    const id = res.Instances![0]!.InstanceId!;
    if (state === 'stopped') await ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    return id;
  };
  const instanceId = await runInstance();
  const otherInstanceId = await runInstance();
  const sim = new AttachSimulator(ec2, instanceId, dir);
  await sim.start();
  const clusterTag = `test-${Math.random().toString(36).slice(2, 8)}`;
  const world: EbsWorld = {
    moto,
    ec2,
    instanceId,
    otherInstanceId,
    sim,
    dir,
    clusterTag,
    pluginArgs: (extra = []) => [
      '--endpoint-url',
      moto.endpoint,
      '--region',
      REGION,
      '--instance-id',
      instanceId,
      '--zone',
      ZONE,
      '--cluster-tag',
      clusterTag,
      '--by-id-dir',
      sim.byIdDir,
      '--sys-root',
      sim.sysRoot,
      '--wait-timeout',
      '30',
      '--device-timeout',
      '15',
      ...extra,
    ],
    startPlugin: (opts = {}) =>
      startPlugin({
        backend: 'ebs',
        name: opts.name ?? 'ebs-plugin',
        env,
        args: world.pluginArgs(opts.args),
        ...(opts.mode ? { mode: opts.mode } : {}),
      }),
    async managedVolumes() {
      const res = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:rexcsi.io/cluster', Values: [clusterTag] }] }));
      return (res.Volumes ?? []).filter((v) => v.State !== 'deleting' && v.State !== 'deleted');
    },
    async describe(id) {
      const res = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [id] }] }));
      return res.Volumes?.[0];
    },
    runInstance,
    async stop() {
      await sim.stop();
      ec2.destroy();
      await moto.stop();
      await removeTempDir(dir);
    },
  };
  return world;
}

/** Waits until the simulator shows (or no longer shows) the volume's device. */
export async function waitForSim(world: EbsWorld, volumeId: string, present: boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await world.sim.sync();
    if ((world.sim.deviceOf(volumeId) !== undefined) === present) return;
    if (Date.now() > deadline) throw new Error(`simulator: ${volumeId} still ${present ? 'absent' : 'present'} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
