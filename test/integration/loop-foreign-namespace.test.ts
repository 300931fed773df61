// Why DeleteVolume can answer FAILED_PRECONDITION right after a successful NodeUnstageVolume (seen in the Mesos
// scenarios while a sandbox like scripts/sandbox.sh ran beside them): a process that makes a mount namespace with
// private propagation while a volume is staged (unshare -m, that sandbox) keeps its own copy of the mount;
// our unmount does not reach it, so the loop device stays busy and `losetup --detach` only marks it autoclear.
// Real parts: the plugin, a loop device, ext4, and a real private mount namespace made with unshare(1).
// The answer must say so (which process holds it, what to do), and the delete must work once it is gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listLoopDevices } from '../../src/os/index.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';

const MOUNT = { access_mode: { mode: 'SINGLE_NODE_WRITER' as const }, mount: { fs_type: 'ext4', mount_flags: [] } };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let plugin: PluginProcess;
let csi: CsiClients;
let holder: ChildProcess | undefined;

beforeAll(async () => {
  plugin = await startPlugin({ name: 'loop-foreign-ns' });
  csi = csiClients(plugin.endpoint);
});

afterAll(async () => {
  if (holder && holder.exitCode === null && holder.signalCode === null) {
    holder.kill('SIGKILL');
    await new Promise((r) => holder!.once('close', r));
  }
  csi?.close();
  await plugin?.cleanup();
});

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('loop DeleteVolume after NodeUnstage while another mount namespace holds a copy of the mount', () => {
  it('answers FAILED_PRECONDITION naming the holding process, then deletes once that namespace is gone', async () => {
    const { volume } = await csi.controller.CreateVolume({
      name: 'foreign-ns',
      capacity_range: { required_bytes: 16 * 1024 * 1024 },
      volume_capabilities: [MOUNT],
    });
    const id = volume!.volume_id;
    const staging = join(plugin.dir, 'staging');
    await mkdir(staging);
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT });
    expect(await loopDevicesOfVolume(id)).toHaveLength(1);

    // What sandbox.sh does first: a new mount namespace, private propagation, copying every mount there is.
    holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '600'], { stdio: 'ignore' });
    const pid = holder.pid!;
    await waitFor('the copy of the staging mount in the new namespace', async () =>
      (await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '')).includes(` ${staging} `),
    );

    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    const err = await expectGrpcError(csi.controller.DeleteVolume({ volume_id: id }), 'FAILED_PRECONDITION');
    expect(err.details).toContain(`process ${pid}`);
    expect(err.details).toMatch(/not staged here any more/);
    expect(err.details).toMatch(/retry DeleteVolume/);

    holder.kill('SIGKILL');
    await new Promise((r) => holder!.once('close', r));
    await waitFor('the kernel to free the loop device', async () => (await loopDevicesOfVolume(id)).length === 0);
    await csi.controller.DeleteVolume({ volume_id: id });
    expect((await csi.controller.ListVolumes({})).entries.some((e) => e.volume?.volume_id === id)).toBe(false);
  });
});

/** The loop devices whose backing file is this volume's image, wherever the pool keeps it. */
async function loopDevicesOfVolume(id: string): Promise<string[]> {
  return (await listLoopDevices()).filter((d) => d.backingFile.includes(id)).map((d) => d.device);
}
