// Endpoint security: the socket is created 0660 (mode and group configurable), the plugin never listens on
// TCP (a tcp:// endpoint is refused), and it refuses to start on a path that is a live socket or any other
// file, leaving that file as it was.
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readlink, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiClients } from '../helpers/client.js';
import { PLUGIN_MAIN, REPO_ROOT, startPlugin, type PluginProcess } from '../helpers/plugin.js';

/** The socket inodes a process holds open. */
async function socketInodes(pid: number): Promise<Set<string>> {
  const out = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) out.add(m[1]!);
  }
  return out;
}

/** Inodes of every TCP socket (v4 and v6) in this network namespace. */
async function tcpInodes(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode && inode !== '0') out.add(inode);
    }
  }
  return out;
}

// The socket is the protocol layer's, the same for every backend: checked on loop.
describe('endpoint security (loop backend)', () => {
  let plugin: PluginProcess;

  beforeAll(async () => {
    plugin = await startPlugin({ name: 'endpoint', args: ['--socket-group', '65534'] });
  });

  afterAll(async () => {
    await plugin?.cleanup();
  });

  const serve = (endpoint: string, extra: string[] = []) =>
    spawnSync(process.execPath, [PLUGIN_MAIN, 'serve', '--backend', 'loop', '--pool-dir', join(plugin.dir, 'pool2'), ...extra], {
      cwd: REPO_ROOT,
      env: { ...process.env, CSI_ENDPOINT: endpoint },
      encoding: 'utf8',
      timeout: 20_000,
    });

  it('creates the socket 0660, owned by the configured group', async () => {
    const s = await stat(plugin.socketPath);
    expect(s.isSocket()).toBe(true);
    expect((s.mode & 0o777).toString(8)).toBe('660');
    expect(s.gid).toBe(65534);
  });

  it('takes another mode from --socket-mode', async () => {
    const other = await startPlugin({ name: 'endpoint-mode', args: ['--socket-mode', '0600'] });
    try {
      expect(((await stat(other.socketPath)).mode & 0o777).toString(8)).toBe('600');
    } finally {
      await other.cleanup();
    }
  });

  it('listens on no TCP socket, only on the unix socket', async () => {
    const csi = csiClients(plugin.endpoint);
    await csi.identity.Probe({});
    csi.close();
    const ours = await socketInodes(plugin.proc.pid!);
    expect(ours.size).toBeGreaterThan(0);
    const tcp = await tcpInodes();
    expect([...ours].filter((i) => tcp.has(i))).toEqual([]);
  });

  it.each(['tcp://127.0.0.1:50051', 'dns:///localhost:50051', '127.0.0.1:50051'])('refuses the endpoint %s', (endpoint) => {
    const r = serve(endpoint);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/only unix sockets are served/);
  });

  it('refuses to start on a live socket, which keeps serving', async () => {
    const r = serve(`unix://${plugin.socketPath}`);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/served by another running process/);
    const csi = csiClients(plugin.endpoint);
    expect((await csi.identity.Probe({})).ready?.value ?? true).toBe(true);
    csi.close();
  });

  it('refuses a regular file, a directory and a symlink at the endpoint, and leaves them alone', async () => {
    const dir = join(plugin.dir, 'others');
    await mkdir(join(dir, 'a-dir.sock'), { recursive: true });
    await writeFile(join(dir, 'a-file.sock'), 'precious');
    await symlink(join(dir, 'a-file.sock'), join(dir, 'a-link.sock'));
    for (const name of ['a-file.sock', 'a-dir.sock', 'a-link.sock']) {
      const r = serve(`unix://${join(dir, name)}`);
      expect(r.status, name).not.toBe(0);
      expect(r.stderr, name).toMatch(/is not a socket; not touching it/);
    }
    expect(await readFile(join(dir, 'a-file.sock'), 'utf8')).toBe('precious');
    expect((await stat(join(dir, 'a-dir.sock'))).isDirectory()).toBe(true);
    expect(await readlink(join(dir, 'a-link.sock'))).toBe(join(dir, 'a-file.sock'));
  });
});
