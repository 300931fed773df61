// The Docker volume plugin API on the loop backend, driven by a real Docker engine (Debian's dockerd, its
// own busybox image): docker volume create/ls/rm and containers mounting volumes, with the plugin
// SIGKILLed and restarted while a container holds a volume.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients, type CsiClients } from '../helpers/client.js';
import { BUSYBOX_IMAGE, startDockerd, stopAllDockerd, type Dockerd } from '../helpers/dockerd.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, mountsUnder, removeTempDir } from '../helpers/tmp.js';

let docker: Dockerd;
let plugin: PluginProcess;
let csi: CsiClients;
let dockerRoot: string;

const MOUNT_CAP = { mount: { fs_type: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } };

async function holdersFile(): Promise<Record<string, { volumeId: string; holders: string[] }>> {
  const text = await readFile(join(dockerRoot, '.mounts.json'), 'utf8').catch(() => '{"volumes":{}}');
  return (JSON.parse(text) as { volumes: Record<string, { volumeId: string; holders: string[] }> }).volumes;
}

const dataPath = (name: string) => join(dockerRoot, name, 'data');
const isMounted = async (name: string) => (await mountsUnder(dataPath(name))).length > 0;

/** `docker run --rm --network none -v NAME:/data busybox sh -c SCRIPT`, its stdout. */
function runInContainer(volume: string, script: string, extra: string[] = []): Promise<string> {
  return docker.run(['run', '--rm', '--network', 'none', ...extra, '-v', `${volume}:/data`, BUSYBOX_IMAGE, 'sh', '-c', script]);
}

/** A detached container holding the volume until it is removed. */
async function holdInContainer(volume: string, name: string): Promise<void> {
  await docker.run(['run', '-d', '--name', name, '--network', 'none', '-v', `${volume}:/data`, BUSYBOX_IMAGE, 'sleep', '600']);
}

async function listedNames(): Promise<string[]> {
  const out: string[] = [];
  let token = '';
  do {
    const page = await csi.controller.ListVolumes({ max_entries: 0, starting_token: token });
    out.push(...page.entries.map((e) => e.volume?.volume_id ?? ''));
    token = page.next_token;
  } while (token !== '');
  return out;
}

beforeAll(async () => {
  docker = await startDockerd();
  dockerRoot = join(await makeTempDir('docker-root'), 'docker');
  plugin = await startPlugin({ name: 'docker-loop', args: ['--docker-endpoint', docker.pluginSocket, '--docker-root', dockerRoot] });
  csi = csiClients(plugin.endpoint);
});

afterAll(async () => {
  csi?.close();
  // Containers first (they hold the mounts), then the engine, then the plugin, then the root.
  if (docker) await docker.tryRun(['rm', '-f', 'holder-a', 'holder-b', 'holder-k']);
  await stopAllDockerd();
  await plugin?.cleanup();
  if (dockerRoot) await removeTempDir(join(dockerRoot, '..'));
});

