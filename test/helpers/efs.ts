// An EFS world in moto_server for the efs tests: a VPC with a subnet in us-east-1a and one in us-east-1b,
// file systems, mount targets, and access points made behind the plugin's back (as an admin would).
//
//   const world = await startEfsWorld();          // moto started; process.env points the SDK at it
//   const fs = await world.createFileSystem();     // fs-xxxxxxxx, with a mount target in us-east-1a
//   ...
//   await world.stop();                            // moto stopped, env restored

import { CreateSubnetCommand, CreateVpcCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateAccessPointCommand,
  CreateFileSystemCommand,
  CreateMountTargetCommand,
  DescribeAccessPointsCommand,
  DescribeMountTargetsCommand,
  EFSClient,
  type AccessPointDescription,
} from '@aws-sdk/client-efs';
import { randomUUID } from 'node:crypto';
import { startMoto, type MotoServer } from './moto.js';

export const REGION = 'us-east-1';
export const ZONE_WITH_TARGET = 'us-east-1a';
export const ZONE_WITHOUT_TARGET = 'us-east-1b';

export interface EfsWorld {
  moto: MotoServer;
  efs: EFSClient;
  /** subnet ids by zone */
  subnets: Record<string, string>;
  /** A new file system; with a mount target in ZONE_WITH_TARGET unless told otherwise. Resolves to its id. */
  createFileSystem(opts?: { mountTargetZones?: string[] }): Promise<string>;
  /** The mount target's IP of a file system in a zone (as the API reports it). */
  mountTargetIp(fileSystemId: string, zone: string): Promise<string>;
  /** An access point made directly through the API, with no rexcsi tags. */
  createForeignAccessPoint(fileSystemId: string): Promise<string>;
  accessPoints(fileSystemId: string): Promise<AccessPointDescription[]>;
  stop(): Promise<void>;
}

export async function startEfsWorld(): Promise<EfsWorld> {
  const moto = await startMoto();
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(moto.env())) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const clientConfig = { region: REGION, endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const efs = new EFSClient(clientConfig);
  const ec2 = new EC2Client(clientConfig);
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.40.0.0/16' }));
  const vpcId = vpc.Vpc!.VpcId!;
  const subnets: Record<string, string> = {};
  let third = 1;
  for (const zone of [ZONE_WITH_TARGET, ZONE_WITHOUT_TARGET]) {
    const s = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.40.${third++}.0/24`, AvailabilityZone: zone }));
    subnets[zone] = s.Subnet!.SubnetId!;
  }
  ec2.destroy();

  const world: EfsWorld = {
    moto,
    efs,
    subnets,
    async createFileSystem(opts = {}) {
      const fs = await efs.send(
        new CreateFileSystemCommand({ CreationToken: randomUUID(), Tags: [{ Key: 'Name', Value: 'rexcsi-test' }] }),
      );
      for (const zone of opts.mountTargetZones ?? [ZONE_WITH_TARGET]) {
        await efs.send(new CreateMountTargetCommand({ FileSystemId: fs.FileSystemId!, SubnetId: subnets[zone]! }));
      }
      return fs.FileSystemId!;
    },
    async mountTargetIp(fileSystemId, zone) {
      const out = await efs.send(new DescribeMountTargetsCommand({ FileSystemId: fileSystemId }));
      const mt = (out.MountTargets ?? []).find((m) => m.AvailabilityZoneName === zone);
      if (!mt?.IpAddress) throw new Error(`no mount target of ${fileSystemId} in ${zone}`);
      return mt.IpAddress;
    },
    async createForeignAccessPoint(fileSystemId) {
      const ap = await efs.send(
        new CreateAccessPointCommand({
          FileSystemId: fileSystemId,
          ClientToken: randomUUID(),
          PosixUser: { Uid: 1000, Gid: 1000 },
          RootDirectory: { Path: '/shared' },
        }),
      );
      return ap.AccessPointId!;
    },
    async accessPoints(fileSystemId) {
      const out = await efs.send(new DescribeAccessPointsCommand({ FileSystemId: fileSystemId }));
      return out.AccessPoints ?? [];
    },
    async stop() {
      efs.destroy();
      await moto.stop();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    },
  };
  return world;
}
