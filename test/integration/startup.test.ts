// Start-up, identity and shutdown of the real process.
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { csiClients, expectGrpcError } from '../helpers/client.js';
import { PLUGIN_MAIN, startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

const VERSION = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('identity and modes', () => {
  const started: PluginProcess[] = [];
  afterEach(async () => {
    for (const p of started.splice(0)) await p.cleanup();
  });

  it('names itself, its version and backend, and advertises the controller only when serving it', async () => {
    for (const mode of ['both', 'controller', 'node'] as const) {
      const plugin = await startPlugin({ mode, name: `mode-${mode}` });
      started.push(plugin);
      const csi = csiClients(plugin.endpoint);
      try {
        const info = await csi.identity.GetPluginInfo({});
        expect(info).toEqual({
          name: 'loop.rexcsi.io',
          vendor_version: VERSION,
          manifest: {
            backend: 'loop',
            modes: mode === 'both' ? 'controller,node' : mode,
            // how the node service mounts; a controller alone mounts nothing
            ...(mode === 'controller' ? {} : { mounter: process.env.REXCSI_MOUNTER === 'mount' ? 'mount(8)' : 'syscall' }),
          },
        });
        const caps = (await csi.identity.GetPluginCapabilities({})).capabilities.map((c) => c.service?.type);
        expect(caps.includes('CONTROLLER_SERVICE')).toBe(mode !== 'node');
        expect(caps).toContain('VOLUME_ACCESSIBILITY_CONSTRAINTS');
        expect((await csi.identity.Probe({})).ready).toEqual({ value: true });
        if (mode === 'node') await expectGrpcError(csi.controller.CreateVolume({ name: 'x' }), 'UNIMPLEMENTED');
        else expect((await csi.controller.ControllerGetCapabilities({})).capabilities.length).toBeGreaterThan(0);
        if (mode === 'controller') await expectGrpcError(csi.node.NodeGetInfo({}), 'UNIMPLEMENTED');
        else expect((await csi.node.NodeGetInfo({})).node_id).toBe(plugin.nodeId);
      } finally {
        csi.close();
      }
    }
  });

  it('uses MESOS_AGENT_ID as the node id when no --node-id is given', async () => {
    const plugin = await startPlugin({ name: 'mesos-id', env: { MESOS_AGENT_ID: 'a1b2-S0' }, nodeId: '' });
    started.push(plugin);
    const csi = csiClients(plugin.endpoint);
    try {
      expect((await csi.node.NodeGetInfo({})).node_id).toBe('a1b2-S0');
    } finally {
      csi.close();
    }
  });

  it('creates the socket 0660, and on SIGTERM exits 0 and removes it', async () => {
    const plugin = await startPlugin({ name: 'sigterm' });
    started.push(plugin);
    expect((await stat(plugin.socketPath)).mode & 0o777).toBe(0o660);
    expect(await plugin.stop()).toBe(0);
    await expect(stat(plugin.socketPath)).rejects.toThrow(/ENOENT/);
  });
});

describe('a node service without privileges', () => {
  it('says so in one line at start-up, and Probe answers FAILED_PRECONDITION with it', async () => {
    const dir = await makeTempDir('unprivileged');
    for (const d of ['pool', 'sock']) await mkdir(join(dir, d), { recursive: true });
    for (const d of ['', 'pool', 'sock']) await chmod(join(dir, d), 0o777); // nobody must reach its pool and socket dir
    const proc = spawn(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--inh-caps=-all',
        '--bounding-set=-all',
        process.execPath,
        PLUGIN_MAIN,
        'serve',
        '--pool-dir',
        join(dir, 'pool'),
      ],
      {
        env: { ...process.env, CSI_ENDPOINT: `unix://${join(dir, 'sock', 'csi.sock')}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (out += b.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!out.includes('"msg":"serving"') && Date.now() < deadline && proc.exitCode === null)
        await new Promise((r) => setTimeout(r, 100));
      expect(out, out).toContain('"msg":"serving"');
      const warnings = out.split('\n').filter((l) => l.includes('node service cannot work'));
      expect(warnings).toHaveLength(1);
      const csi = csiClients(`unix://${join(dir, 'sock', 'csi.sock')}`);
      try {
        const err = await expectGrpcError(csi.identity.Probe({}), 'FAILED_PRECONDITION');
        expect(err.details).toMatch(/CAP_SYS_ADMIN|root|loop-control/);
      } finally {
        csi.close();
      }
    } finally {
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      await removeTempDir(dir);
    }
  });
});
