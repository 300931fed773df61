// NodeStageVolume of the efs backend through the real node service, the real EFS API calls (moto) and the
// real mount layer, down to the mount(8) command line. SIMULATED: mount(8) itself, for the one command
// `mount -t nfs4|efs ...`. This machine has no kernel NFS client, so the call is recorded instead of run;
// every other command (and every other mount) runs for real. The test asserts the exact argv the node would
// execute, and that a failed stage leaves nothing behind.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

const recorded: string[][] = [];
vi.mock('../../src/os/exec.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/os/exec.js')>();
  return {
    ...real,
    run: async (cmd: string, args: string[], opts?: Parameters<typeof real.run>[2]) => {
      if (cmd === 'mount' && (args.includes('nfs4') || args.includes('efs'))) {
        recorded.push([cmd, ...args]);
        return { stdout: '', stderr: '', exitCode: 0 };
      }
      return real.run(cmd, args, opts);
    },
  };
});

// test/setup.ts loaded the OS layer before this file's mock existed: load a fresh module graph that uses it.
vi.resetModules();
const { EfsApi } = await import('../../src/backends/efs/api.js');
const { EfsBackend } = await import('../../src/backends/efs/efs.js');
const { NodeService } = await import('../../src/node/node.js');
const { Inflight } = await import('../../src/csi/inflight.js');
const { CsiError } = await import('../../src/errors.js');
const { REGION, startEfsWorld, ZONE_WITH_TARGET, ZONE_WITHOUT_TARGET } = await import('../helpers/efs.js');
const { Cleanup, makeTempDir, removeTempDir } = await import('../helpers/tmp.js');
type World = Awaited<ReturnType<typeof startEfsWorld>>;

let world: World;
const cleanup = new Cleanup();

beforeAll(async () => {
  world = await startEfsWorld();
});
afterAll(async () => {
  await world?.stop();
});
afterEach(async () => {
  recorded.length = 0;
  await cleanup.run();
});

function nodeService(zone: string, efsUtils: boolean) {
  const api = new EfsApi({ region: REGION, endpoint: world.moto.endpoint });
  cleanup.defer(() => api.destroy());
  const backend = new EfsBackend({ api, nodeId: 'node-1', maxVolumesPerNode: 0, region: REGION, zone, efsUtils });
  return { backend, node: new NodeService(backend, new Inflight()) };
}

async function stagingDir(): Promise<string> {
  const dir = await makeTempDir('efs-node');
  cleanup.defer(() => removeTempDir(dir));
  const staging = join(dir, 'staging');
  await mkdir(staging);
  return staging;
}

const capability = (mode: 'MULTI_NODE_MULTI_WRITER' | 'MULTI_NODE_READER_ONLY', flags: string[] = []) => ({
  access_mode: { mode },
  mount: { fs_type: '', mount_flags: flags, volume_mount_group: '' },
  access_type: 'mount' as const,
});

const stageRequest = (volume_id: string, staging_target_path: string, cap: ReturnType<typeof capability>) => ({
  volume_id,
  staging_target_path,
  volume_capability: cap,
  publish_context: {},
  volume_context: {},
  secrets: {},
});

describe('NodeStageVolume (efs): the mount(8) command the node runs', () => {
  it('a directory of a file system: NFSv4.1 from the mount target in the node zone, with the CO mount flags', async () => {
    const fs = await world.createFileSystem();
    const ip = await world.mountTargetIp(fs, ZONE_WITH_TARGET);
    const staging = await stagingDir();
    const { node } = nodeService(ZONE_WITH_TARGET, false);
    await node.stage(stageRequest(`${fs}:/team/a`, staging, capability('MULTI_NODE_MULTI_WRITER', ['noatime'])));
    expect(recorded).toEqual([
      [
        'mount',
        '-t',
        'nfs4',
        '-o',
        'nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,noatime',
        `${ip}:/team/a`,
        staging,
      ],
    ]);
  });

  it('an access point with --efs-utils: mount -t efs with tls, accesspoint and mounttargetip, read-only for a reader mode', async () => {
    const fs = await world.createFileSystem();
    const ip = await world.mountTargetIp(fs, ZONE_WITH_TARGET);
    const { backend, node } = nodeService(ZONE_WITH_TARGET, true);
    const v = await backend.createVolume({
      name: 'node-ap',
      capacityBytes: 0,
      limitBytes: 0,
      capabilities: [],
      accessType: 'mount',
      fsType: 'nfs4',
      parameters: { fileSystemId: fs, directoryPerms: '700' },
      secrets: {},
    });
    const ap = v.id.split('::')[1]!;
    const staging = await stagingDir();
    await node.stage(stageRequest(v.id, staging, capability('MULTI_NODE_READER_ONLY')));
    expect(recorded).toEqual([
      [
        'mount',
        '-t',
        'efs',
        '-o',
        `tls,accesspoint=${ap},mounttargetip=${ip},nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,ro`,
        `${fs}:/`,
        staging,
      ],
    ]);
  });

  it('FAILED_PRECONDITION naming the zone, and NOT_FOUND for a missing file system, before any mount', async () => {
    const fs = await world.createFileSystem();
    const staging = await stagingDir();
    const stage = (zone: string, id: string) =>
      nodeService(zone, false).node.stage(stageRequest(id, staging, capability('MULTI_NODE_MULTI_WRITER')));
    await expect(stage(ZONE_WITHOUT_TARGET, fs)).rejects.toSatisfy(
      (e: unknown) =>
        e instanceof CsiError && e.code === 'FAILED_PRECONDITION' && e.message.includes(`availability zone ${ZONE_WITHOUT_TARGET}`),
    );
    await expect(stage(ZONE_WITH_TARGET, 'fs-00000000')).rejects.toSatisfy((e: unknown) => e instanceof CsiError && e.code === 'NOT_FOUND');
    expect(recorded).toEqual([]);
  });
});
