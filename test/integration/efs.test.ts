// The efs backend's control plane against moto_server (moto 5.2.1 over HTTP, started and stopped here):
// access points, gid allocation under concurrency, idempotency by name, deletes, static volume ids, and
// the mount source and options a node would use. The NFS mount itself cannot happen on this machine (no
// kernel NFS client); where a test needs a mounted file system, the simulated part is said in the test.

import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CreateVolumeArgs } from '../../src/backends/backend.js';
import { EfsApi } from '../../src/backends/efs/api.js';
import { EFS_NFS_OPTIONS, EfsBackend, removeInside, type EfsConfig } from '../../src/backends/efs/efs.js';
import { parseVolumeId } from '../../src/backends/efs/volume-id.js';
import { isCsiError, type ErrorCode } from '../../src/errors.js';
import { mounter, mountsAt, type Mounter } from '../../src/os/index.js';
import { csiClients, expectGrpcError } from '../helpers/client.js';
import { REGION, startEfsWorld, ZONE_WITH_TARGET, ZONE_WITHOUT_TARGET, type EfsWorld } from '../helpers/efs.js';
import { startPlugin } from '../helpers/plugin.js';
import { expectSanityPassed, killSanity, runCsiSanity, SANITY_TIMEOUT_MS } from '../helpers/sanity.js';
import { Cleanup, makeTempDir } from '../helpers/tmp.js';

let world: EfsWorld;
const cleanup = new Cleanup();

beforeAll(async () => {
  world = await startEfsWorld();
});

afterAll(async () => {
  await world?.stop();
});

afterEach(async () => {
  killSanity();
  await cleanup.run();
});

function backend(overrides: Partial<EfsConfig> = {}): EfsBackend {
  const api = new EfsApi({ region: REGION, endpoint: world.moto.endpoint });
  cleanup.defer(() => api.destroy());
  return new EfsBackend({
    api,
    nodeId: 'node-1',
    maxVolumesPerNode: 0,
    region: REGION,
    zone: ZONE_WITH_TARGET,
    efsUtils: false,
    ...overrides,
  });
}

function createArgs(name: string, parameters: Record<string, string>, capacityBytes = 0): CreateVolumeArgs {
  return {
    name,
    capacityBytes,
    limitBytes: 0,
    capabilities: [{ accessType: 'mount', accessMode: 'MULTI_NODE_MULTI_WRITER', fsType: '', mountFlags: [] }],
    accessType: 'mount',
    fsType: 'nfs4',
    parameters,
    secrets: {},
  };
}

async function expectRexError(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isCsiError(e), `expected a CsiError ${code}, got ${String(e)}`).toBe(true);
  if (!isCsiError(e)) return;
  expect(e.code, e.message).toBe(code);
  if (message) expect(e.message).toMatch(message);
}

