// Crash consistency: for every fault point, the plugin is killed (SIGKILL) part-way through the RPC that
// reaches it, restarted, and the same RPC retried. The retry must succeed, leave exactly the state one
// successful call makes (files, loop devices, mounts), and data written before the crash must read back.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt, readMountInfo, run } from '../../src/os/index.js';
import { csiClients, type CsiClients } from '../helpers/client.js';
import { isUnder } from '../helpers/leaks.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { forceCleanupUnder, MiB, mountCapability } from '../helpers/volumes.js';
import { reliabilityBackends, type LifecycleFaultPoint, type ReliabilityBackend } from './backends.js';

const STEPS = ['create', 'stage', 'publish', 'unpublish', 'unstage', 'delete'] as const;
type Step = (typeof STEPS)[number];

/** Which RPC reaches each fault point. */
const STEP_OF: Record<LifecycleFaultPoint, Step> = {
  'loop.create.after-file': 'create',
  'loop.create.after-meta': 'create',
  'node.stage.after-open': 'stage',
  'node.stage.after-format': 'stage',
  'node.stage.after-mount': 'stage',
  'node.publish.after-target': 'publish',
  'node.publish.after-bind': 'publish',
  'node.unpublish.after-unmount': 'unpublish',
  'node.unstage.after-unmount': 'unstage',
  'node.unstage.after-close': 'unstage',
  'loop.delete.after-meta': 'delete',
};

interface ObservedState {
  meta: boolean;
  data: boolean;
  stray: string[];
  attached: number;
  stagingFs: string | null;
  targetMounted: boolean;
  targetExists: boolean;
  mountsUnderPlugin: number;
}

