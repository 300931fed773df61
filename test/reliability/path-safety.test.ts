// CO-given paths that lead outside where they say: a symlinked parent, a symlinked staging or target path,
// a path where something else is mounted. The plugin must refuse them and leave what is outside untouched.
// The "outside" here is a canary directory under the test root (with a tmpfs mounted in it), so a bug
// damages only the canary; test/hostile repeats this with generated paths inside the sandbox. On every
// backend (test/reliability/backends.ts): the checks are the node service's, the sources it mounts differ.
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mounter, mountsAt, run } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { forceCleanupUnder } from '../helpers/volumes.js';
import { backendsFor, type ReliabilityBackend, type RunningBackend } from './backends.js';

describe.each(backendsFor('path-safety').map((b) => [b.label, b] as const))(
  'paths that lead elsewhere (%s)',
  (_label, backend: ReliabilityBackend) => {
    let running: RunningBackend;
    let plugin: RunningBackend['plugin'];
    let csi: CsiClients;
    let canary: string;
    let canaryMount: string;
    let volumeId: string;
    let staging: string;
    const cap = backend.capability;
    const createReq = (name: string) => ({
      name,
      capacity_range: { required_bytes: backend.capacityBytes },
      volume_capabilities: [cap],
      parameters: running.parameters,
    });

    const canaryListing = async () => (await readdir(canary)).sort();

    beforeAll(async () => {
      running = await backend.start('paths');
      plugin = running.plugin;
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
      const { volume } = await csi.controller.CreateVolume(createReq('paths'));
      volumeId = volume!.volume_id;
      await csi.node.NodeStageVolume({ volume_id: volumeId, staging_target_path: staging, volume_capability: cap });
    }, backend.startTimeoutMs);

    afterAll(async () => {
      csi?.close();
      if (!running) return;
      await plugin.stop();
      await forceCleanupUnder(plugin.dir);
      await running.stop();
    }, 120_000);

    const expectCanaryIntact = async () => {
      expect(await canaryListing()).toEqual(['keep.txt', 'mnt']);
      expect((await mountsAt(canaryMount)).map((m) => m.source)).toEqual(['canary']);
    };

    it('refuses a staging path below a symlinked directory', async () => {
      const other = join(plugin.dir, 'roots', 'link-dir', 'mnt');
      const { volume } = await csi.controller.CreateVolume(createReq('paths-2'));
      await expectGrpcError(
        csi.node.NodeStageVolume({ volume_id: volume!.volume_id, staging_target_path: other, volume_capability: cap }),
        'INVALID_ARGUMENT',
      );
      await expectCanaryIntact();
      expect(await running.attachedDevices(volume!.volume_id)).toEqual([]);
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
      const { volume } = await csi.controller.CreateVolume(createReq('paths-3'));
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

    it('still unstages and deletes its own volume afterwards, the canary untouched', async () => {
      expect((await mountsAt(staging)).map((m) => m.fsType)).toEqual([backend.stagingFsType]);
      await csi.node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging });
      expect(await mountsAt(staging)).toEqual([]);
      await csi.controller.DeleteVolume({ volume_id: volumeId });
      expect((await running.artifacts(volumeId)).meta).toBe(false);
      await expectCanaryIntact();
      await mounter.unmount(canaryMount);
      expect(await mountsAt(canaryMount)).toEqual([]);
    });
  },
);
