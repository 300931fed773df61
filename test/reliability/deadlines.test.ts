// Deadlines: a call whose caller gives up (DEADLINE_EXCEEDED) keeps running in the plugin and completes;
// the CO's retry joins it while it runs, or finds its result afterwards, and never starts a second one.
// The backend is made slow with REXCSI_FAULT_DELAY (src/faults.ts), since a real slow disk cannot be ordered.
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { forceCleanupUnder, MiB, mountCapability } from '../helpers/volumes.js';
import { reliabilityBackends } from './backends.js';

const SLOW_MS = 2500;

describe.each(reliabilityBackends())('deadlines ($name backend)', (backend) => {
  let plugin: PluginProcess;
  let csi: CsiClients;
  const cap = mountCapability('ext4');

  beforeAll(async () => {
    plugin = await backend.start('deadlines', {
      env: { REXCSI_FAULT_DELAY: `loop.create.after-file:${SLOW_MS},node.stage.after-format:${SLOW_MS}` },
    });
    csi = csiClients(plugin.endpoint);
  });

  afterAll(async () => {
    csi?.close();
    if (!plugin) return;
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  });

  it('a CreateVolume past its deadline completes, and the retry joins it instead of creating again', async () => {
    const req = { name: 'slow-create', capacity_range: { required_bytes: 16 * MiB }, volume_capabilities: [cap] };
    const started = Date.now();
    await expectGrpcError(csi.controller.CreateVolume(req, { deadlineMs: 300 }), 'DEADLINE_EXCEEDED');
    const { volume } = await csi.controller.CreateVolume(req); // the retry, while the first still runs
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(SLOW_MS - 100);
    expect(took).toBeLessThan(2 * SLOW_MS); // one slow create, not two in a row
    const image = await stat(backend.dataPath(plugin, volume!.volume_id));
    // A retry after it finished finds the same volume and the same file (not re-created).
    const again = await csi.controller.CreateVolume(req, { deadlineMs: 1000 });
    expect(again.volume).toEqual(volume);
    expect((await stat(backend.dataPath(plugin, volume!.volume_id))).ino).toBe(image.ino);
    await csi.controller.DeleteVolume({ volume_id: volume!.volume_id });
  });

  it('a CreateVolume whose caller gave up completes in the background without any retry', async () => {
    const req = { name: 'abandoned-create', capacity_range: { required_bytes: 16 * MiB }, volume_capabilities: [cap] };
    await expectGrpcError(csi.controller.CreateVolume(req, { deadlineMs: 300 }), 'DEADLINE_EXCEEDED');
    await expect
      .poll(async () => (await csi.controller.ListVolumes({})).entries.map((e) => e.volume?.volume_id), {
        timeout: 3 * SLOW_MS,
        interval: 200,
      })
      .toContain(backend.idForName(req.name));
    const { volume } = await csi.controller.CreateVolume(req, { deadlineMs: 1000 });
    await csi.controller.DeleteVolume({ volume_id: volume!.volume_id });
  });

  it('a NodeStageVolume past its deadline mounts once; the retry joins it', async () => {
    const { volume } = await csi.controller.CreateVolume(
      { name: 'slow-stage', capacity_range: { required_bytes: 16 * MiB }, volume_capabilities: [cap] },
      { deadlineMs: 3 * SLOW_MS },
    );
    const id = volume!.volume_id;
    const staging = join(plugin.dir, 'staging');
    await mkdir(staging);
    const req = { volume_id: id, staging_target_path: staging, volume_capability: cap };
    const started = Date.now();
    await expectGrpcError(csi.node.NodeStageVolume(req, { deadlineMs: 300 }), 'DEADLINE_EXCEEDED');
    await csi.node.NodeStageVolume(req);
    expect(Date.now() - started).toBeLessThan(2 * SLOW_MS);
    expect((await mountsAt(staging)).map((m) => m.fsType)).toEqual(['ext4']); // one mount, not two stacked
    expect(await backend.attachedDevices(plugin, id)).toHaveLength(1);
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: id });
  });
});
