// The loop backend end to end over the real unix socket: real sparse files, loop devices, mkfs, mounts.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { blockCapability, forceCleanupUnder, MiB, mountCapability } from '../helpers/volumes.js';
import { attachLoopDevice, detachLoopDevice, loopDevicesOf, probeSignatures, run } from '../../src/os/index.js';
import { isUnder } from '../helpers/leaks.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p !== '' && isUnder(p, dir));
}

describe.each(['ext4', 'xfs'])('loop backend lifecycle (%s)', (fsType) => {
  let plugin: PluginProcess;
  let csi: CsiClients;
  let staging: string;
  let targetParent: string;

  beforeEach(async () => {
    plugin = await startPlugin({ name: `lifecycle-${fsType}` });
    csi = csiClients(plugin.endpoint);
    staging = join(plugin.dir, 'staging');
    targetParent = join(plugin.dir, 'pods');
    await mkdir(staging);
    await mkdir(targetParent);
  });

  afterEach(async () => {
    csi.close();
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  });

  it('keeps data written through one target across unpublish, unstage, restage and republish', async () => {
    const size = fsType === 'xfs' ? 300 * MiB : 64 * MiB;
    const { volume } = await csi.controller.CreateVolume({
      name: `data-${fsType}`,
      capacity_range: { required_bytes: size },
      volume_capabilities: [mountCapability(fsType)],
    });
    expect(volume?.capacity_bytes).toBe(size);
    expect(volume?.volume_context).toEqual({ fsType });
    expect(volume?.accessible_topology).toEqual([{ segments: { 'topology.rexcsi.io/node': plugin.nodeId } }]);
    const id = volume!.volume_id;
    const cap = mountCapability(fsType);
    const target = join(targetParent, 'target');

    await csi.node.NodeStageVolume({
      volume_id: id,
      staging_target_path: staging,
      volume_capability: cap,
      volume_context: volume!.volume_context,
    });
    await csi.node.NodePublishVolume({ volume_id: id, staging_target_path: staging, target_path: target, volume_capability: cap });
    expect((await stat(target)).isDirectory()).toBe(true);
    const payload = Buffer.from(`hello from ${fsType} `.repeat(10_000));
    await writeFile(join(target, 'file.bin'), payload);
    await run('sync', []);

    // The published volume is reported published on this node, and its stats are real.
    const listed = await csi.controller.ListVolumes({});
    expect(listed.entries.find((e) => e.volume?.volume_id === id)?.status?.published_node_ids).toEqual([plugin.nodeId]);
    const stats = await csi.node.NodeGetVolumeStats({ volume_id: id, volume_path: target });
    expect(stats.volume_condition).toEqual({ abnormal: false, message: 'volume is healthy' });
    const bytes = stats.usage.find((u) => u.unit === 'BYTES')!;
    expect(bytes.total).toBeGreaterThan(size / 2);
    expect(bytes.used).toBeGreaterThan(payload.length / 2);

    await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    expect(await mountsUnder(plugin.dir)).toEqual([]);
    expect(await loopDevicesOf(join(plugin.poolDir, 'volumes', `${id}.img`))).toEqual([]);

    // Stage again: the filesystem is found, not reformatted, and the data is intact.
    const target2 = join(targetParent, 'target2');
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
    await csi.node.NodePublishVolume({
      volume_id: id,
      staging_target_path: staging,
      target_path: target2,
      volume_capability: cap,
      readonly: true,
    });
    expect(sha256(await readFile(join(target2, 'file.bin')))).toBe(sha256(payload));
    await expect(writeFile(join(target2, 'other'), 'x')).rejects.toThrow(/EROFS/);

    await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target2 });
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: id });
    expect(await readdir(join(plugin.poolDir, 'volumes'))).toEqual([]);
  });
});

