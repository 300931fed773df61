// The Docker API's semantics on the loop backend, through its socket and through `rexcsi docker ...`
// (the real binary): idempotent Create and Remove, Get/Path/List, an operator's CLI mount counted beside a
// container's, and a Mount whose NodeStage fails leaving nothing behind.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callDockerApi } from '../../src/docker/client.js';
import { listLoopDevices } from '../../src/os/index.js';
import { runCli } from '../helpers/cli.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, mountsUnder, removeTempDir } from '../helpers/tmp.js';

const exec = promisify(execFile);
let plugin: PluginProcess;
let dir: string;
let socket: string;
let root: string;

const api = (method: string, body: unknown) => callDockerApi(socket, method, body);
const docker = (...args: string[]) => runCli(['docker', ...args, '--docker-endpoint', socket]);

beforeAll(async () => {
  dir = await makeTempDir('docker-api');
  socket = join(dir, 'rexcsi.sock');
  root = join(dir, 'docker');
  plugin = await startPlugin({ name: 'docker-api', args: ['--docker-endpoint', socket, '--docker-root', root] });
});

afterAll(async () => {
  await exec('umount', [join(root, 'busy', 'staging')]).catch(() => undefined);
  await plugin?.cleanup();
  if (dir) await removeTempDir(dir);
});

describe('Docker API semantics', () => {
  it('answers Activate and Capabilities (local scope for loop); the socket is mode 0660', async () => {
    expect((await api('Plugin.Activate', null)).body).toEqual({ Implements: ['VolumeDriver'] });
    expect((await api('VolumeDriver.Capabilities', {})).body).toEqual({ Capabilities: { Scope: 'local' } });
    const { stdout } = await exec('stat', ['-c', '%a', socket]);
    expect(stdout.trim()).toBe('660');
  });

  it('Create is idempotent with compatible Opts and an Err naming the difference otherwise; Remove of a missing volume is success', async () => {
    expect((await api('VolumeDriver.Create', { Name: 'c1', Opts: { size: '64Mi' } })).status).toBe(200);
    expect((await api('VolumeDriver.Create', { Name: 'c1', Opts: { size: '32Mi' } })).status).toBe(200);
    expect((await api('VolumeDriver.Create', { Name: 'c1' })).status).toBe(200);
    const bigger = await api('VolumeDriver.Create', { Name: 'c1', Opts: { size: '1' } });
    expect(bigger.status).toBe(500);
    expect(bigger.code).toBe('ALREADY_EXISTS');
    expect(bigger.body.Err).toMatch(/^volume c1 already exists \(vol-[0-9a-f]+\) but it has 67108864 bytes, less than size 1073741824$/);
    const get = await api('VolumeDriver.Get', { Name: 'c1' });
    expect(get.body).toMatchObject({ Volume: { Name: 'c1', Mountpoint: '', Status: { capacityBytes: 64 * 2 ** 20, mounts: 0 } } });
    expect((await api('VolumeDriver.Path', { Name: 'c1' })).body).toEqual({ Mountpoint: '' });
    expect((await api('VolumeDriver.Remove', { Name: 'c1' })).status).toBe(200);
    expect((await api('VolumeDriver.Remove', { Name: 'c1' })).status).toBe(200);
    const missing = await api('VolumeDriver.Get', { Name: 'c1' });
    expect([missing.status, missing.code, missing.body.Err]).toEqual([500, 'NOT_FOUND', 'volume c1 does not exist']);
    const mountMissing = await api('VolumeDriver.Mount', { Name: 'c1', ID: 'x' });
    expect(mountMissing.body.Err).toContain('create it first');
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('rexcsi docker create/mount/ls/unmount/rm: the CLI mount is one more holder beside a container', async () => {
    expect((await docker('create', 'ops', '--opt', 'size=64Mi')).code).toBe(0);
    const mounted = await docker('mount', 'ops');
    expect(mounted).toMatchObject({ code: 0, stdout: `${join(root, 'ops', 'data')}\n` });
    expect((await api('VolumeDriver.Mount', { Name: 'ops', ID: 'container-1' })).status).toBe(200);
    const ls = await docker('ls');
    expect(ls.stdout).toMatch(new RegExp(`^ops +${join(root, 'ops', 'data')}$`, 'm'));
    const rm = await docker('rm', 'ops');
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain('mounted on this node by 2 holders (rexcsi-cli, container-1)');
    // The operator's unmount leaves the container's mount alone ...
    expect((await docker('unmount', 'ops')).code).toBe(0);
    expect(await mountsUnder(join(root, 'ops', 'data'))).toHaveLength(1);
    // ... and the container's is the last one.
    expect((await api('VolumeDriver.Unmount', { Name: 'ops', ID: 'container-1' })).status).toBe(200);
    expect(await mountsUnder(root)).toEqual([]);
    expect((await docker('rm', 'ops')).code).toBe(0);
    const gone = await docker('mount', 'ops');
    expect(gone.code).toBe(4); // NOT_FOUND
    expect(gone.stderr).toContain('NOT_FOUND from VolumeDriver.Mount: volume ops does not exist');
    const unreachable = await runCli(['docker', 'ls', '--docker-endpoint', join(dir, 'nobody.sock')]);
    expect(unreachable.code).toBe(3);
  });

  it('a Mount whose NodeStage fails is an Err and leaves no holder, device or mount behind', async () => {
    expect((await api('VolumeDriver.Create', { Name: 'busy', Opts: { size: '64Mi' } })).status).toBe(200);
    const staging = join(root, 'busy', 'staging');
    await mkdir(staging, { recursive: true });
    await exec('mount', ['-t', 'tmpfs', 'squatter', staging]);
    const ours = async () => (await listLoopDevices()).filter((l) => l.backingFile.startsWith(`${plugin.dir}/`));
    expect(await ours()).toEqual([]);
    const res = await api('VolumeDriver.Mount', { Name: 'busy', ID: 'c' });
    expect(res.code).toBe('ALREADY_EXISTS');
    expect(res.body.Err).toContain(`staging_target_path ${staging} already has squatter (tmpfs) mounted`);
    expect((await api('VolumeDriver.Get', { Name: 'busy' })).body).toMatchObject({ Volume: { Status: { mounts: 0 } } });
    expect(await ours()).toEqual([]);
    await exec('umount', [staging]);
    // Once the squatter is gone the same Mount works, and Remove after Unmount deletes it.
    expect((await api('VolumeDriver.Mount', { Name: 'busy', ID: 'c' })).status).toBe(200);
    expect((await api('VolumeDriver.Unmount', { Name: 'busy', ID: 'c' })).status).toBe(200);
    expect((await api('VolumeDriver.Remove', { Name: 'busy' })).status).toBe(200);
    expect(await mountsUnder(root)).toEqual([]);
  });
});
