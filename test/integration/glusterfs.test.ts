// The glusterfs backend against a real glusterd (test/helpers/gluster.ts) and the real FUSE client, through
// the plugin's unix socket. Both layouts: `subdir` (a directory with a quota on the hosting volume) and
// `volume` (a gluster volume per CSI volume, bricks under a temp brick root). Two stagings of one volume
// stand for two agents: each is its own FUSE mount (its own client process), as on two machines.

import { mkdir, readdir, readFile, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { fuseClientOf, startGlusterd, type Glusterd } from '../helpers/gluster.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup, makeTempDir, removeTempDir } from '../helpers/tmp.js';
import type { VolumeCapability } from '../../src/csi/gen/csi/v1/VolumeCapability.js';
import type { AccessMode } from '../../src/backends/backend.js';
import { mountsAt, mounter } from '../../src/os/index.js';

const MiB = 1024 * 1024;
const HOSTING = 'hosting';

let glusterd: Glusterd;
let plugin: PluginProcess;
let csi: CsiClients;
let dir: string;
let brickRoot: string;
const cleanup = new Cleanup();

function mountCap(mode: AccessMode = 'MULTI_NODE_MULTI_WRITER'): VolumeCapability {
  return { access_mode: { mode }, mount: { fs_type: '', mount_flags: [] } };
}

beforeAll(async () => {
  glusterd = await startGlusterd();
  await glusterd.createHostingVolume(HOSTING);
  dir = await makeTempDir('glusterfs');
  brickRoot = join(dir, 'bricks');
  await mkdir(brickRoot);
  plugin = await startPlugin({
    backend: 'glusterfs',
    name: 'glusterfs',
    args: [
      '--gluster-server',
      glusterd.host,
      '--hosting-volume',
      HOSTING,
      '--brick-root',
      brickRoot,
      '--glusterd-socket',
      glusterd.socket,
      '--gluster-work-dir',
      join(dir, 'work'),
    ],
    readyTimeoutMs: 60_000,
  });
  csi = csiClients(plugin.endpoint);
}, 180_000);

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  const steps = new Cleanup();
  steps.defer(() => glusterd?.stop());
  steps.defer(() => dir && removeTempDir(dir));
  steps.defer(() => plugin?.cleanup());
  steps.defer(() => csi?.close());
  await steps.run();
}, 180_000);

/** Creates a volume and defers its deletion (after whatever is deferred later: unmounts run first). */
async function createVolume(name: string, parameters: Record<string, string>, bytes = 64 * MiB): Promise<string> {
  const res = await csi.controller.CreateVolume({
    name,
    capacity_range: { required_bytes: bytes },
    volume_capabilities: [mountCap()],
    parameters,
  });
  const id = res.volume!.volume_id;
  cleanup.defer(() => csi.controller.DeleteVolume({ volume_id: id }));
  return id;
}

/** Stages at a fresh staging dir (one "agent"), deferring the unstage. */
async function stage(id: string, mode: AccessMode = 'MULTI_NODE_MULTI_WRITER'): Promise<string> {
  const staging = await makeTempDir('gl-staging');
  cleanup.defer(() => removeTempDir(staging));
  cleanup.defer(async () => {
    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging }).catch(() => mounter.unmount(staging));
  });
  await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: mountCap(mode) });
  return staging;
}

async function publish(id: string, staging: string, opts: { readonly?: boolean; mode?: AccessMode } = {}): Promise<string> {
  const parent = await makeTempDir('gl-target');
  const target = join(parent, 'target');
  cleanup.defer(() => removeTempDir(parent));
  cleanup.defer(async () => {
    await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target }).catch(() => mounter.unmount(target));
  });
  await csi.node.NodePublishVolume({
    volume_id: id,
    staging_target_path: staging,
    target_path: target,
    volume_capability: mountCap(opts.mode),
    readonly: opts.readonly ?? false,
  });
  return target;
}

async function totalBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.blocks * s.bsize;
}

