// Deadlines, on every backend: a call whose caller gives up (DEADLINE_EXCEEDED) keeps running in the plugin
// and completes; the CO's retry joins it while it runs, or finds its result afterwards, and never starts a
// second one. The backend is made slow at a fault point with REXCSI_FAULT_DELAY (src/faults.ts), since a
// real slow disk or storage API cannot be ordered; a backend without a point inside CreateVolume has its
// CreateVolume cases listed as excluded.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { forceCleanupUnder } from '../helpers/volumes.js';
import { backendsFor, type ReliabilityBackend, type RunningBackend } from './backends.js';

const SLOW_MS = 2500;

describe.each(backendsFor('deadlines').map((b) => [b.label, b] as const))('deadlines (%s)', (_label, backend: ReliabilityBackend) => {
  let running: RunningBackend;
  let csi: CsiClients;
  const cap = backend.capability;
  const createReq = (name: string) => ({
    name,
    capacity_range: { required_bytes: backend.capacityBytes },
    volume_capabilities: [cap],
    parameters: running.parameters,
  });

  beforeAll(async () => {
    const delays = [backend.slowCreatePoint, backend.slowStagePoint].filter(Boolean).map((p) => `${p}:${SLOW_MS}`);
    running = await backend.start('deadlines', { env: { REXCSI_FAULT_DELAY: delays.join(',') } });
    csi = csiClients(running.plugin.endpoint);
  }, backend.startTimeoutMs);

  afterAll(async () => {
    csi?.close();
    if (!running) return;
    const dir = running.plugin.dir;
    await running.plugin.stop();
    await forceCleanupUnder(dir);
    await running.stop();
  }, 120_000);

  if (backend.slowCreatePoint) {
    it('a CreateVolume past its deadline completes, and the retry joins it instead of creating again', async () => {
      const req = createReq('slow-create');
      const started = Date.now();
      await expectGrpcError(csi.controller.CreateVolume(req, { deadlineMs: 300 }), 'DEADLINE_EXCEEDED');
      const { volume } = await csi.controller.CreateVolume(req); // the retry, while the first still runs
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(SLOW_MS - 100);
      expect(took).toBeLessThan(2 * SLOW_MS + 5000); // one slow create, not two in a row
      const identity = await running.storageIdentity(volume!.volume_id);
      // A retry after it finished finds the same volume and the same storage (not made again).
      const again = await csi.controller.CreateVolume(req, { deadlineMs: 10_000 });
      expect(again.volume).toEqual(volume);
      expect(await running.storageIdentity(volume!.volume_id)).toBe(identity);
      await csi.controller.DeleteVolume({ volume_id: volume!.volume_id });
    });

    it('a CreateVolume whose caller gave up completes in the background without any retry', async () => {
      const req = createReq('abandoned-create');
      await expectGrpcError(csi.controller.CreateVolume(req, { deadlineMs: 300 }), 'DEADLINE_EXCEEDED');
      // Done when the plugin lists the volume its storage holds for the name (not when the storage first shows it).
      const listed = async () => {
        const id = await running.volumeIdForName(req.name);
        const ids = (await csi.controller.ListVolumes({})).entries.map((e) => e.volume?.volume_id);
        return id !== undefined && ids.includes(id) ? id : '';
      };
      await expect.poll(listed, { timeout: 3 * SLOW_MS + 20_000, interval: 300 }).toMatch(/./);
      const id = await listed();
      const { volume } = await csi.controller.CreateVolume(req, { deadlineMs: 10_000 });
      expect(volume?.volume_id).toBe(id);
      await csi.controller.DeleteVolume({ volume_id: volume!.volume_id });
    });
  } else {
    it('CreateVolume past its deadline: excluded, the backend has no fault point inside CreateVolume to slow it', () => {
      expect(backend.slowCreatePoint).toBeUndefined();
      expect(backend.faultPoints.some((p) => p.startsWith(`${backend.name}.create.`))).toBe(false);
    });
  }

  it('a NodeStageVolume past its deadline mounts once; the retry joins it', async () => {
    const { volume } = await csi.controller.CreateVolume(createReq('slow-stage'), { deadlineMs: 3 * SLOW_MS + 30_000 });
    const id = volume!.volume_id;
    const staging = join(running.plugin.dir, 'staging');
    await mkdir(staging);
    const req = { volume_id: id, staging_target_path: staging, volume_capability: cap };
    const started = Date.now();
    await expectGrpcError(csi.node.NodeStageVolume(req, { deadlineMs: 300 }), 'DEADLINE_EXCEEDED');
    await csi.node.NodeStageVolume(req);
    expect(Date.now() - started).toBeLessThan(2 * SLOW_MS + 5000);
    expect(await mountsAt(staging)).toHaveLength(1); // one mount, not two stacked
    expect(await running.attachedDevices(id)).toHaveLength(backend.blockCapability ? 1 : 0);
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: id }, { deadlineMs: 3 * SLOW_MS + 30_000 });
  });
});
