// `--metrics-address`: the plugin serves Prometheus metrics over HTTP; a real loop volume's life (create,
// stage with losetup/mkfs/mount, unstage, delete) and some failed calls must move the figures.
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, unlessGone } from '../helpers/cli.js';
import { csiClients, expectGrpcError, type CsiClients } from '../helpers/client.js';
import { freePort } from '../helpers/moto.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup, makeTempDir, removeTempDir } from '../helpers/tmp.js';

let plugin: PluginProcess;
let csi: CsiClients;
let url: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}/metrics`;
  plugin = await startPlugin({ name: 'metrics', args: ['--metrics-address', `127.0.0.1:${port}`] });
  csi = csiClients(plugin.endpoint);
  cleanup.defer(() => plugin.cleanup());
  cleanup.defer(() => csi.close());
});

afterAll(() => cleanup.run());

async function scrape(): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** The value of one sample, e.g. value(text, 'rexcsi_rpc_calls_total', { method: 'CreateVolume', code: 'OK' }); 0 when absent. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((l): [string, string] => [l[1]!, l[2]!]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

const MOUNT_CAP = { mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } };

describe('Prometheus metrics', () => {
  it('announces the metrics URL in the start-up log line', () => {
    const serving = plugin.jsonLogs().find((l) => l.msg === 'serving');
    expect(serving?.metrics).toBe(url);
  });

  it('counts RPCs by method and code, their latency, backend commands and volumes, as a volume lives', async () => {
    const before = await scrape();
    expect(value(before, 'rexcsi_info', { backend: 'loop', plugin: 'loop.rexcsi.io' })).toBe(1);
    expect(before).toMatch(/^rexcsi_operations_in_flight 0$/m);
    expect(value(before, 'rexcsi_volumes')).toBe(0);
    expect(before).toContain('rexcsi_process_cpu_seconds_total'); // Node process metrics ride along

    const staging = join(plugin.dir, 'staging');
    await mkdir(staging);
    const { volume } = await csi.controller.CreateVolume({
      name: 'metrics-1',
      volume_capabilities: [MOUNT_CAP],
      capacity_range: { required_bytes: 16 << 20 },
    });
    const id = volume!.volume_id;
    cleanup.defer(unlessGone(() => csi.controller.DeleteVolume({ volume_id: id })));
    cleanup.defer(unlessGone(() => csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging })));
    await csi.node.NodeStageVolume({ volume_id: id, staging_target_path: staging, volume_capability: MOUNT_CAP });
    await expectGrpcError(csi.controller.ControllerGetVolume({ volume_id: 'vol-does-not-exist' }), 'NOT_FOUND');
    await expectGrpcError(csi.controller.CreateVolume({ name: '' }), 'INVALID_ARGUMENT');

    const during = await scrape();
    expect(value(during, 'rexcsi_rpc_calls_total', { method: 'CreateVolume', code: 'OK' })).toBe(1);
    expect(value(during, 'rexcsi_rpc_calls_total', { method: 'CreateVolume', code: 'INVALID_ARGUMENT' })).toBe(1);
    expect(value(during, 'rexcsi_rpc_calls_total', { method: 'ControllerGetVolume', code: 'NOT_FOUND' })).toBe(1);
    expect(value(during, 'rexcsi_rpc_calls_total', { method: 'NodeStageVolume', code: 'OK' })).toBe(1);
    expect(value(during, 'rexcsi_rpc_duration_seconds_count', { method: 'NodeStageVolume', code: 'OK' })).toBe(1);
    expect(value(during, 'rexcsi_rpc_duration_seconds_sum', { method: 'NodeStageVolume', code: 'OK' })).toBeGreaterThan(0);
    expect(value(during, 'rexcsi_rpc_duration_seconds_bucket', { method: 'NodeStageVolume', code: 'OK', le: '+Inf' })).toBe(1);
    // Staging a blank volume attached a loop device and made a filesystem: the OS commands were counted.
    expect(value(during, 'rexcsi_backend_calls_total', { kind: 'exec', operation: 'losetup', result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(value(during, 'rexcsi_backend_calls_total', { kind: 'exec', operation: 'mkfs.ext4', result: 'ok' })).toBe(1);
    expect(value(during, 'rexcsi_backend_call_duration_seconds_count', { kind: 'exec', operation: 'mkfs.ext4' })).toBe(1);
    expect(value(during, 'rexcsi_volumes')).toBe(1);

    await csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging });
    await csi.controller.DeleteVolume({ volume_id: id });
    const after = await scrape();
    expect(value(after, 'rexcsi_volumes')).toBe(0);
    expect(value(after, 'rexcsi_rpc_calls_total', { method: 'DeleteVolume', code: 'OK' })).toBe(1);
    // mount(8) forks umount; the syscall mounter (the default where koffi loads) unmounts without a child process.
    const viaMount8 = process.env.REXCSI_MOUNTER === 'mount';
    expect(value(after, 'rexcsi_mounter_info', { mounter: viaMount8 ? 'mount(8)' : 'syscall' })).toBe(1);
    const umounts = value(after, 'rexcsi_backend_calls_total', { kind: 'exec', operation: 'umount', result: 'ok' });
    if (viaMount8) expect(umounts).toBeGreaterThanOrEqual(1);
    else expect(umounts).toBe(0);
  });

  it('answers 404 away from /metrics', async () => {
    const res = await fetch(url.replace('/metrics', '/nothing'));
    expect(res.status).toBe(404);
  });
});

describe('--metrics-address at start-up', () => {
  it('refuses a malformed address with one line naming it', async () => {
    const dir = await makeTempDir('metrics-bad');
    try {
      const r = await runCli([
        'serve',
        '--endpoint',
        join(dir, 'csi.sock'),
        '--pool-dir',
        join(dir, 'pool'),
        '--metrics-address',
        'localhost',
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('rexcsi: --metrics-address="localhost": expected host:port, e.g. 127.0.0.1:9808 or :9808\n');
    } finally {
      await removeTempDir(dir);
    }
  });

  it('stops with one line when the port is taken, leaving no socket behind', async () => {
    const dir = await makeTempDir('metrics-busy');
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await runCli([
        'serve',
        '--endpoint',
        join(dir, 'csi.sock'),
        '--pool-dir',
        join(dir, 'pool'),
        '--metrics-address',
        `127.0.0.1:${port}`,
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toBe(`rexcsi: --metrics-address=127.0.0.1:${port}: cannot listen (EADDRINUSE)\n`);
      expect(existsSync(join(dir, 'csi.sock'))).toBe(false);
    } finally {
      busy.close();
      await removeTempDir(dir);
    }
  });
});