describe('glusterfs backend: configuration and refusals', () => {
  it('advertises mount access, multi-node modes and online expansion, without topology', async () => {
    const caps = await csi.controller.ControllerGetCapabilities({});
    const types = caps.capabilities.map((c) => c.rpc?.type);
    expect(types).toEqual(expect.arrayContaining(['CREATE_DELETE_VOLUME', 'GET_CAPACITY', 'EXPAND_VOLUME', 'LIST_VOLUMES']));
    expect(types).not.toContain('PUBLISH_UNPUBLISH_VOLUME');
    expect(types).not.toContain('CREATE_DELETE_SNAPSHOT');
    const plugCaps = await csi.identity.GetPluginCapabilities({});
    expect(plugCaps.capabilities.some((c) => c.volume_expansion?.type === 'ONLINE')).toBe(true);
    expect(plugCaps.capabilities.some((c) => c.service?.type === 'VOLUME_ACCESSIBILITY_CONSTRAINTS')).toBe(false);
  });

  it('refuses block access, unknown layouts and replica on subdir with INVALID_ARGUMENT', async () => {
    const block = { access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' as const }, block: {} };
    await expectGrpcError(csi.controller.CreateVolume({ name: 'gl-block', volume_capabilities: [block] }), 'INVALID_ARGUMENT');
    await expectGrpcError(
      csi.controller.CreateVolume({ name: 'gl-bad-layout', volume_capabilities: [mountCap()], parameters: { layout: 'lvm' } }),
      'INVALID_ARGUMENT',
    );
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: 'gl-sub-replica',
        volume_capabilities: [mountCap()],
        parameters: { layout: 'subdir', replica: '3' },
      }),
      'INVALID_ARGUMENT',
    );
    await expectGrpcError(
      csi.controller.CreateVolume({
        name: 'gl-bad-replica',
        volume_capabilities: [mountCap()],
        parameters: { layout: 'volume', replica: '../1' },
      }),
      'INVALID_ARGUMENT',
    );
  });

  it('treats ids that could name a path outside the hosting volume as unknown', async () => {
    const staging = await makeTempDir('gl-staging');
    cleanup.defer(() => removeTempDir(staging));
    for (const id of ['gs:hosting:../../etc', 'gs:hosting:0123456789abcdef01234567/..', 'gs:..:0123456789abcdef01234567', 'gv-../x']) {
      await expectGrpcError(
        csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: mountCap() }),
        'NOT_FOUND',
      );
      await expectGrpcError(csi.controller.ControllerGetVolume({ volume_id: id }), 'NOT_FOUND');
      await csi.controller.DeleteVolume({ volume_id: id }); // OK: nothing of that id exists
    }
    expect((await mountsAt(staging)).length).toBe(0);
  });

  it('reports GetCapacity for both layouts and 0 for parameters it cannot serve', async () => {
    const sub = await csi.controller.GetCapacity({ volume_capabilities: [mountCap()], parameters: { layout: 'subdir' } });
    const vol = await csi.controller.GetCapacity({ volume_capabilities: [mountCap()], parameters: { layout: 'volume' } });
    const bad = await csi.controller.GetCapacity({ volume_capabilities: [mountCap()], parameters: { layout: 'nope' } });
    expect(sub.available_capacity).toBeGreaterThan(64 * MiB);
    expect(vol.available_capacity).toBeGreaterThan(64 * MiB);
    expect(bad.available_capacity).toBe(0);
  });

  it('answers UNAVAILABLE naming the server when glusterd cannot be reached', async () => {
    const other = await startPlugin({
      backend: 'glusterfs',
      name: 'glusterfs-nod',
      args: [
        '--gluster-server',
        glusterd.host,
        '--hosting-volume',
        HOSTING,
        '--glusterd-socket',
        join(dir, 'no-glusterd.socket'),
        '--gluster-work-dir',
        join(dir, 'work2'),
      ],
    });
    cleanup.defer(() => other.cleanup());
    const c = csiClients(other.endpoint);
    cleanup.defer(() => c.close());
    const err = await expectGrpcError(
      c.controller.CreateVolume({ name: 'gl-unreachable', volume_capabilities: [mountCap()] }),
      'UNAVAILABLE',
    );
    expect(err.details).toContain(glusterd.host);
    expect(err.details).toMatch(/not reachable/);

    await expect(
      startPlugin({
        backend: 'glusterfs',
        name: 'glusterfs-noserver',
        args: ['--gluster-server', '127.0.0.3', '--glusterd-socket', glusterd.socket, '--gluster-work-dir', join(dir, 'work3')],
        readyTimeoutMs: 8000,
      }),
    ).rejects.toThrow(/no gluster server is reachable: 127\.0\.0\.3:24007/);
  });
});