/** What one successful call of each step leaves, starting from nothing. */
const EXPECTED_AFTER: Record<Step, ObservedState> = {
  create: {
    meta: true,
    data: true,
    stray: [],
    attached: 0,
    stagingFs: null,
    targetMounted: false,
    targetExists: false,
    mountsUnderPlugin: 0,
  },
  stage: {
    meta: true,
    data: true,
    stray: [],
    attached: 1,
    stagingFs: 'ext4',
    targetMounted: false,
    targetExists: false,
    mountsUnderPlugin: 1,
  },
  publish: {
    meta: true,
    data: true,
    stray: [],
    attached: 1,
    stagingFs: 'ext4',
    targetMounted: true,
    targetExists: true,
    mountsUnderPlugin: 2,
  },
  unpublish: {
    meta: true,
    data: true,
    stray: [],
    attached: 1,
    stagingFs: 'ext4',
    targetMounted: false,
    targetExists: false,
    mountsUnderPlugin: 1,
  },
  unstage: {
    meta: true,
    data: true,
    stray: [],
    attached: 0,
    stagingFs: null,
    targetMounted: false,
    targetExists: false,
    mountsUnderPlugin: 0,
  },
  delete: {
    meta: false,
    data: false,
    stray: [],
    attached: 0,
    stagingFs: null,
    targetMounted: false,
    targetExists: false,
    mountsUnderPlugin: 0,
  },
};

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.each(reliabilityBackends())('crash consistency ($name backend)', (backend: ReliabilityBackend) => {
  let plugin: PluginProcess;

  beforeAll(async () => {
    plugin = await backend.start('crash');
  });

  afterAll(async () => {
    if (!plugin) return;
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await plugin.cleanup();
  });

  it('covers every fault point of the backend', () => {
    expect(backend.faultPoints.filter((p) => !(p in STEP_OF))).toEqual([]);
    expect(backend.faultPoints.length).toBeGreaterThanOrEqual(11);
  });

  it.each(backend.faultPoints.map((p) => [p]))('dies at %s, and the retried call completes it exactly once', async (point) => {
    const step = STEP_OF[point];
    const slug = point.replace(/[^a-z0-9]+/g, '-');
    const staging = join(plugin.dir, `staging-${slug}`);
    const target = join(plugin.dir, `pods-${slug}`, 'target');
    await mkdir(staging);
    await mkdir(join(plugin.dir, `pods-${slug}`));
    const cap = mountCapability('ext4');
    let csi = csiClients(plugin.endpoint);
    let volumeId = '';
    const createReq = { name: `crash-${slug}`, capacity_range: { required_bytes: 32 * MiB }, volume_capabilities: [cap] };
    const call = async (s: Step, c: CsiClients): Promise<void> => {
      switch (s) {
        case 'create': {
          const { volume } = await c.controller.CreateVolume(createReq, { deadlineMs: 30_000 });
          if (volumeId !== '') expect(volume?.volume_id).toBe(volumeId);
          volumeId = volume!.volume_id;
          expect(volume?.capacity_bytes).toBe(32 * MiB);
          return;
        }
        case 'stage':
          await c.node.NodeStageVolume(
            { volume_id: volumeId, staging_target_path: staging, volume_capability: cap },
            { deadlineMs: 30_000 },
          );
          return;
        case 'publish':
          await c.node.NodePublishVolume(
            { volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: cap },
            { deadlineMs: 30_000 },
          );
          return;
        case 'unpublish':
          await c.node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, { deadlineMs: 30_000 });
          return;
        case 'unstage':
          await c.node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, { deadlineMs: 30_000 });
          return;
        case 'delete':
          await c.controller.DeleteVolume({ volume_id: volumeId }, { deadlineMs: 30_000 });
      }
    };
    const observe = async (): Promise<ObservedState> => {
      const art = await backend.artifacts(plugin, volumeId);
      const mounts = (await readMountInfo()).filter((m) => isUnder(m.mountPoint, plugin.dir));
      return {
        ...art,
        attached: (await backend.attachedDevices(plugin, volumeId)).length,
        stagingFs: (await mountsAt(staging)).at(-1)?.fsType ?? null,
        targetMounted: (await mountsAt(target)).length > 0,
        targetExists: await stat(target).then(
          () => true,
          () => false,
        ),
        mountsUnderPlugin: mounts.length,
      };
    };
    const payload = randomBytes(2 * MiB);
    const writePayload = async () => {
      await writeFile(join(target, 'payload.bin'), payload);
      await run('sync', []);
    };
    const expectPayload = async () => expect(sha256(await readFile(join(target, 'payload.bin')))).toBe(sha256(payload));

    try {
      // Everything before the step, done normally; data goes in as soon as the volume is published.
      const index = STEPS.indexOf(step);
      for (const s of STEPS.slice(0, index)) {
        await call(s, csi);
        if (s === 'publish') await writePayload();
      }
      csi.close();

      await plugin.restart({ REXCSI_FAULT_POINT: point });
      csi = csiClients(plugin.endpoint);
      await expect(call(step, csi)).rejects.toThrow(/UNAVAILABLE|Connection dropped|socket closed|Received RST_STREAM/i);
      await plugin.waitForExit(10_000);
      expect(plugin.proc.signalCode).toBe('SIGKILL');
      expect(plugin.logs()).not.toMatch(/"level":50/); // nothing logged as an unexpected failure before the kill
      csi.close();

      await plugin.restart();
      csi = csiClients(plugin.endpoint);
      await call(step, csi); // the retry
      expect(await observe()).toEqual(EXPECTED_AFTER[step]);
      await call(step, csi); // and it stays idempotent
      expect(await observe()).toEqual(EXPECTED_AFTER[step]);

      // Data written before the crash reads back intact after the volume comes back up.
      if (index <= STEPS.indexOf('publish')) {
        for (const s of STEPS.slice(index + 1, STEPS.indexOf('publish') + 1)) await call(s, csi);
        await writePayload();
        await expectPayload();
      } else if (step !== 'delete') {
        if (step === 'unstage') await call('stage', csi);
        await call('publish', csi);
        await expectPayload();
      }
      // And the rest of the way down leaves nothing.
      const from = step === 'delete' ? STEPS.length : STEPS.indexOf('unpublish');
      for (const s of STEPS.slice(from)) await call(s, csi);
      expect(await observe()).toEqual(EXPECTED_AFTER.delete);
      expect(await backend.allArtifacts(plugin)).toEqual([]);
      expect((await readMountInfo()).filter((m) => isUnder(m.mountPoint, plugin.dir))).toEqual([]);
    } finally {
      csi.close();
      if (!plugin.proc.exitCode && plugin.proc.signalCode) await plugin.restart(); // leave a running plugin for the next point
    }
  });
});
