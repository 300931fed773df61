// The plugin under measurement: the built dist/main.js, spawned on its own socket and pool, timed from
// spawn to its first successful Probe. test/helpers/plugin.ts polls every 100 ms, too coarse to time a
// start-up of a few hundred milliseconds, so this launcher polls every 2 ms and is otherwise the same.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { csiClients } from '../test/helpers/client.js';
import { PLUGIN_MAIN, REPO_ROOT } from '../test/helpers/plugin.js';
import { nowMs } from './stats.js';

const POLL_MS = 2;
const OUTPUT_TAIL_CHARS = 64 * 1024;

export interface Memory {
  /** Resident set now (VmRSS), bytes. */
  rssBytes: number;
  /** Highest resident set since the process started (VmHWM), bytes. */
  peakBytes: number;
}

export class BenchPlugin {
  readonly socketPath: string;
  readonly endpoint: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private done = false;
  private output = '';

  constructor(
    readonly dir: string,
    readonly poolDir: string,
    /** --mounter: syscall (mount(2)) or mount (mount(8)) */
    readonly mounter: 'syscall' | 'mount' = 'syscall',
  ) {
    this.socketPath = join(dir, 'csi.sock');
    this.endpoint = `unix://${this.socketPath}`;
  }

  get pid(): number {
    if (!this.child?.pid) throw new Error('plugin not started');
    return this.child.pid;
  }

  /** Spawns the plugin and resolves to the milliseconds from spawn to the first Probe that answered ready. */
  async start(timeoutMs = 20_000): Promise<number> {
    if (!existsSync(PLUGIN_MAIN)) throw new Error(`${PLUGIN_MAIN} does not exist: run npm run build first`);
    await mkdir(this.poolDir, { recursive: true });
    const argv = [
      PLUGIN_MAIN,
      'serve',
      '--backend',
      'loop',
      '--endpoint',
      this.endpoint,
      '--pool-dir',
      this.poolDir,
      '--node-id',
      'bench-node',
      '--mounter',
      this.mounter,
    ];
    const started = nowMs();
    // Its own process group: a Ctrl-C at the terminal reaches the benchmark, which stops the plugin in order.
    const child = spawn(process.execPath, argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.done = false;
    // Read everything: a plugin whose stdout pipe fills up blocks on its next log line.
    child.stdout.setEncoding('utf8').on('data', (c: string) => this.append(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => this.append(c));
    this.exited = new Promise<void>((resolve) => {
      child.on('error', (e) => this.append(`[spawn error] ${e.message}\n`));
      child.on('close', () => {
        this.done = true;
        resolve();
      });
    });
    await this.waitForProbe(started + timeoutMs);
    return nowMs() - started;
  }

  private append(chunk: string): void {
    this.output = (this.output + chunk).slice(-OUTPUT_TAIL_CHARS);
  }

  private async waitForProbe(deadline: number): Promise<void> {
    let last = 'the socket was not created';
    while (nowMs() < deadline) {
      if (this.done) throw new Error(`the plugin exited before it answered Probe:\n${this.output}`);
      if (await isSocket(this.socketPath)) {
        const csi = csiClients(this.endpoint); // a fresh channel: a failed one waits out a reconnect backoff
        try {
          const res = await csi.identity.Probe({}, { deadlineMs: 1000 });
          if (res.ready == null || res.ready.value) return;
          last = 'Probe answered ready=false';
        } catch (e) {
          last = `Probe failed: ${(e as Error).message}`;
        } finally {
          csi.close();
        }
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    await this.stop();
    throw new Error(`the plugin did not answer Probe in time (${last}):\n${this.output}`);
  }

  async memory(): Promise<Memory> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kib = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      if (!m) throw new Error(`/proc/${this.pid}/status has no ${key}`);
      return Number(m[1]) * 1024;
    };
    return { rssBytes: kib('VmRSS'), peakBytes: kib('VmHWM') };
  }

  /** SIGTERM (the plugin lets calls in flight finish), SIGKILL to its process group after timeoutMs. */
  async stop(timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child?.pid || this.done) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), timeoutMs);
    });
    const late = await Promise.race([this.exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      await this.exited;
    }
  }

  logs(): string {
    return this.output;
  }
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}