describe('static volume ids', () => {
  it('accepts fs-xxxx, fs-xxxx:/sub/path and fs-xxxx::fsap-xxxx', () => {
    expect(parseVolumeId('fs-0123abcd')).toEqual({ fileSystemId: 'fs-0123abcd', path: '/' });
    expect(parseVolumeId('fs-0123abcd:/')).toEqual({ fileSystemId: 'fs-0123abcd', path: '/' });
    expect(parseVolumeId('fs-0123abcd:/data/team-a')).toEqual({ fileSystemId: 'fs-0123abcd', path: '/data/team-a' });
    expect(parseVolumeId('fs-0123abcd::fsap-0123456789abcdef0')).toEqual({
      fileSystemId: 'fs-0123abcd',
      path: '/',
      accessPointId: 'fsap-0123456789abcdef0',
    });
  });

  it.each([
    ['fs-', 'too short'],
    ['fs-0123ABCD', 'upper-case hex'],
    ['fs-0123abcd:data', 'relative path'],
    ['fs-0123abcd:/data/../etc', "'..'"],
    ['fs-0123abcd:/..', "'..' alone"],
    ['fs-0123abcd:/data/./x', "'.'"],
    ['fs-0123abcd:/data//x', 'empty component'],
    ['fs-0123abcd:/data/', 'trailing slash'],
    ['fs-0123abcd:/da ta', 'a space'],
    ['fs-0123abcd:/data,ro', 'a comma (mount option syntax)'],
    ['fs-0123abcd::', 'no access point'],
    ['fs-0123abcd::fsap-xyz', 'bad access point id'],
    ['fs-0123abcd::fsap-0123abcd:/x', 'access point with a path'],
    ['fs-0123abcd:/x::fsap-0123abcd', 'path before the access point'],
    [`fs-0123abcd:/${'a'.repeat(101)}`, 'a path over 100 characters'],
  ])('refuses %s (%s) with INVALID_ARGUMENT', async (id) => {
    expect(() => parseVolumeId(id)).toThrow(/not an EFS volume id/);
    const b = backend();
    await expectRexError(b.getVolume(id), 'INVALID_ARGUMENT');
    await expectRexError(b.volumeExists(id), 'INVALID_ARGUMENT');
    await expectRexError(b.deleteVolume(id), 'INVALID_ARGUMENT');
  });

  it('treats ids that are not EFS ids at all as missing volumes, and a missing file system as NOT_FOUND on the node', async () => {
    const b = backend();
    expect(await b.getVolume('fake-volume-id')).toBeUndefined();
    expect(await b.volumeExists('fake-volume-id')).toBe(false);
    await b.deleteVolume('fake-volume-id');
    expect(await b.getVolume('fs-00000000')).toBeUndefined();
    await expectRexError(
      b.openVolume({ volumeId: 'fs-00000000', publishContext: {}, volumeContext: {}, secrets: {}, readOnly: false }),
      'NOT_FOUND',
      /fs-00000000 does not exist/,
    );
  });

  it('reports an existing file system, a directory of it and a foreign access point as static volumes', async () => {
    const fs = await world.createFileSystem();
    const ap = await world.createForeignAccessPoint(fs);
    const b = backend();
    for (const id of [fs, `${fs}:/data/a`, `${fs}::${ap}`]) {
      const v = await b.getVolume(id);
      expect(v, id).toMatchObject({ id, name: '', capacityBytes: 0, accessType: 'mount' });
      expect(await b.volumeExists(id)).toBe(true);
    }
    // an access point id paired with another file system is not that volume
    const other = await world.createFileSystem();
    expect(await b.getVolume(`${other}::${ap}`)).toBeUndefined();
    // static volumes are never deleted; a foreign access point neither
    await expectRexError(b.deleteVolume(fs), 'FAILED_PRECONDITION', /never deletes/);
    await expectRexError(b.deleteVolume(`${fs}::${ap}`), 'FAILED_PRECONDITION', /not created by rexcsi/);
    expect((await world.accessPoints(fs)).map((a) => a.AccessPointId)).toEqual([ap]);
    // static volumes are not listed (only what CreateVolume made)
    expect((await b.listVolumes({ afterId: '', limit: 0 })).map((v) => v.id)).not.toContain(`${fs}::${ap}`);
  });
});