describe('loop backend', () => {
  let plugin: PluginProcess;
  let csi: CsiClients;

  beforeEach(async () => {
    plugin = await startPlugin({ name: 'loop' });
    csi = csiClients(plugin.endpoint);
  });

  afterEach(async () => {
    csi.close();
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  });

  // The node suites run once per mounter (REXCSI_MOUNTER=syscall or mount); this proves the run is the one it says.
  it('mounts with the mounter REXCSI_MOUNTER chose, and says so in GetPluginInfo', async () => {
    const expected = process.env.REXCSI_MOUNTER === 'mount' ? 'mount(8)' : 'syscall';
    const info = await csi.identity.GetPluginInfo({});
    expect(info.manifest).toMatchObject({ backend: 'loop', mounter: expected });
  });

  it('finds staged volumes from the kernel after a restart between stage and publish', async () => {
    const staging = join(plugin.dir, 'staging');
    await mkdir(staging);
    const cap = mountCapability('ext4');
    const { volume } = await csi.controller.CreateVolume({
      name: 'restart',
      capacity_range: { required_bytes: 32 * MiB },
      volume_capabilities: [cap],
    });
    const id = volume!.volume_id;
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
    await writeFile(join(staging, 'before-restart'), 'kept');

    csi.close();
    plugin.kill('SIGKILL'); // no graceful shutdown: nothing can have been saved on the way out
    await plugin.waitForExit();
    await plugin.restart();
    csi = csiClients(plugin.endpoint);

    // Staging again is idempotent (the mount is recognised), DeleteVolume knows the volume is in use.
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
    await expectGrpcError(csi.controller.DeleteVolume({ volume_id: id }), 'FAILED_PRECONDITION');
    const target = join(plugin.dir, 'target');
    await csi.node.NodePublishVolume({ volume_id: id, staging_target_path: staging, target_path: target, volume_capability: cap });
    expect(await readFile(join(target, 'before-restart'), 'utf8')).toBe('kept');

    // Repeating every call is harmless (idempotency), and an incompatible publish is ALREADY_EXISTS.
    await csi.node.NodePublishVolume({ volume_id: id, staging_target_path: staging, target_path: target, volume_capability: cap });
    await expectGrpcError(
      csi.node.NodePublishVolume({
        volume_id: id,
        staging_target_path: staging,
        target_path: target,
        volume_capability: cap,
        readonly: true,
      }),
      'ALREADY_EXISTS',
    );
    await expectGrpcError(csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }), 'FAILED_PRECONDITION');
    for (let i = 0; i < 2; i++) await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
    for (let i = 0; i < 2; i++) await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    for (let i = 0; i < 2; i++) await csi.controller.DeleteVolume({ volume_id: id });
  });

  it('refuses to format a device that carries a foreign filesystem, and leaves it intact', async () => {
    const staging = join(plugin.dir, 'staging');
    await mkdir(staging);
    const { volume } = await csi.controller.CreateVolume({
      name: 'foreign',
      capacity_range: { required_bytes: 32 * MiB },
      volume_capabilities: [mountCapability('ext4')],
    });
    const id = volume!.volume_id;
    // Someone put a foreign signature on the backing file out of band: a swap header.
    const image = join(plugin.poolDir, 'volumes', `${id}.img`);
    const dev = await attachLoopDevice(image);
    try {
      await run('mkswap', [dev]);
    } finally {
      await detachLoopDevice(dev);
    }
    const err = await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: mountCapability('ext4') }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toMatch(/swap/);
    expect(await mountsUnder(plugin.dir)).toEqual([]);
    expect(await loopDevicesOf(image)).toEqual([]); // the failed stage detached what it attached
    const check = await attachLoopDevice(image);
    try {
      expect((await probeSignatures(check)).map((s) => s.type)).toEqual(['swap']);
    } finally {
      await detachLoopDevice(check);
    }
    await csi.controller.DeleteVolume({ volume_id: id });
  });

  it('never formats a block volume staged later as a mount volume', async () => {
    const staging = join(plugin.dir, 'staging');
    await mkdir(staging);
    const { volume } = await csi.controller.CreateVolume({
      name: 'raw',
      capacity_range: { required_bytes: 16 * MiB },
      volume_capabilities: [blockCapability()],
    });
    const id = volume!.volume_id;
    const err = await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: mountCapability('ext4') }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toMatch(/refusing to format/);
    const image = join(plugin.poolDir, 'volumes', `${id}.img`);
    const dev = await attachLoopDevice(image);
    try {
      expect(await probeSignatures(dev)).toEqual([]);
    } finally {
      await detachLoopDevice(dev);
    }
    await csi.controller.DeleteVolume({ volume_id: id });
  });

  it('publishes a block volume as a device file at the target', async () => {
    const staging = join(plugin.dir, 'staging');
    await mkdir(staging);
    const cap = blockCapability();
    const { volume } = await csi.controller.CreateVolume({
      name: 'blk',
      capacity_range: { required_bytes: 8 * MiB },
      volume_capabilities: [cap],
    });
    const id = volume!.volume_id;
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: cap });
    const target = join(plugin.dir, 'dev');
    await csi.node.NodePublishVolume({ volume_id: id, staging_target_path: staging, target_path: target, volume_capability: cap });
    expect((await stat(target)).isBlockDevice()).toBe(true);
    await writeFile(target, Buffer.alloc(4096, 7));
    const stats = await csi.node.NodeGetVolumeStats({ volume_id: id, volume_path: target });
    expect(stats.usage).toEqual([expect.objectContaining({ unit: 'BYTES', total: 8 * MiB })]);
    await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: id });
  });

  it('answers bad requests with precise codes', async () => {
    const cap = mountCapability();
    await expectGrpcError(csi.controller.CreateVolume({ name: '', volume_capabilities: [cap] }), 'INVALID_ARGUMENT');
    const unknown = await expectGrpcError(
      csi.controller.CreateVolume({ name: 'p', volume_capabilities: [cap], parameters: { colour: 'red' } }),
      'INVALID_ARGUMENT',
    );
    expect(unknown.details).toMatch(/"colour"/);
    await expectGrpcError(
      csi.controller.CreateVolume({ name: 'big', volume_capabilities: [cap], capacity_range: { required_bytes: 2 ** 52 } }),
      'OUT_OF_RANGE',
    );
    await csi.controller.CreateVolume({ name: 'same', volume_capabilities: [cap], capacity_range: { required_bytes: 4 * MiB } });
    await expectGrpcError(
      csi.controller.CreateVolume({ name: 'same', volume_capabilities: [cap], capacity_range: { required_bytes: 8 * MiB } }),
      'ALREADY_EXISTS',
    );
    await expectGrpcError(csi.controller.ListVolumes({ starting_token: 'nope' }), 'ABORTED');
    await expectGrpcError(
      csi.controller.ValidateVolumeCapabilities({ volume_id: 'vol-000000000000000000000000', volume_capabilities: [cap] }),
      'NOT_FOUND',
    );
    // Hostile ids are not paths: deleting "../../etc" is a no-op on a volume that cannot exist.
    await csi.controller.DeleteVolume({ volume_id: '../../../../../../etc' });
    expect((await stat('/etc')).isDirectory()).toBe(true);
    await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: '../../etc', staging_target_path: '/tmp', volume_capability: cap }),
      'NOT_FOUND',
    );
    const { volume } = await csi.controller.CreateVolume({
      name: 'same',
      volume_capabilities: [cap],
      capacity_range: { required_bytes: 4 * MiB },
    });
    await csi.controller.DeleteVolume({ volume_id: volume!.volume_id });
  });

  // (A stale socket left by a SIGKILLed plugin is replaced: the restart test above restarts on it.)
  it('refuses, in one line, an endpoint that is a live socket or another file, and leaves the file alone', async () => {
    const dir = plugin.dir;
    const { spawnSync } = await import('node:child_process');
    const serve = (endpoint: string) =>
      spawnSync(process.execPath, ['dist/main.js', 'serve', '--pool-dir', join(dir, 'p2')], {
        env: { ...process.env, CSI_ENDPOINT: `unix://${endpoint}` },
        encoding: 'utf8',
        timeout: 20_000,
      });
    const live = serve(plugin.socketPath);
    expect(live.status).toBe(2);
    expect(live.stderr).toMatch(/is served by another running process/);
    const notSocket = join(dir, 'file.sock');
    await writeFile(notSocket, 'precious');
    const r = serve(notSocket);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/is not a socket; not touching it/);
    expect(await readFile(notSocket, 'utf8')).toBe('precious');
  });
});
