// PluginMetrics on its own registry, with the real in-flight tracker: figures that a scrape of a running
// plugin cannot catch reliably (an operation in flight) and the backend-call hook.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backends/backend.js';
import { Inflight } from '../../src/csi/inflight.js';
import { parseMetricsAddress } from '../../src/metrics-address.js';
import { PluginMetrics, observeBackendCall, serveMetrics } from '../../src/metrics.js';
import { pino } from 'pino';

const labels = { plugin: 'loop.rexcsi.io', backend: 'loop', mode: 'both', version: 'test' };
// Counting volumes is off here, so the backend is never called.
const noBackend = {} as Backend;

async function sample(m: PluginMetrics, name: string): Promise<string> {
  const text = await m.registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

describe('metrics', () => {
  it('shows operations in flight while they run', async () => {
    const inflight = new Inflight();
    const m = new PluginMetrics({ backend: noBackend, inflight, countVolumes: false, labels });
    let release!: () => void;
    const running = inflight.run('NodeStageVolume', ['vol:a'], 'fp-a', () => new Promise<void>((r) => (release = r)));
    expect(await sample(m, 'rexcsi_operations_in_flight ')).toBe('rexcsi_operations_in_flight 1');
    release();
    await running;
    expect(await sample(m, 'rexcsi_operations_in_flight ')).toBe('rexcsi_operations_in_flight 0');
  });

  it('takes backend calls through observeBackendCall only while metrics are served', async () => {
    observeBackendCall('ec2', 12, true, 'CreateVolume'); // no server yet: a no-op, no throw
    const server = await serveMetrics(
      { host: '127.0.0.1', port: 0 },
      { backend: noBackend, inflight: new Inflight(), countVolumes: false, labels },
      pino({ level: 'silent' }),
    );
    try {
      observeBackendCall('ec2', 12, true, 'CreateVolume');
      observeBackendCall('ec2', 3000, false, 'CreateVolume');
      const text = await (await fetch(server.url)).text();
      expect(text).toContain('rexcsi_backend_calls_total{kind="ec2",operation="CreateVolume",result="ok"} 1');
      expect(text).toContain('rexcsi_backend_calls_total{kind="ec2",operation="CreateVolume",result="error"} 1');
      expect(text).toContain('rexcsi_backend_call_duration_seconds_count{kind="ec2",operation="CreateVolume"} 2');
    } finally {
      await server.close();
    }
  });

  it('parses host:port, [v6]:port and :port, and explains anything else', () => {
    expect(parseMetricsAddress('127.0.0.1:9808')).toEqual({ host: '127.0.0.1', port: 9808 });
    expect(parseMetricsAddress('[::1]:9808')).toEqual({ host: '::1', port: 9808 });
    expect(parseMetricsAddress(':9808')).toEqual({ host: '0.0.0.0', port: 9808 });
    expect(parseMetricsAddress('9808')).toMatch(/expected host:port/);
    expect(parseMetricsAddress('h:70000')).toMatch(/expected host:port/);
  });
});