describe('CreateVolume: access points', () => {
  it('makes one access point per volume with the POSIX identity, directory and tags, and finds it by name', async () => {
    const fs = await world.createFileSystem();
    const b = backend();
    const params = { fileSystemId: fs, directoryPerms: '750', gidRangeStart: '2000', gidRangeEnd: '2010', basePath: '/dynamic' };
    const v = await b.createVolume(createArgs('pvc-1', params, 5 * 2 ** 30));
    expect(v.id).toMatch(new RegExp(`^${fs}::fsap-[0-9a-f]+$`));
    expect(v).toMatchObject({ name: 'pvc-1', capacityBytes: 5 * 2 ** 30, parameters: params, accessType: 'mount' });
    const [ap] = await world.accessPoints(fs);
    expect(ap!.PosixUser).toEqual({ Uid: 2000, Gid: 2000 });
    expect(ap!.RootDirectory).toEqual({ Path: '/dynamic/pvc-1', CreationInfo: { OwnerUid: 2000, OwnerGid: 2000, Permissions: '750' } });
    expect(ap!.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'Name', Value: 'pvc-1' },
        { Key: 'rexcsi.io/ready', Value: 'true' },
      ]),
    );

    // found again by name (what makes a repeated CreateVolume answer with the same volume) by a fresh backend
    const again = await backend().findVolumeByName('pvc-1');
    expect(again).toEqual(v);
    expect(await b.getVolume(v.id)).toEqual(v);
    expect(await b.findVolumeByName('pvc-2')).toBeUndefined();
    const listed = await b.listVolumes({ afterId: '', limit: 0 });
    expect(listed.filter((e) => e.id === v.id)).toEqual([v]);
  });

  it('uses a fixed uid and gid when given, and hashes a name that is not a clean directory name', async () => {
    const fs = await world.createFileSystem();
    const b = backend();
    const name = 'Mesos volume #1 (ü)';
    const v = await b.createVolume(createArgs(name, { fileSystemId: fs, directoryPerms: '700', uid: '1001', gid: '1002' }));
    const ap = (await world.accessPoints(fs))[0]!;
    expect(ap.PosixUser).toEqual({ Uid: 1001, Gid: 1002 });
    expect(ap.RootDirectory!.Path).toMatch(/^\/vol-[0-9a-f]{32}$/);
    expect((await b.findVolumeByName(name))?.id).toBe(v.id);
  });

  it.each([
    [{ directoryPerms: '700' }, /fileSystemId is required/],
    [{ fileSystemId: 'fs-nothex!', directoryPerms: '700' }, /not a file system id/],
    [{ fileSystemId: 'fs-0123abcd' }, /directoryPerms is required/],
    [{ fileSystemId: 'fs-0123abcd', directoryPerms: '799' }, /octal/],
    [{ fileSystemId: 'fs-0123abcd', directoryPerms: '700', gid: '5', gidRangeStart: '1' }, /exclude each other/],
    [{ fileSystemId: 'fs-0123abcd', directoryPerms: '700', gidRangeStart: '10', gidRangeEnd: '5' }, /above gidRangeEnd/],
    [{ fileSystemId: 'fs-0123abcd', directoryPerms: '700', uid: '-1' }, /whole number/],
    [{ fileSystemId: 'fs-0123abcd', directoryPerms: '700', basePath: '/a/../b' }, /'\.\.'/],
    [{ fileSystemId: 'fs-0123abcd', directoryPerms: '700', deleteAccessPointRootDir: 'yes' }, /true or false/],
  ])('refuses bad parameters %j with INVALID_ARGUMENT', async (params, message) => {
    await expectRexError(backend().createVolume(createArgs('bad', params)), 'INVALID_ARGUMENT', message);
  });

  it('is NOT_FOUND when the file system does not exist, and leaves nothing behind', async () => {
    await expectRexError(
      backend().createVolume(createArgs('v', { fileSystemId: 'fs-00000000', directoryPerms: '700' })),
      'NOT_FOUND',
      /fs-00000000/,
    );
  });

  it('never gives two volumes the same gid, within one controller and across two racing controllers', async () => {
    const fs = await world.createFileSystem();
    // Two backends with their own in-process locks stand for two controller processes.
    const [a, b] = [backend(), backend()];
    const params = { fileSystemId: fs, directoryPerms: '700', gidRangeStart: '3000', gidRangeEnd: '3039' };
    const names = Array.from({ length: 16 }, (_, i) => `race-${i}`);
    const volumes = await Promise.all(names.map((n, i) => (i % 2 ? a : b).createVolume(createArgs(n, params))));
    const aps = await world.accessPoints(fs);
    expect(aps).toHaveLength(16); // every loser of a race deleted its own access point
    const gids = aps.map((ap) => ap.PosixUser!.Gid!);
    expect(new Set(gids).size, `gids ${gids.join(',')}`).toBe(16);
    for (const g of gids) expect(g >= 3000 && g <= 3039).toBe(true);
    expect(new Set(volumes.map((v) => v.id)).size).toBe(16);
    // and every one is ready, listed, and found under its own name
    for (const v of volumes) expect((await a.findVolumeByName(v.name))?.id).toBe(v.id);
  });

  it('a race on one name ends with one volume', async () => {
    const fs = await world.createFileSystem();
    const params = { fileSystemId: fs, directoryPerms: '700' };
    const [x, y] = await Promise.all([
      backend().createVolume(createArgs('same', params)),
      backend().createVolume(createArgs('same', params)),
    ]);
    expect(x.id).toBe(y.id);
    expect(await world.accessPoints(fs)).toHaveLength(1);
  });

  it('is RESOURCE_EXHAUSTED when every gid of the range is taken, and reuses a freed gid', async () => {
    const fs = await world.createFileSystem();
    const b = backend();
    const params = { fileSystemId: fs, directoryPerms: '700', gidRangeStart: '4000', gidRangeEnd: '4001' };
    const v1 = await b.createVolume(createArgs('g1', params));
    await b.createVolume(createArgs('g2', params));
    await expectRexError(b.createVolume(createArgs('g3', params)), 'RESOURCE_EXHAUSTED', /4000 to 4001/);
    expect(await world.accessPoints(fs)).toHaveLength(2);
    await b.deleteVolume(v1.id);
    await b.createVolume(createArgs('g3', params));
    expect((await world.accessPoints(fs)).map((a) => a.PosixUser!.Gid).sort()).toEqual([4000, 4001]);
  });
});

