// Crash consistency, on every backend (test/reliability/backends.ts): for every fault point on the backend's
// paths, on every flow that reaches it, the plugin is killed (SIGKILL) part-way through the RPC, restarted,
// and the same RPC retried. The retry must succeed and leave exactly the state one successful call makes
// (the backend's storage as crashObserve() sees it, attachments, mounts), stay idempotent, and data written
// before the crash must read back. Runs inside scripts/sandbox.sh (scripts/test.sh).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt, readMountInfo } from '../../src/os/index.js';
import { csiClients, type CsiClients } from '../helpers/client.js';
import { isUnder } from '../helpers/leaks.js';
import { forceCleanupUnder, MiB } from '../helpers/volumes.js';
import { backendsFor, type CrashFlow, type CrashStep, type LifeState, type ReliabilityBackend, type RunningBackend } from './backends.js';

const UNDOES: Partial<Record<CrashStep, CrashStep>> = {
  unpublish: 'publish',
  unstage: 'stage',
  'controller-unpublish': 'controller-publish',
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Where a volume is after a run of steps from nothing. */
function lifeAfter(steps: CrashStep[]): LifeState {
  const s: LifeState = { exists: false, controllerPublished: false, staged: false, published: false };
  for (const step of steps) {
    if (step === 'create') s.exists = true;
    else if (step === 'delete') s.exists = false;
    else if (step === 'controller-publish' || step === 'controller-unpublish') s.controllerPublished = step === 'controller-publish';
    else if (step === 'stage' || step === 'unstage') s.staged = step === 'stage';
    else s.published = step === 'publish';
  }
  return s;
}

describe.each(backendsFor('crash').map((b) => [b.label, b] as const))('crash consistency (%s)', (_label, backend: ReliabilityBackend) => {
  let running: RunningBackend;

  beforeAll(async () => {
    running = await backend.start('crash');
  }, backend.startTimeoutMs);

  afterAll(async () => {
    if (!running) return;
    const dir = running.plugin.dir;
    await running.plugin.stop();
    await forceCleanupUnder(dir);
    await running.stop();
  }, 120_000);

  it('covers every fault point of the backend, on a flow that reaches it', () => {
    expect(backend.faultPoints.filter((p) => !backend.crashCases.some((c) => c.point === p))).toEqual([]);
    for (const c of backend.crashCases) expect(backend.crashFlows.find((f) => f.name === c.flow)?.steps).toContain(c.step);
  });

  if (backend.makesTwins)
    it('sees a second volume made for the same name (the check a double create must fail)', async () => {
      const twins = await running.makeTwinVolumes!('crash-twin-check');
      try {
        const seen = await running.crashObserve(twins.ids[0], 'crash-twin-check');
        expect(seen['named']).toBe(2);
        expect(seen['strays']).toEqual([twins.ids[1]]);
      } finally {
        await twins.remove();
      }
      expect((await running.crashObserve('', 'crash-twin-check'))['named']).toBe(0);
    });

  it.each(backend.crashCases.map((c) => [c.point, c.flow, c.step] as const))(
    'dies at %s (%s flow), and the retried call completes it exactly once',
    async (point, flowName, step) => {
      const flow: CrashFlow = backend.crashFlows.find((f) => f.name === flowName)!;
      const plugin = running.plugin;
      const slug = `${flowName}-${point}`.replace(/[^a-z0-9]+/g, '-');
      const name = `crash-${slug}`;
      const staging = join(plugin.dir, `staging-${slug}`);
      const target = join(plugin.dir, `pods-${slug}`, 'target');
      await mkdir(staging);
      await mkdir(join(plugin.dir, `pods-${slug}`));
      const cap = backend.capability;
      const opts = { deadlineMs: 60_000 };
      let csi = csiClients(plugin.endpoint);
      let volumeId = '';
      let devicePath = '';
      const createReq = {
        name,
        capacity_range: { required_bytes: backend.capacityBytes },
        volume_capabilities: [cap],
        parameters: { ...running.parameters, ...flow.parameters },
      };

      const call = async (s: CrashStep, c: CsiClients): Promise<void> => {
        switch (s) {
          case 'create': {
            const { volume } = await c.controller.CreateVolume(createReq, opts);
            if (volumeId !== '') expect(volume?.volume_id).toBe(volumeId);
            volumeId = volume!.volume_id;
            expect(volume?.capacity_bytes).toBe(backend.capacityBytes);
            return;
          }
          case 'controller-publish': {
            const res = await c.controller.ControllerPublishVolume(
              { volume_id: volumeId, node_id: running.nodeId, volume_capability: cap, readonly: false },
              opts,
            );
            const path = res.publish_context?.['devicePath'] ?? '';
            if (devicePath !== '') expect(path).toBe(devicePath);
            devicePath = path;
            return;
          }
          case 'controller-unpublish':
            await c.controller.ControllerUnpublishVolume({ volume_id: volumeId, node_id: running.nodeId }, opts);
            devicePath = '';
            return;
          case 'stage': {
            const publish_context: Record<string, string> = devicePath !== '' ? { devicePath } : {};
            await c.node.NodeStageVolume(
              { volume_id: volumeId, staging_target_path: staging, volume_capability: cap, publish_context },
              opts,
            );
            return;
          }
          case 'publish':
            await c.node.NodePublishVolume(
              { volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: cap },
              opts,
            );
            return;
          case 'unpublish':
            await c.node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target }, opts);
            return;
          case 'unstage':
            await c.node.NodeUnstageVolume({ volume_id: volumeId, staging_target_path: staging }, opts);
            return;
          case 'delete':
            await c.controller.DeleteVolume({ volume_id: volumeId }, opts);
        }
      };
      const observe = async () => {
        const mounts = (await readMountInfo()).filter((m) => isUnder(m.mountPoint, plugin.dir));
        return {
          storage: await running.crashObserve(volumeId, name),
          stagingFs: (await mountsAt(staging)).at(-1)?.fsType ?? null,
          targetMounted: (await mountsAt(target)).length > 0,
          targetExists: await stat(target).then(
            () => true,
            () => false,
          ),
          mountsUnderPlugin: mounts.length,
        };
      };
      const expected = (done: CrashStep[]) => {
        const s = lifeAfter(done);
        return {
          storage: running.crashExpected(s, flowName),
          stagingFs: s.staged ? backend.stagingFsType : null,
          targetMounted: s.published,
          targetExists: s.published,
          mountsUnderPlugin: (s.staged ? 1 : 0) + (s.published ? 1 : 0),
        };
      };
      const payload = randomBytes(2 * MiB);
      // fsync of the file, not sync(1): the plugin's death loses no page cache, and a machine-wide sync is slow.
      const writePayload = async () => {
        const file = await open(join(target, 'payload.bin'), 'w');
        try {
          await file.writeFile(payload);
          await file.sync();
        } finally {
          await file.close();
        }
      };
      const expectPayload = async () => expect(sha256(await readFile(join(target, 'payload.bin')))).toBe(sha256(payload));

      const steps = flow.steps;
      const index = steps.indexOf(step);
      const publishAt = steps.indexOf('publish');
      try {
        // Everything before the step, done normally; data goes in as soon as the volume is published.
        for (const s of steps.slice(0, index)) {
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
        const done = steps.slice(0, index + 1);
        await call(step, csi); // the retry
        expect(await observe()).toEqual(expected(done));
        await call(step, csi); // and it stays idempotent
        expect(await observe()).toEqual(expected(done));

        // The volume works after the crash: data goes in on the way up; what went in before reads back.
        if (publishAt >= 0 && index <= publishAt) {
          for (const s of steps.slice(index + 1, publishAt + 1)) await call(s, csi);
          await writePayload();
          await expectPayload();
        } else if (publishAt >= 0 && step !== 'delete') {
          const undone = steps.slice(publishAt + 1, index + 1).map((s) => UNDOES[s]);
          for (const s of steps.slice(0, publishAt + 1).filter((x) => undone.includes(x))) await call(s, csi);
          await expectPayload();
        }
        // And the rest of the way down leaves nothing.
        const from = step === 'delete' ? steps.length : publishAt >= 0 ? publishAt + 1 : index + 1;
        for (const s of steps.slice(from)) await call(s, csi);
        expect(await observe()).toEqual(expected(steps));
        expect(await running.allArtifacts()).toEqual([]);
        expect((await readMountInfo()).filter((m) => isUnder(m.mountPoint, plugin.dir))).toEqual([]);
      } finally {
        csi.close();
        if (!plugin.proc.exitCode && plugin.proc.signalCode) await plugin.restart(); // leave a running plugin for the next point
        // A failed case leaves its mounts to itself, not to the cases after it.
        for (const dir of [target, staging]) await forceCleanupUnder(dir);
      }
    },
  );
});
