// Mesos' calls replayed against the real plugin (dist/main.js on a unix socket, real devices, mkfs and
// mounts), for one backend of MESOS_BACKENDS and both CSI versions Mesos speaks:
//   v1: the plugin serves csi.v1 and csi.v0 (the default); Mesos 1.8+ probes csi.v1 and uses it.
//   v0: the plugin serves csi.v0 only (--csi-versions v0), so the v1 Probe is UNIMPLEMENTED and the client
//       falls back to csi.v0 as Mesos does; what Mesos 1.6/1.7 (CSI 0.2 only) would call from there on.
// One plugin per group; the plugin is killed with SIGKILL and restarted between steps where the issue asks.
// Each backend has its own test file (scenarios-<backend>.test.ts) calling describeBackendScenarios, so the
// files run one after another and a machine-wide server (glusterd) lives exactly as long as its file.

import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients, expectGrpcError } from '../helpers/client.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { mountsAt } from '../../src/os/index.js';
import { mesosBackend, PROFILE_DOCUMENT_URI, type MesosBackend, type RunningBackend } from './backends.js';
import { MesosClient, MesosFailure, mesosEncode, type CsiService, type CsiVersion } from './mesos-client.js';
import { fetchProfileDocument, profilesForType, type DiskProfile } from './profiles.js';

const MiB = 1024 * 1024;
const SLRP: CsiService[] = ['CONTROLLER_SERVICE', 'NODE_SERVICE'];

/** Every scenario, v1 and v0, against the backend of that name; its file-wide set-up around them all. */
export function describeBackendScenarios(name: string): void {
  const backend = mesosBackend(name);
  if (backend.setUpFile) beforeAll(() => backend.setUpFile!(), backend.setUpTimeoutMs ?? 120_000);
  if (backend.tearDownFile) afterAll(() => backend.tearDownFile!(), 120_000);
  for (const version of ['v1', 'v0'] as const) describeScenarios(backend, version);
}