describe('DeleteVolume', () => {
  it('removes the access point, and is OK when it is already gone', async () => {
    const fs = await world.createFileSystem();
    const b = backend();
    const v = await b.createVolume(createArgs('del-1', { fileSystemId: fs, directoryPerms: '700' }));
    await b.deleteVolume(v.id);
    expect(await world.accessPoints(fs)).toEqual([]);
    expect(await b.getVolume(v.id)).toBeUndefined();
    expect(await b.findVolumeByName('del-1')).toBeUndefined();
    await b.deleteVolume(v.id);
    await b.deleteVolume(`fs-00000000::fsap-00000000`);
  });

  it('with deleteAccessPointRootDir, mounts the file system root and removes only the volume directory', async () => {
    const fs = await world.createFileSystem();
    // SIMULATED: the NFS mount. This machine has no NFS client, so a local directory stands for the EFS
    // root and the recording mounter bind-mounts it where the NFS mount would go. Everything else (the
    // mount source and options, the path checks, the removal, the unmount) is the real code.
    const efsRoot = await makeTempDir('efs-root');
    cleanup.defer(() => import('../helpers/tmp.js').then((t) => t.removeTempDir(efsRoot)));
    const workDir = await makeTempDir('efs-work');
    cleanup.defer(() => import('../helpers/tmp.js').then((t) => t.removeTempDir(workDir)));
    const calls: { source: string; target: string; fsType: string; options: string[] }[] = [];
    const simulated: Mounter = {
      async mount(source, target, fsType, options) {
        calls.push({ source, target, fsType, options });
        await mounter.bindMount(efsRoot, target, { readOnly: false });
      },
      bindMount: (s, t, o) => mounter.bindMount(s, t, o),
      unmount: (t) => mounter.unmount(t),
    };
    const b = backend({ mounter: simulated, workDir });
    const params = { fileSystemId: fs, directoryPerms: '700', basePath: '/vols', deleteAccessPointRootDir: 'true' };
    const v = await b.createVolume(createArgs('rm-me', params));
    const keep = await b.createVolume(createArgs('keep-me', params));
    await mkdir(join(efsRoot, 'vols/rm-me/deep'), { recursive: true });
    await writeFile(join(efsRoot, 'vols/rm-me/deep/data'), 'x');
    await mkdir(join(efsRoot, 'vols/keep-me'), { recursive: true });

    await b.deleteVolume(v.id);
    const ip = await world.mountTargetIp(fs, ZONE_WITH_TARGET);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ source: `${ip}:/`, fsType: 'nfs4', options: EFS_NFS_OPTIONS });
    expect(calls[0]!.target.startsWith(`${workDir}/`)).toBe(true);
    expect(await readdir(join(efsRoot, 'vols'))).toEqual(['keep-me']);
    expect(await mountsAt(calls[0]!.target)).toEqual([]);
    expect(await readdir(workDir)).toEqual([]); // the temporary mount point is gone too
    expect((await world.accessPoints(fs)).map((a) => a.AccessPointId)).toEqual([parseVolumeId(keep.id).accessPointId]);
  });

  it('never deletes through a symlink out of the file system', async () => {
    const root = await makeTempDir('efs-root');
    const outside = await makeTempDir('outside');
    cleanup.defer(() =>
      import('../helpers/tmp.js').then(async (t) => {
        await t.removeTempDir(root);
        await t.removeTempDir(outside);
      }),
    );
    await writeFile(join(outside, 'precious'), 'data');
    await mkdir(join(outside, 'vol'));
    await symlink(outside, join(root, 'vols'));
    await expectRexError(removeInside(root, '/vols/vol'), 'FAILED_PRECONDITION', /outside the file system/);
    expect((await stat(join(outside, 'vol'))).isDirectory()).toBe(true);
    await removeInside(root, '/missing/vol'); // nothing there: nothing to do
  });
});