for (const layout of ['subdir', 'volume'] as const) {
  describe(`glusterfs backend, layout ${layout}`, () => {
    const params = { layout };

    it('creates idempotently by name, keeps data across unstage and stage, and deletes everything', async () => {
      const name = `gl-life-${layout}`;
      const id = await createVolume(name, params);
      const again = await csi.controller.CreateVolume({
        name,
        capacity_range: { required_bytes: 64 * MiB },
        volume_capabilities: [mountCap()],
        parameters: params,
      });
      expect(again.volume!.volume_id).toBe(id);
      expect(again.volume!.capacity_bytes).toBe(64 * MiB);
      await expectGrpcError(
        csi.controller.CreateVolume({
          name,
          capacity_range: { required_bytes: 128 * MiB },
          volume_capabilities: [mountCap()],
          parameters: params,
        }),
        'ALREADY_EXISTS',
      );
      const listed = await csi.controller.ListVolumes({});
      expect(listed.entries.map((e) => e.volume!.volume_id)).toContain(id);

      const staging = await stage(id);
      const target = await publish(id, staging);
      await writeFile(join(target, 'data.txt'), `written to ${layout}\n`);
      await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target });
      await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
      expect((await mountsAt(staging)).length).toBe(0);

      const staging2 = await stage(id);
      const target2 = await publish(id, staging2);
      expect(await readFile(join(target2, 'data.txt'), 'utf8')).toBe(`written to ${layout}\n`);
      await csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target2 });
      await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging2 });

      await csi.controller.DeleteVolume({ volume_id: id });
      await csi.controller.DeleteVolume({ volume_id: id }); // gone already: OK
      await expectGrpcError(csi.controller.ControllerGetVolume({ volume_id: id }), 'NOT_FOUND');
      if (layout === 'volume') {
        expect(await glusterd.cli(['volume', 'list'])).not.toContain(id);
        expect(await readdir(brickRoot)).toEqual([]);
      } else {
        const hostingBrick = join(glusterd.dir, 'bricks', HOSTING);
        expect((await readdir(hostingBrick)).filter((n) => n.startsWith('csi-'))).toEqual([]);
      }
      // a new volume of the same name starts empty
      const id2 = await createVolume(name, params);
      expect(id2).toBe(id);
      const staging3 = await stage(id2);
      const target3 = await publish(id2, staging3);
      expect(await readdir(target3)).toEqual([]);
    });

    it("serves two publishes at two targets that see each other's writes", async () => {
      const id = await createVolume(`gl-shared-${layout}`, params);
      const agentA = await publish(id, await stage(id));
      const agentB = await publish(id, await stage(id));
      await writeFile(join(agentA, 'from-a'), 'a');
      await writeFile(join(agentB, 'from-b'), 'b');
      expect(await readFile(join(agentB, 'from-a'), 'utf8')).toBe('a');
      expect(await readFile(join(agentA, 'from-b'), 'utf8')).toBe('b');
    });

    it('refuses writes through a read-only publish', async () => {
      const id = await createVolume(`gl-ro-${layout}`, params);
      const staging = await stage(id);
      const writer = await publish(id, staging);
      await writeFile(join(writer, 'seen'), 'yes');
      const reader = await publish(id, staging, { readonly: true });
      expect(await readFile(join(reader, 'seen'), 'utf8')).toBe('yes');
      await expect(writeFile(join(reader, 'refused'), 'no')).rejects.toMatchObject({ code: 'EROFS' });
      const roStaging = await stage(id, 'MULTI_NODE_READER_ONLY');
      const roTarget = await publish(id, roStaging, { mode: 'MULTI_NODE_READER_ONLY' });
      await expect(writeFile(join(roTarget, 'refused'), 'no')).rejects.toMatchObject({ code: 'EROFS' });
    });

    it('shows the quota as the size in df and grows it online', async () => {
      const id = await createVolume(`gl-quota-${layout}`, params, 96 * MiB);
      const target = await publish(id, await stage(id));
      expect(await totalBytes(target)).toBe(96 * MiB);
      const stats = await csi.node.NodeGetVolumeStats({ volume_id: id, volume_path: target });
      expect(stats.usage.find((u) => u.unit === 'BYTES')?.total).toBe(96 * MiB);

      const grown = await csi.controller.ControllerExpandVolume({
        volume_id: id,
        capacity_range: { required_bytes: 160 * MiB },
        volume_capability: mountCap(),
      });
      expect(grown.capacity_bytes).toBe(160 * MiB);
      expect(grown.node_expansion_required).toBe(false);
      expect(await totalBytes(target)).toBe(160 * MiB);
      expect((await csi.controller.ControllerGetVolume({ volume_id: id })).volume!.capacity_bytes).toBe(160 * MiB);
      // Asking for less than the volume has is already met (no shrink, no error); a limit below it is a shrink.
      const again = await csi.controller.ControllerExpandVolume({ volume_id: id, capacity_range: { required_bytes: 64 * MiB } });
      expect(again.capacity_bytes).toBe(160 * MiB);
      await expectGrpcError(
        csi.controller.ControllerExpandVolume({ volume_id: id, capacity_range: { required_bytes: 32 * MiB, limit_bytes: 64 * MiB } }),
        'OUT_OF_RANGE',
      );
    });

    it('reports a killed FUSE client as abnormal and repairs it on the next stage', async () => {
      const id = await createVolume(`gl-dead-${layout}`, params);
      const staging = await stage(id);
      const target = await publish(id, staging);
      await writeFile(join(target, 'kept'), 'kept');
      const healthy = await csi.node.NodeGetVolumeStats({ volume_id: id, volume_path: target });
      expect(healthy.volume_condition?.abnormal).toBe(false);

      const pid = await fuseClientOf(staging);
      expect(pid, `no glusterfs client process serves ${staging}`).toBeDefined();
      process.kill(pid!, 'SIGKILL');
      await expect
        .poll(
          () =>
            readdir(target).then(
              () => 'alive',
              (e: NodeJS.ErrnoException) => e.code,
            ),
          { timeout: 10_000 },
        )
        .toBe('ENOTCONN');

      const dead = await csi.node.NodeGetVolumeStats({ volume_id: id, volume_path: target });
      expect(dead.volume_condition?.abnormal).toBe(true);
      expect(dead.volume_condition?.message).toMatch(/transport endpoint is not connected/);
      await expectGrpcError(
        csi.node.NodePublishVolume({
          volume_id: id,
          staging_target_path: staging,
          target_path: join(dir, 'never'),
          volume_capability: mountCap(),
          readonly: false,
        }),
        'FAILED_PRECONDITION',
      );

      await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: mountCap() });
      expect(await readFile(join(staging, 'kept'), 'utf8')).toBe('kept');
      await csi.node.NodePublishVolume({
        volume_id: id,
        staging_target_path: staging,
        target_path: target,
        volume_capability: mountCap(),
        readonly: false,
      });
      expect(await readFile(join(target, 'kept'), 'utf8')).toBe('kept');
      const repaired = await csi.node.NodeGetVolumeStats({ volume_id: id, volume_path: target });
      expect(repaired.volume_condition?.abnormal).toBe(false);
      expect((await mountsAt(target)).length).toBe(1);
    });
  });
}
