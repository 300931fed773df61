// Starts moto_server (the AWS API emulator, moto 5.2.1) on a free loopback port for the ebs and efs tests,
// and stops it afterwards. Every started server is tracked and stopped by stopAllMoto() (test/setup.ts),
// so a failing test leaves no process behind.
//
//   const moto = await startMoto();
//   process.env.AWS_ENDPOINT_URL = moto.endpoint;   // or pass it to the plugin: --endpoint-url
//   ...
//   await moto.stop();

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface MotoServer {
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly port: number;
  readonly proc: ChildProcess;
  /** Environment for an AWS SDK client or a plugin process pointed at this server. */
  env(): Record<string, string>;
  /** Empties every emulated account and region (POST /moto-api/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
  logs(): string;
}

const running = new Set<MotoServer>();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(endpoint: string, proc: ChildProcess, logs: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`moto_server exited with ${proc.exitCode}:\n${logs()}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms:\n${logs()}`);
}

export async function startMoto(opts: { readyTimeoutMs?: number } = {}): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const proc = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (b: Buffer) => {
    output = (output + b.toString('utf8')).slice(-1024 * 1024);
  };
  proc.stdout?.on('data', append);
  proc.stderr?.on('data', append);
  const spawnError = new Promise<never>((_, reject) =>
    proc.once('error', (e) =>
      reject(new Error(`cannot start moto_server: ${e.message} (is moto[server] installed? bash scripts/install-deps.sh)`)),
    ),
  );
  const server: MotoServer = {
    endpoint,
    port,
    proc,
    env: () => ({
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    }),
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: ${res.status}`);
    },
    async stop() {
      running.delete(server);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    logs: () => output,
  };
  running.add(server);
  try {
    await Promise.race([waitReady(endpoint, proc, () => output, opts.readyTimeoutMs ?? 30_000), spawnError]);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

export async function stopAllMoto(): Promise<void> {
  await Promise.all([...running].map((m) => m.stop()));
}