describe('what the node mounts (the mount itself is not possible here: no NFS client)', () => {
  const open = (b: EfsBackend, volumeId: string) =>
    b.openVolume({ volumeId, publishContext: {}, volumeContext: {}, secrets: {}, readOnly: false });

  it('NFSv4.1 with the EFS options from the mount target in the node zone', async () => {
    const fs = await world.createFileSystem({ mountTargetZones: [ZONE_WITH_TARGET, ZONE_WITHOUT_TARGET] });
    const ipA = await world.mountTargetIp(fs, ZONE_WITH_TARGET);
    const ipB = await world.mountTargetIp(fs, ZONE_WITHOUT_TARGET);
    expect(ipA).not.toBe(ipB);
    expect(await open(backend(), fs)).toEqual({
      kind: 'filesystem',
      source: `${ipA}:/`,
      fsType: 'nfs4',
      options: ['nfsvers=4.1', 'rsize=1048576', 'wsize=1048576', 'hard', 'timeo=600', 'retrans=2', 'noresvport'],
    });
    expect(await open(backend({ zone: ZONE_WITHOUT_TARGET }), `${fs}:/data/x`)).toMatchObject({ source: `${ipB}:/data/x`, fsType: 'nfs4' });
  });

  it("the file system's DNS name when no zone is configured", async () => {
    const fs = await world.createFileSystem();
    expect(await open(backend({ zone: undefined }), `${fs}:/sub`)).toMatchObject({
      source: `${fs}.efs.${REGION}.amazonaws.com:/sub`,
      fsType: 'nfs4',
      options: EFS_NFS_OPTIONS,
    });
  });

  it('FAILED_PRECONDITION naming the zone when the file system has no mount target there', async () => {
    const fs = await world.createFileSystem();
    const b = backend({ zone: ZONE_WITHOUT_TARGET });
    await expectRexError(
      open(b, fs),
      'FAILED_PRECONDITION',
      new RegExp(`no mount target in availability zone ${ZONE_WITHOUT_TARGET}.*mount targets in ${ZONE_WITH_TARGET}`),
    );
    expect(await b.locateVolume(fs)).toBeUndefined();
  });

  it('access points: mount -t efs with tls, the access point and the mount target IP; refused without efs-utils', async () => {
    const fs = await world.createFileSystem();
    const ip = await world.mountTargetIp(fs, ZONE_WITH_TARGET);
    const v = await backend().createVolume(createArgs('node-ap', { fileSystemId: fs, directoryPerms: '700' }));
    const ap = parseVolumeId(v.id).accessPointId!;
    await expectRexError(open(backend(), v.id), 'FAILED_PRECONDITION', /--efs-utils/);
    const withUtils = backend({ efsUtils: true });
    const source = await open(withUtils, v.id);
    expect(source).toEqual({
      kind: 'filesystem',
      source: `${fs}:/`,
      fsType: 'efs',
      options: ['tls', `accesspoint=${ap}`, `mounttargetip=${ip}`, ...EFS_NFS_OPTIONS],
      mountedAs: '127.0.0.1:/',
    });
    expect(await withUtils.locateVolume(v.id)).toEqual(source);
    await expectRexError(open(withUtils, `${fs}::fsap-00000000`), 'NOT_FOUND', /access point fsap-00000000/);
  });
});

