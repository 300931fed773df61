// Mesos' docker/volume isolator through dvdcli's exact call sequences, against the plugin's Docker API
// socket on the loop backend: two tasks on one volume, an agent (and plugin) restart in between, one
// unmount when the last task ends; volumes made by dvdcli and by CSI are usable and deletable by the other.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients, type CsiClients } from '../helpers/client.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, mountsUnder, removeTempDir } from '../helpers/tmp.js';
import { Dvdcli, MesosDockerVolumeIsolator } from './dvdcli.js';

let plugin: PluginProcess;
let csi: CsiClients;
let dir: string;
let socket: string;
let dockerRoot: string;

const MOUNT = ['Plugin.Activate', 'VolumeDriver.Get', 'VolumeDriver.Mount'];
const MOUNT_CREATING = ['Plugin.Activate', 'VolumeDriver.Get', 'VolumeDriver.Create', 'VolumeDriver.Mount'];
const UNMOUNT = ['Plugin.Activate', 'VolumeDriver.Get', 'VolumeDriver.Unmount'];

const holders = async (): Promise<Record<string, { volumeId: string; holders: string[] }>> =>
  (
    JSON.parse(await readFile(join(dockerRoot, '.mounts.json'), 'utf8').catch(() => '{"volumes":{}}')) as {
      volumes: Record<string, { volumeId: string; holders: string[] }>;
    }
  ).volumes;

beforeAll(async () => {
  dir = await makeTempDir('dvdcli');
  socket = join(dir, 'rexcsi.sock');
  dockerRoot = join(dir, 'docker');
  plugin = await startPlugin({ name: 'dvdcli', args: ['--docker-endpoint', socket, '--docker-root', dockerRoot] });
  csi = csiClients(plugin.endpoint);
});

afterAll(async () => {
  csi?.close();
  await plugin?.cleanup();
  if (dir) await removeTempDir(dir);
});

describe('dvdcli (Mesos docker/volume isolator) on the Docker API', () => {
  it('two tasks share a volume across an agent and plugin restart; it is unmounted once, when the last task ends', async () => {
    const dvdA = new Dvdcli(socket);
    const taskA = new MesosDockerVolumeIsolator(dvdA, join(dir, 'checkpoint'));
    const mountA = await taskA.prepare('container-a', 'mesos-vol', { size: '1' });
    expect(dvdA.calls).toEqual(MOUNT_CREATING);
    expect(mountA).toBe(join(dockerRoot, 'mesos-vol', 'data'));
    await writeFile(join(mountA, 'from-a'), 'task a\n');

    const dvdB = new Dvdcli(socket);
    const mountB = await new MesosDockerVolumeIsolator(dvdB, join(dir, 'checkpoint')).prepare('container-b', 'mesos-vol', { size: '1' });
    expect(dvdB.calls).toEqual(MOUNT); // Get found it: no second Create
    expect(mountB).toBe(mountA);
    expect(await readFile(join(mountB, 'from-a'), 'utf8')).toBe('task a\n');
    expect((await holders())['mesos-vol']?.holders).toEqual(['']); // dvdcli sends no ID: one holder

    // The agent restarts (a new isolator over the same checkpoint) and so does the plugin, killed.
    plugin.kill('SIGKILL');
    await plugin.waitForExit();
    await plugin.restart();
    const dvdAfter = new Dvdcli(socket);
    const restarted = new MesosDockerVolumeIsolator(dvdAfter, join(dir, 'checkpoint'));

    await restarted.cleanup('container-a'); // task B still uses it: Mesos calls nothing
    expect(dvdAfter.calls).toEqual([]);
    expect(await mountsUnder(mountA)).toHaveLength(1);
    await writeFile(join(mountB, 'from-b'), 'task b\n');

    await restarted.cleanup('container-b');
    expect(dvdAfter.calls).toEqual(UNMOUNT);
    expect(await mountsUnder(mountA)).toHaveLength(0);
    expect(await holders()).toEqual({});

    // A new task finds the data both tasks wrote.
    const dvdC = new Dvdcli(socket);
    const mountC = await dvdC.mount('mesos-vol', { size: '1' });
    expect(await readFile(join(mountC, 'from-b'), 'utf8')).toBe('task b\n');
    await dvdC.unmount('mesos-vol');
    expect(await mountsUnder(mountC)).toHaveLength(0);
  });

  it('a repeated dvdcli unmount (a retry after a lost answer) is success and changes nothing', async () => {
    const dvd = new Dvdcli(socket);
    await dvd.mount('retry-vol', { size: '64Mi' });
    await dvd.unmount('retry-vol');
    await dvd.unmount('retry-vol');
    expect(await holders()).toEqual({});
  });

  it('a volume made by dvdcli is a CSI volume CSI deletes, refused while mounted; one made by CSI mounts through dvdcli', async () => {
    const dvd = new Dvdcli(socket);
    await dvd.mount('from-dvdcli', { size: '64Mi', fstype: 'ext4' });
    const id = (await holders())['from-dvdcli']!.volumeId;
    const { volume } = await csi.controller.ControllerGetVolume({ volume_id: id });
    expect(Number(volume?.capacity_bytes)).toBe(64 * 2 ** 20);
    await expect(csi.controller.DeleteVolume({ volume_id: id })).rejects.toMatchObject({ code: 9 });
    await dvd.unmount('from-dvdcli');
    await csi.controller.DeleteVolume({ volume_id: id });

    const made = await csi.controller.CreateVolume({
      name: 'from-csi',
      volume_capabilities: [{ mount: { fs_type: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
      capacity_range: { required_bytes: 32 * 2 ** 20 },
    });
    const dvd2 = new Dvdcli(socket);
    const at = await dvd2.mount('from-csi', { size: '16Mi' }); // smaller than it is: compatible
    expect(dvd2.calls).toEqual(MOUNT);
    await writeFile(join(at, 'x'), 'x');
    await dvd2.unmount('from-csi');
    await csi.controller.DeleteVolume({ volume_id: made.volume!.volume_id });
  });
});
