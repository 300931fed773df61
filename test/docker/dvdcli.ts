// A client that makes exactly dvdcli's calls to a Docker volume plugin socket, as Mesos' docker/volume
// isolator runs it (`dvdcli mount --volumedriver=D --volumename=N --volumeopts=k=v`, `dvdcli unmount ...`):
//   mount:   Plugin.Activate -> VolumeDriver.Get -> (VolumeDriver.Create when Get failed) -> VolumeDriver.Mount
//   unmount: Plugin.Activate -> VolumeDriver.Get -> VolumeDriver.Unmount
// dvdcli sends no mount ID (its Mount and Unmount bodies carry only the Name). Every call is recorded.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callDockerApi } from '../../src/docker/client.js';

export class DvdcliError extends Error {}

export class Dvdcli {
  readonly calls: string[] = [];

  constructor(private readonly socketPath: string) {}

  private async call(method: string, body: unknown): Promise<Record<string, unknown>> {
    this.calls.push(method);
    const res = await callDockerApi(this.socketPath, method, body, 120_000);
    const err = typeof res.body.Err === 'string' ? res.body.Err : '';
    if (res.status !== 200 || err) throw new DvdcliError(`${method}: ${err || `HTTP ${res.status}`}`);
    return res.body;
  }

  /** `dvdcli mount`: prints (returns) the mount point. */
  async mount(name: string, opts: Record<string, string> = {}): Promise<string> {
    await this.call('Plugin.Activate', null);
    try {
      await this.call('VolumeDriver.Get', { Name: name });
    } catch (e) {
      if (!(e instanceof DvdcliError)) throw e;
      await this.call('VolumeDriver.Create', { Name: name, Opts: opts });
    }
    const res = await this.call('VolumeDriver.Mount', { Name: name });
    return String(res.Mountpoint);
  }

  /** `dvdcli unmount` */
  async unmount(name: string): Promise<void> {
    await this.call('Plugin.Activate', null);
    await this.call('VolumeDriver.Get', { Name: name });
    await this.call('VolumeDriver.Unmount', { Name: name });
  }
}

/**
 * What Mesos' docker/volume isolator does around dvdcli: every container's volumes are checkpointed
 * (--docker_volume_checkpoint_dir), `prepare` mounts them, and `cleanup` unmounts a volume only when no
 * other container of this agent still uses it. A new isolator over the same directory is an agent restart.
 */
export class MesosDockerVolumeIsolator {
  constructor(
    private readonly dvdcli: Dvdcli,
    private readonly checkpointDir: string,
  ) {}

  async prepare(containerId: string, volume: string, opts: Record<string, string>): Promise<string> {
    await mkdir(this.checkpointDir, { recursive: true });
    await writeFile(join(this.checkpointDir, containerId), JSON.stringify({ volume }));
    return this.dvdcli.mount(volume, opts);
  }

  async cleanup(containerId: string): Promise<void> {
    const mine = await this.volumeOf(containerId);
    await rm(join(this.checkpointDir, containerId), { force: true });
    if (mine === undefined) return;
    for (const other of await readdir(this.checkpointDir)) {
      if ((await this.volumeOf(other)) === mine) return; // still used by another container: Mesos does not unmount
    }
    await this.dvdcli.unmount(mine);
  }

  private async volumeOf(containerId: string): Promise<string | undefined> {
    const text = await readFile(join(this.checkpointDir, containerId), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as { volume: string }).volume;
  }
}