describe('over gRPC (the plugin process with --backend efs)', () => {
  it('CreateVolume is idempotent by name, refuses other parameters under the same name, and validates static ids', async () => {
    const fs = await world.createFileSystem();
    const plugin = await startPlugin({
      backend: 'efs',
      name: 'efs-grpc',
      args: ['--region', REGION, '--zone', ZONE_WITH_TARGET, '--endpoint-url', world.moto.endpoint],
    });
    cleanup.defer(() => plugin.cleanup());
    const csi = csiClients(plugin.endpoint);
    cleanup.defer(() => csi.close());
    const cap = { access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' as const }, mount: { fs_type: '', mount_flags: [] } };
    const req = {
      name: 'grpc-1',
      volume_capabilities: [cap],
      parameters: { fileSystemId: fs, directoryPerms: '700' },
      capacity_range: { required_bytes: 2 ** 30 },
    };
    const first = await csi.controller.CreateVolume(req);
    const second = await csi.controller.CreateVolume(req);
    expect(second.volume!.volume_id).toBe(first.volume!.volume_id);
    expect(first.volume!.capacity_bytes).toBe(2 ** 30);
    expect(await world.accessPoints(fs)).toHaveLength(1);
    await expectGrpcError(
      csi.controller.CreateVolume({ ...req, parameters: { fileSystemId: fs, directoryPerms: '755' } }),
      'ALREADY_EXISTS',
    );
    await expectGrpcError(
      csi.controller.CreateVolume({ ...req, name: 'blk', volume_capabilities: [{ access_mode: cap.access_mode, block: {} }] }),
      'INVALID_ARGUMENT',
    );

    const caps = await csi.controller.ControllerGetCapabilities({});
    expect(caps.capabilities.map((c) => c.rpc?.type)).toEqual(
      expect.arrayContaining(['CREATE_DELETE_VOLUME', 'LIST_VOLUMES', 'GET_CAPACITY']),
    );
    expect(caps.capabilities.map((c) => c.rpc?.type)).not.toContain('PUBLISH_UNPUBLISH_VOLUME');
    const capacity = await csi.controller.GetCapacity({ volume_capabilities: [cap] });
    expect(capacity.available_capacity).toBe(2 ** 52);

    const valid = await csi.controller.ValidateVolumeCapabilities({ volume_id: `${fs}:/static`, volume_capabilities: [cap] });
    expect(valid.confirmed).not.toBeNull();
    await expectGrpcError(csi.controller.ValidateVolumeCapabilities({ volume_id: 'fs-00000000', volume_capabilities: [cap] }), 'NOT_FOUND');
    await expectGrpcError(
      csi.controller.ValidateVolumeCapabilities({ volume_id: `${fs}:/a/../b`, volume_capabilities: [cap] }),
      'INVALID_ARGUMENT',
    );
    await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: `${fs}:/a/../b`, staging_target_path: `${plugin.dir}/staging`, volume_capability: cap }),
      'INVALID_ARGUMENT',
    );

    await csi.controller.DeleteVolume({ volume_id: first.volume!.volume_id });
    expect(await world.accessPoints(fs)).toEqual([]);
  });
});

describe('csi-sanity v5.4.0, Controller and Identity specs (efs backend, moto)', () => {
  it(
    'passes with 0 failed',
    async () => {
      const fs = await world.createFileSystem();
      const plugin = await startPlugin({
        backend: 'efs',
        name: 'sanity-efs',
        args: ['--region', REGION, '--zone', ZONE_WITH_TARGET, '--endpoint-url', world.moto.endpoint],
      });
      cleanup.defer(() => plugin.cleanup());
      const parameters = join(plugin.dir, 'parameters.yaml');
      await writeFile(parameters, `fileSystemId: ${fs}\ndirectoryPerms: "700"\ngidRangeStart: "60000"\ngidRangeEnd: "60999"\n`);
      const result = await runCsiSanity({
        label: 'efs',
        plugin,
        args: [
          // The Node specs need an NFS mount, which this machine cannot make (no kernel NFS client).
          '-ginkgo.focus',
          'Controller Service|Identity Service',
          '-csi.testvolumeaccesstype',
          'mount',
          '-csi.testvolumeparameters',
          parameters,
        ],
        timeoutMs: 10 * 60_000,
      });
      expectSanityPassed('efs', result);
    },
    SANITY_TIMEOUT_MS,
  );
});