describe('Docker volume plugin API on the loop backend, with a real dockerd', () => {
  it('docker volume create --opt size=64Mi makes a 64 MiB CSI volume; one container writes, a second reads it back', async () => {
    await docker.run(['volume', 'create', '-d', docker.driver, '--opt', 'size=64Mi', 'v1']);
    const inspect = JSON.parse(await docker.run(['volume', 'inspect', 'v1'])) as {
      Driver: string;
      Status: { capacityBytes: number; volumeId: string };
    }[];
    expect(inspect[0]!.Driver).toBe(docker.driver);
    expect(inspect[0]!.Status.capacityBytes).toBe(64 * 2 ** 20);
    const { volume } = await csi.controller.ControllerGetVolume({ volume_id: inspect[0]!.Status.volumeId });
    expect(Number(volume?.capacity_bytes)).toBe(64 * 2 ** 20);

    await runInContainer('v1', 'echo written-by-one > /data/hello && df -k /data | wc -l');
    expect(await runInContainer('v1', 'cat /data/hello')).toBe('written-by-one\n');
    // Both containers are gone: nothing mounted, nobody counted.
    expect(await isMounted('v1')).toBe(false);
    expect(await holdersFile()).toEqual({});
  });

  it('two containers hold the volume at once; the first to exit leaves it mounted for the other', async () => {
    await holdInContainer('v1', 'holder-a');
    await holdInContainer('v1', 'holder-b');
    expect((await holdersFile()).v1?.holders).toHaveLength(2);
    await docker.run(['rm', '-f', 'holder-a']);
    expect(await isMounted('v1')).toBe(true);
    expect((await holdersFile()).v1?.holders).toHaveLength(1);
    await docker.run(['exec', 'holder-b', 'sh', '-c', 'echo still-here > /data/b && cat /data/hello']);
    expect(await docker.run(['exec', 'holder-b', 'cat', '/data/b'])).toBe('still-here\n');

    // While a container holds it, CSI DeleteVolume is refused, naming the Docker volume.
    const id = (await holdersFile()).v1!.volumeId;
    await expect(csi.controller.DeleteVolume({ volume_id: id })).rejects.toMatchObject({
      code: 9, // FAILED_PRECONDITION
      details: expect.stringContaining('mounted through the Docker API as v1') as unknown,
    });
    // ... and so is docker volume rm.
    const rm = await docker.tryRun(['volume', 'rm', 'v1']);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toMatch(/in use|mounted/);

    await docker.run(['rm', '-f', 'holder-b']);
    expect(await isMounted('v1')).toBe(false);
    expect(await holdersFile()).toEqual({});
  });

  it('a plugin killed (SIGKILL) and restarted keeps the counts: one container exiting does not pull the volume from another', async () => {
    await holdInContainer('v1', 'holder-k');
    expect((await holdersFile()).v1?.holders).toHaveLength(1);
    plugin.kill('SIGKILL');
    await plugin.waitForExit();
    await plugin.restart();
    // A second container mounts and unmounts across the restart ...
    expect(await runInContainer('v1', 'cat /data/b')).toBe('still-here\n');
    // ... and the first one still has it.
    expect(await isMounted('v1')).toBe(true);
    await docker.run(['exec', 'holder-k', 'sh', '-c', 'echo after-restart > /data/k']);
    plugin.kill('SIGKILL');
    await plugin.waitForExit();
    await plugin.restart();
    await docker.run(['rm', '-f', 'holder-k']);
    expect(await isMounted('v1')).toBe(false);
    expect(await runInContainer('v1', 'cat /data/k')).toBe('after-restart\n');
  });

  it('docker volume ls lists a volume made through CSI, and docker volume rm deletes it for CSI too', async () => {
    const { volume } = await csi.controller.CreateVolume({
      name: 'made-by-csi',
      volume_capabilities: [MOUNT_CAP],
      capacity_range: { required_bytes: 32 * 2 ** 20 },
    });
    const names = (await docker.run(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}'])).split('\n');
    expect(names).toContain(`${docker.driver} made-by-csi`);
    expect(names).toContain(`${docker.driver} v1`);
    // Usable through Docker ...
    await runInContainer('made-by-csi', 'echo csi > /data/x');
    expect(await runInContainer('made-by-csi', 'cat /data/x')).toBe('csi\n');
    // ... and deletable through it.
    await docker.run(['volume', 'rm', 'made-by-csi']);
    expect(await listedNames()).not.toContain(volume!.volume_id);
  });

  it('docker volume rm of a Docker-made volume deletes the CSI volume', async () => {
    const id = (JSON.parse(await docker.run(['volume', 'inspect', 'v1'])) as { Status: { volumeId: string } }[])[0]!.Status.volumeId;
    expect(await listedNames()).toContain(id);
    await docker.run(['volume', 'rm', 'v1']);
    expect(await listedNames()).not.toContain(id);
    expect((await docker.run(['volume', 'ls', '--format', '{{.Name}}'])).split('\n')).not.toContain('v1');
  });
});