function describeScenarios(backend: MesosBackend, version: CsiVersion): void {
  describe(`Mesos on the ${backend.name} backend, CSI ${version}`, () => {
    const agentId = `e4b3c1de-5a7f-4c1e-9d2b-${version === 'v1' ? '000000000001' : '000000000000'}-S7`;
    let running: RunningBackend;
    let workDir: string;
    let profiles: Record<string, DiskProfile>;
    let profileName: string;
    let profile: DiskProfile;
    let otherProfile: DiskProfile | undefined;

    const newAgent = (services = SLRP, targetPathRoot?: string) =>
      new MesosClient({
        endpoint: running.plugin.endpoint,
        pluginType: backend.pluginType,
        pluginName: `rexcsi-${backend.name}`,
        workDir,
        services,
        ...(targetPathRoot ? { targetPathRoot } : {}),
        retryBackoffMs: 100,
        retryCapMs: 1000,
        retryGiveUpMs: 60_000,
      });

    const killAndRestart = async () => {
      running.plugin.kill('SIGKILL');
      await running.plugin.waitForExit();
      await running.plugin.restart();
    };

    beforeAll(async () => {
      const doc = await fetchProfileDocument(PROFILE_DOCUMENT_URI);
      profiles = profilesForType(doc, backend.pluginType);
      [profileName, profile] = Object.entries(profiles)[0]!;
      otherProfile = Object.values(profiles).find(
        (p) => p.volume_capabilities.mount?.fs_type !== profile.volume_capabilities.mount?.fs_type,
      );
      workDir = await makeTempDir(`mesos-${backend.name}-${version}`);
      running = await backend.start({ csiVersions: version === 'v0' ? 'v0' : 'both', agentId });
    });

    afterAll(async () => {
      await running?.stop();
      if (workDir) await removeTempDir(workDir);
    });

    it('has at least one disk profile for its plugin type in the URI profile document', () => {
      expect(Object.keys(profiles).length).toBeGreaterThan(0);
    });

    it(`start-up: the version probe picks ${version}, then capabilities, plugin info per service, the node id (${backend.nodeIdFrom})`, async () => {
      const agent = newAgent();
      const started = await agent.start();
      expect(started.version).toBe(version);
      const p = version === 'v1' ? 'csi.v1' : 'csi.v0';
      const expected = [
        'csi.v1.Identity/Probe',
        ...(version === 'v0' ? ['csi.v0.Identity/Probe'] : []),
        `${p}.Identity/GetPluginCapabilities`,
        `${p}.Identity/GetPluginInfo`,
        `${p}.Identity/GetPluginInfo`,
        `${p}.Controller/ControllerGetCapabilities`,
        `${p}.Node/NodeGetCapabilities`,
        ...(started.controllerCapabilities.includes('PUBLISH_UNPUBLISH_VOLUME')
          ? [version === 'v1' ? 'csi.v1.Node/NodeGetInfo' : 'csi.v0.Node/NodeGetId']
          : []),
      ];
      expect(agent.calls).toEqual(expected);
      expect(started.pluginCapabilities).toContain('CONTROLLER_SERVICE');
      expect(started.controllerCapabilities).toEqual(expect.arrayContaining(['CREATE_DELETE_VOLUME', 'LIST_VOLUMES', 'GET_CAPACITY']));
      expect(started.nodeCapabilities).toContain('STAGE_UNSTAGE_VOLUME');
      if (started.nodeId !== undefined) expect(started.nodeId).toBe(running.nodeId);
      // A backend with ControllerPublish must answer the node id it publishes to; Mesos asks for it then.
      if (started.controllerCapabilities.includes('PUBLISH_UNPUBLISH_VOLUME')) expect(started.nodeId).toBe(running.nodeId);
      if (version === 'v1') {
        // Beyond Mesos' calls (it asks only with PUBLISH_UNPUBLISH): the node id is MESOS_AGENT_ID, or the
        // backend's own where it must be (ebs: the EC2 instance id, which ControllerPublish attaches to).
        const csi = csiClients(running.plugin.endpoint);
        try {
          expect((await csi.node.NodeGetInfo({})).node_id).toBe(running.nodeId);
        } finally {
          csi.close();
        }
      } else {
        // The detection rule: with --csi-versions v0 the v1 Probe must be UNIMPLEMENTED, nothing else.
        const csi = csiClients(running.plugin.endpoint);
        try {
          await expectGrpcError(csi.identity.Probe({}), 'UNIMPLEMENTED');
          await expectGrpcError(csi.node.NodeGetVolumeStats({ volume_id: 'x', volume_path: '/' }), 'UNIMPLEMENTED');
        } finally {
          csi.close();
        }
      }
    });

    it('reconciliation: ListVolumes in one call with no duplicates, GetCapacity once per profile; CREATE_DISK appears once', async () => {
      const agent = newAgent();
      await agent.start();
      agent.calls.length = 0;
      const before = await agent.reconcile(profiles);
      expect(agent.calls.filter((c) => c.endsWith('/ListVolumes'))).toHaveLength(1);
      expect(agent.calls.filter((c) => c.endsWith('/GetCapacity'))).toHaveLength(Object.keys(profiles).length);
      for (const name of Object.keys(profiles)) expect(before.capacity[name], name).toBeGreaterThan(backend.diskSizeMB * MiB);

      const disk = await agent.createDisk(profile, backend.diskSizeMB);
      expect(disk.name).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(disk.capacityBytes).toBe(backend.diskSizeMB * MiB); // required == limit leaves no choice
      expect(disk.retries).toBe(0);

      const after = await agent.reconcile(profiles);
      expect(after.volumes.filter((v) => v.id === disk.id)).toHaveLength(1);
      expect(after.volumes).toHaveLength(before.volumes.length + 1);
      expect(after.volumes.find((v) => v.id === disk.id)!.context).toEqual(disk.context);
      // (No check that capacity dropped: loop reports the pool filesystem's free space and volumes are sparse.)
      expect(after.capacity[profileName]).toBeGreaterThan(0);
      await agent.destroyDisk(disk.id);
      expect((await agent.listVolumes()).some((v) => v.id === disk.id)).toBe(false);
    });

    it('CREATE_DISK, task use and DESTROY_DISK with Mesos paths, the plugin SIGKILLed and restarted between every step', async () => {
      const agent = newAgent();
      await agent.start();
      const disk = await agent.createDisk(profile, backend.diskSizeMB);
      await killAndRestart();

      const target = await agent.publishDisk(disk.id);
      expect(target).toBe(join(workDir, 'csi', backend.pluginType, `rexcsi-${backend.name}`, 'mounts', mesosEncode(disk.id), 'target'));
      expect((await mountsAt(agent.paths.staging(disk.id))).length).toBeGreaterThan(0);
      expect((await mountsAt(target)).length).toBeGreaterThan(0);
      if (backend.writesData) await writeFile(join(target, 'data.txt'), 'written by the task');
      await killAndRestart();

      // The next reconciliation still sees the disk exactly once; the data and the mounts outlived the plugin.
      const { volumes } = await agent.reconcile(profiles);
      expect(volumes.filter((v) => v.id === disk.id)).toHaveLength(1);
      if (backend.writesData) expect(await readFile(join(target, 'data.txt'), 'utf8')).toBe('written by the task');
      // A second task on the same disk: the volume is still published, the plugin answers idempotently.
      expect(await agent.publishDisk(disk.id)).toBe(target);
      await killAndRestart();

      let deleteRetries = 0;
      const result = await agent.destroyDisk(disk.id, {
        firstDeleteDeadlineMs: 1,
        beforeDeleteRetry: async () => {
          deleteRetries++;
        },
      });
      expect(result.retries).toBe(deleteRetries);
      await expect(stat(target)).rejects.toThrow(); // v1: gone after NodeUnpublish; v0: removed with the mount dir
      expect(await mountsAt(agent.paths.staging(disk.id))).toEqual([]);
      expect((await agent.listVolumes()).some((v) => v.id === disk.id)).toBe(false);
    });

    it(`NodeUnpublishVolume leaves the target as Mesos expects for ${version}`, async () => {
      const agent = newAgent();
      await agent.start();
      const disk = await agent.createDisk(profile, backend.diskSizeMB);
      const target = await agent.publishDisk(disk.id);
      if (backend.writesData) await writeFile(join(target, 'f'), 'x');
      await agent.unpublish(disk.id); // throws MesosFailure when v1 leaves the target behind
      if (version === 'v0') {
        // The CO made it and owns it: still there, empty (nothing mounted), ready for the next publish.
        expect((await stat(target)).isDirectory()).toBe(true);
        expect(await mountsAt(target)).toEqual([]);
        expect(await agent.publish(disk.id)).toBe(target);
        if (backend.writesData) expect(await readFile(join(target, 'f'), 'utf8')).toBe('x');
      } else {
        await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
      }
      await agent.destroyDisk(disk.id);
    });

    it('CreateVolume retried after DEADLINE_EXCEEDED and after the plugin was SIGKILLed returns the same volume, once', async () => {
      const agent = newAgent();
      await agent.start();
      const before = (await agent.listVolumes()).length;

      // Stands in for a create slower than Mesos' 60 s: the first attempt's deadline is 1 ms.
      const slow = await agent.createDisk(profile, backend.diskSizeMB, { firstDeadlineMs: 1 });
      expect(slow.retries).toBeGreaterThan(0);

      // Plugin down: UNAVAILABLE, Mesos backs off and retries; it is back by then.
      running.plugin.kill('SIGKILL');
      await running.plugin.waitForExit();
      const name = 'c0ffee00-0000-4000-8000-000000000001';
      const down = await agent.createDisk(profile, backend.diskSizeMB, {
        name,
        beforeRetry: () =>
          running.plugin.proc.exitCode === null && running.plugin.proc.signalCode === null ? Promise.resolve() : running.plugin.restart(),
      });
      expect(down.retries).toBeGreaterThan(0);

      // The same name again (a retry whose answer was lost) is the same volume, not a second one.
      const again = newAgent();
      await again.start();
      const replay = await again.createDisk(profile, backend.diskSizeMB, { name });
      expect(replay.id).toBe(down.id);
      const listed = await agent.listVolumes();
      expect(listed).toHaveLength(before + 2);
      expect(listed.filter((v) => v.id === slow.id)).toHaveLength(1);

      await agent.destroyDisk(slow.id);
      await agent.destroyDisk(down.id);
    });

    it('a pre-existing disk is validated with ValidateVolumeCapabilities; a profile that does not match is refused', async () => {
      const first = newAgent();
      await first.start();
      const disk = await first.createDisk(profile, backend.diskSizeMB);

      // A new resource provider (state lost) finds it as a pre-existing RAW disk and imports it.
      const agent = newAgent();
      await agent.start();
      const found = (await agent.listVolumes()).find((v) => v.id === disk.id)!;
      expect(found).toBeDefined();
      if (otherProfile) {
        await expect(agent.importPreExisting(found, otherProfile)).rejects.toBeInstanceOf(MesosFailure);
        expect(agent.volumes.has(disk.id)).toBe(false);
      }
      await agent.importPreExisting(found, profile);
      const target = await agent.publishDisk(disk.id);
      expect((await mountsAt(target)).length).toBeGreaterThan(0);
      await agent.destroyDisk(disk.id);
    });

    it('external volumes (volume/csi): NodeStage -> NodePublish without ControllerPublish, read-only from the volume mode', async () => {
      const operator = newAgent();
      await operator.start();
      const disk = await operator.createDisk(profile, backend.diskSizeMB);
      operator.volumes.delete(disk.id); // made out of band; the isolator knows only the task's volume

      const targetRoot = join(workDir, 'external-targets');
      const agent = newAgent(['NODE_SERVICE', 'CONTROLLER_SERVICE'], targetRoot);
      await agent.start();
      agent.calls.length = 0;
      const provisioning = { capability: profile.volume_capabilities, context: disk.context };

      const rw = await agent.publishExternal(disk.id, provisioning, 'RW');
      expect(rw).toBe(join(targetRoot, mesosEncode(disk.id), 'target'));
      if (backend.writesData) await writeFile(join(rw, 'shared.txt'), 'from task 1');
      await agent.cleanupExternal(disk.id);
      await expect(stat(join(targetRoot, mesosEncode(disk.id)))).rejects.toMatchObject({ code: 'ENOENT' });

      const ro = await agent.publishExternal(disk.id, provisioning, 'RO');
      if (backend.writesData) {
        expect(await readFile(join(ro, 'shared.txt'), 'utf8')).toBe('from task 1');
        await expect(writeFile(join(ro, 'other.txt'), 'nope')).rejects.toMatchObject({ code: 'EROFS' });
      }
      await agent.cleanupExternal(disk.id);

      expect(agent.calls.some((c) => c.includes('ControllerPublishVolume') || c.includes('ControllerUnpublishVolume'))).toBe(false);
      expect(agent.calls.filter((c) => c.endsWith('/NodeStageVolume'))).toHaveLength(2);

      operator.volumes.set(disk.id, {
        state: 'CREATED',
        capability: profile.volume_capabilities,
        parameters: {},
        context: disk.context,
        publishContext: {},
        readonly: false,
      });
      await operator.destroyDisk(disk.id);
    });
  });
}
