import { createServer, type Server } from 'node:http';
import { basename } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Backend } from './backends/backend.js';
import type { Inflight } from './csi/inflight.js';
import type { MetricsAddress } from './metrics-address.js';
import { setExecObserver } from './os/exec.js';

// Prometheus metrics for `--metrics-address`: RPCs by method and gRPC code, operations in flight, calls the
// backends make (OS commands, cloud and gluster requests), and the number of volumes managed. Nothing here
// runs unless metrics are switched on; a broken metric never fails a storage operation.

type BackendCallSink = (kind: string, operation: string, ms: number, ok: boolean) => void;
let backendSink: BackendCallSink | undefined;

/**
 * For backends: report one call to the storage system (an EC2 request, a gluster command) with its duration
 * and outcome. `kind` names the system ('ec2', 'gluster'), `operation` the call ('CreateVolume'); keep both
 * to a small fixed set (they become label values). A no-op unless metrics are served.
 */
export function observeBackendCall(kind: string, ms: number, ok: boolean, operation = ''): void {
  try {
    backendSink?.(kind, operation, ms, ok);
  } catch {
    // metrics must never fail the call they describe
  }
}

export interface MetricsSources {
  backend: Backend;
  inflight: Inflight;
  /** count volumes for rexcsi_volumes (controller side only: a node sidecar does not list them) */
  countVolumes: boolean;
  labels: { plugin: string; backend: string; mode: string; version: string };
  /** the node service's mounter ('syscall' or 'mount(8)'); unset when no node service runs */
  mounter?: string | undefined;
}

const VOLUME_COUNT_TTL_MS = 60_000;
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class PluginMetrics {
  readonly registry = new Registry();
  private readonly rpcCalls: Counter<'method' | 'code'>;
  private readonly rpcSeconds: Histogram<'method' | 'code'>;
  private readonly backendCalls: Counter<'kind' | 'operation' | 'result'>;
  private readonly backendSeconds: Histogram<'kind' | 'operation'>;
  private volumeCount: { value: number; at: number } | undefined;

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'rexcsi_' });
    new Gauge({
      name: 'rexcsi_info',
      help: 'Constant 1, labelled with what this plugin is',
      labelNames: ['plugin', 'backend', 'mode', 'version'],
      registers,
    }).set(sources.labels, 1);
    if (sources.mounter) {
      new Gauge({
        name: 'rexcsi_mounter_info',
        help: 'Constant 1, labelled with how the node service mounts: syscall (mount(2) directly) or mount(8)',
        labelNames: ['mounter'],
        registers,
      }).set({ mounter: sources.mounter }, 1);
    }
    this.rpcCalls = new Counter({
      name: 'rexcsi_rpc_calls_total',
      help: 'CSI calls answered, by method and gRPC code',
      labelNames: ['method', 'code'],
      registers,
    });
    this.rpcSeconds = new Histogram({
      name: 'rexcsi_rpc_duration_seconds',
      help: 'Time to answer a CSI call, by method and gRPC code',
      labelNames: ['method', 'code'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'rexcsi_operations_in_flight',
      help: 'Volume operations running now (distinct requests holding a volume or name)',
      registers,
      collect() {
        this.set(sources.inflight.size);
      },
    });
    this.backendCalls = new Counter({
      name: 'rexcsi_backend_calls_total',
      help: 'Calls to the storage system and OS commands, by kind (exec, ec2, gluster), operation and result (ok, error)',
      labelNames: ['kind', 'operation', 'result'],
      registers,
    });
    this.backendSeconds = new Histogram({
      name: 'rexcsi_backend_call_duration_seconds',
      help: 'Duration of calls to the storage system and OS commands',
      labelNames: ['kind', 'operation'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    if (sources.countVolumes) {
      const countVolumes = () => this.countVolumes();
      new Gauge({
        name: 'rexcsi_volumes',
        help: `Volumes this plugin manages (counted through the backend at most once per ${VOLUME_COUNT_TTL_MS / 1000} s)`,
        registers,
        async collect() {
          const n = await countVolumes();
          if (n !== undefined) this.set(n);
        },
      });
    }
  }

  readonly observeRpc = (method: string, code: Status, ms: number): void => {
    const labels = { method, code: Status[code] ?? String(code) };
    this.rpcCalls.inc(labels);
    this.rpcSeconds.observe(labels, ms / 1000);
    if (code === Status.OK && (method === 'CreateVolume' || method === 'DeleteVolume')) this.volumeCount = undefined;
  };

  readonly observeBackend: BackendCallSink = (kind, operation, ms, ok) => {
    this.backendCalls.inc({ kind, operation, result: ok ? 'ok' : 'error' });
    this.backendSeconds.observe({ kind, operation }, ms / 1000);
  };

  /** Lists the backend's volumes; cached (and dropped after a create or delete), so frequent scrapes stay cheap. */
  private async countVolumes(): Promise<number | undefined> {
    if (this.volumeCount && Date.now() - this.volumeCount.at < VOLUME_COUNT_TTL_MS) return this.volumeCount.value;
    try {
      const n = (await this.sources.backend.listVolumes({ afterId: '', limit: 0 })).length;
      this.volumeCount = { value: n, at: Date.now() };
      return n;
    } catch {
      return this.volumeCount?.value; // keep the last known count when the backend is unreachable
    }
  }
}

export interface MetricsServer {
  metrics: PluginMetrics;
  url: string;
  close(): Promise<void>;
}

export async function serveMetrics(address: MetricsAddress, sources: MetricsSources, log: Logger): Promise<MetricsServer> {
  const metrics = new PluginMetrics(sources);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
        (err: unknown) => {
          log.warn({ err }, 'metrics collection failed');
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
    } else if (path === '/' || path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('rexcsi: metrics at /metrics\n');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found; metrics are at /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = bound && typeof bound === 'object' ? bound.port : address.port;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  backendSink = metrics.observeBackend;
  setExecObserver((cmd, ms, ok) => metrics.observeBackend('exec', basename(cmd), ms, ok));
  return {
    metrics,
    url: `http://${host}:${port}/metrics`,
    async close() {
      setExecObserver(undefined);
      if (backendSink === metrics.observeBackend) backendSink = undefined;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
