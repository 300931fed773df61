// CO-given paths that lead outside where they say: a symlinked parent, a symlinked staging or target path,
// a path where something else is mounted. The plugin must refuse them and leave what is outside untouched.
// The "outside" here is a canary directory under the test root (with a tmpfs mounted in it), so a bug
// damages only the canary; test/hostile repeats this with generated paths inside the sandbox.
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mounter, mountsAt, run } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { forceCleanupUnder, MiB, mountCapability } from '../helpers/volumes.js';
import { reliabilityBackends } from './backends.js';

describe.each(reliabilityBackends())('paths that lead elsewhere ($name backend)', (backend) => {
  let plugin: PluginProcess;
  let csi: CsiClients;
  let canary: string;
  let canaryMount: string;
  let volumeId: string;
  let staging: string;
  const cap = mountCapability('ext4');

  const canaryListing = async () => (await readdir(canary)).sort();

  beforeAll(async () => {
    plugin = await backend.start('paths');
    csi = csiClients(plugin.endpoint);
    canary = join(plugin.dir, 'outside');
    canaryMount = join(canary, 'mnt');
    await mkdir(canaryMount, { recursive: true });
    await writeFile(join(canary, 'keep.txt'), 'canary');
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'canary', canaryMount]);
    await mkdir(join(plugin.dir, 'roots'));
    await symlink(canary, join(plugin.dir, 'roots', 'link-dir'));
    await symlink(canaryMount, join(plugin.dir, 'roots', 'link-mnt'));
    staging = join(plugin.dir, 'roots', 'staging');
    await mkdir(staging);
    const { volume } = await csi.controller.CreateVolume({
      name: 'paths',
      capacity_range: { required_bytes: 16 * MiB },
      volume_capabilities: [cap],
    });
    volumeId = volume!.volume_id;
    await csi.node.NodeStageVolume({ volume_id: volumeId, staging_target_path: staging, volume_capability: cap });
  });

  afterAll(async () => {
    csi?.close();
    if (!plugin) return;
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  });

  const expectCanaryIntact = async () => {
    expect(await canaryListing()).toEqual(['keep.txt', 'mnt']);
    expect((await mountsAt(canaryMount)).map((m) => m.source)).toEqual(['canary']);
  };

  it('refuses a staging path below a symlinked directory', async () => {
    const other = join(plugin.dir, 'roots', 'link-dir', 'mnt');
    const { volume } = await csi.controller.CreateVolume({
      name: 'paths-2',
      capacity_range: { required_bytes: 16 * MiB },
      volume_capabilities: [cap],
    });
    await expectGrpcError(
      csi.node.NodeStageVolume({ volume_id: volume!.volume_id, staging_target_path: other, volume_capability: cap }),
      'INVALID_ARGUMENT',
    );
    await expectCanaryIntact();
    expect(await backend.attachedDevices(plugin, volume!.volume_id)).toEqual([]);
    await csi.controller.DeleteVolume({ volume_id: volume!.volume_id });
  });

  it('refuses a target path below a symlinked directory, creating nothing there', async () => {
    const target = join(plugin.dir, 'roots', 'link-dir', 'new-target');
    await expectGrpcError(
      csi.node.NodePublishVolume({ volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: cap }),
      'INVALID_ARGUMENT',
    );
    await expectCanaryIntact();
  });

  it('refuses to unstage through a staging path that is a symlink to another mount', async () => {
    await expectGrpcError(
      csi.node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: join(plugin.dir, 'roots', 'link-mnt') }),
      'INVALID_ARGUMENT',
    );
    await expectCanaryIntact();
  });

  it('refuses to unstage a staging path where another filesystem is mounted', async () => {
    const { volume } = await csi.controller.CreateVolume({
      name: 'paths-3',
      capacity_range: { required_bytes: 16 * MiB },
      volume_capabilities: [cap],
    });
    const err = await expectGrpcError(
      csi.node.NodeUnstageVolume({ volume_id: volume!.volume_id, staging_target_path: canaryMount }),
      'FAILED_PRECONDITION',
    );
    expect(err.details).toMatch(/not volume/);
    await expectCanaryIntact();
    await csi.controller.DeleteVolume({ volume_id: volume!.volume_id });
  });

  it('refuses to unpublish through a target path that is a symlink to another mount', async () => {
    await expectGrpcError(
      csi.node.NodeUnpublishVolume({ volume_id: volumeId, target_path: join(plugin.dir, 'roots', 'link-mnt') }),
      'INVALID_ARGUMENT',
    );
    await expectCanaryIntact();
    await expectGrpcError(
      csi.node.NodeUnpublishVolume({ volume_id: volumeId, target_path: join(plugin.dir, 'roots', 'link-dir', 'mnt') }),
      'INVALID_ARGUMENT',
    );
    await expectCanaryIntact();
  });

  it('still unstages its own volume afterwards', async () => {
    await csi.node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: volumeId });
    await mounter.unmount(canaryMount);
  });
});
