// Starts the built plugin (dist/main.js) as a child process for a test, on its own socket and pool under
// /tmp/rexcsi-test, and waits until it answers csi.v1.Identity/Probe.
//
//   const plugin = await startPlugin();                       // loop backend, controller + node
//   const csi = csiClients(plugin.endpoint);
//   ...
//   expect(await plugin.stop()).toBe(0);                      // SIGTERM, exit code
//
// Every started plugin is tracked; stopAllPlugins() (run by test/setup.ts after each test file) stops the
// ones still running and removes their temp dirs, so a failing test leaves no process behind.
// REXCSI_TEST_KEEP=1 keeps the temp dirs (pool files, sockets) for a look after the run.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { csiClients } from './client.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PLUGIN_MAIN = join(REPO_ROOT, 'dist', 'main.js');

export type PluginMode = 'controller' | 'node' | 'both';

export interface StartPluginOptions {
  /** `--backend` (default 'loop'). `--pool-dir` is passed for the loop backend only. */
  backend?: string;
  /** Extra CLI arguments, appended after the ones the helper passes. */
  args?: string[];
  /** Extra environment on top of this process's (CSI_ENDPOINT is set to the socket unless given here). */
  env?: Record<string, string>;
  /** `--mode`; not passed when unset (the plugin's default is both). */
  mode?: PluginMode;
  /** `--node-id` (default: unique per plugin); null passes none, so the plugin takes MESOS_AGENT_ID or the hostname. */
  nodeId?: string | null;
  /** Prefix of the temp dir name, for telling runs apart (default 'plugin'). */
  name?: string;
  /** How long to wait for the socket and a ready Probe (default 20 s). */
  readyTimeoutMs?: number;
  /** Readiness check instead of csi.v1.Identity/Probe (e.g. csi.v0's for a plugin serving only v0); throws when not ready. */
  ready?: (endpoint: string) => Promise<void>;
  /** A command prefix the plugin runs under, e.g. `nsenter -t PID -m --` to run it in another mount namespace. */
  wrap?: string[];
}

export interface PluginProcess {
  /** The plugin's own temp dir under /tmp/rexcsi-test (socket, pool; put staging/target dirs here too). */
  readonly dir: string;
  readonly socketPath: string;
  /** `unix://<socketPath>` */
  readonly endpoint: string;
  readonly poolDir: string;
  readonly nodeId: string;
  /** The current child process (a new one after restart()). */
  readonly proc: ChildProcess;
  /** Everything the plugin wrote to stdout and stderr so far, across restarts. */
  logs(): string;
  /** The JSON log lines (pino) parsed; other lines are skipped. */
  jsonLogs(): Record<string, unknown>[];
  /** SIGTERM, wait (SIGKILL after timeoutMs, default 10 s); resolves to the exit code, null if killed by a signal. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Sends a signal (default SIGKILL) without waiting; pair with waitForExit(). */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves to the exit code (null if killed by a signal); rejects after timeoutMs (default 10 s). */
  waitForExit(timeoutMs?: number): Promise<number | null>;
  /**
   * stop() then start again on the same socket, pool and node id; waits until ready. `env` is added on top
   * of the start environment for this run only (e.g. a fault point); a later restart() without it drops it.
   */
  restart(env?: Record<string, string>): Promise<void>;
  /** stop() and remove the temp dir (kept when something is still mounted under it). */
  cleanup(): Promise<void>;
}

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const MAX_LOG_CHARS = 16 * 1024 * 1024;

const tracked = new Set<Plugin>();
let exitHookInstalled = false;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

class Plugin implements PluginProcess {
  readonly socketPath: string;
  readonly endpoint: string;
  readonly poolDir: string;
  readonly nodeId: string;
  private readonly argv: string[];
  private readonly env: NodeJS.ProcessEnv;
  private child: ChildProcess | undefined;
  private exitInfo: ExitInfo | undefined;
  private exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null });
  private output = '';
  private runEnv: Record<string, string> = {};

  constructor(
    readonly dir: string,
    private readonly opts: StartPluginOptions,
  ) {
    const backend = opts.backend ?? 'loop';
    this.socketPath = join(dir, 'csi.sock');
    this.endpoint = `unix://${this.socketPath}`;
    this.poolDir = join(dir, 'pool');
    this.nodeId = opts.nodeId === null ? (opts.env?.['MESOS_AGENT_ID'] ?? hostname()) : (opts.nodeId ?? `node-${basename(dir)}`);
    this.argv = [
      PLUGIN_MAIN,
      'serve',
      '--backend',
      backend,
      '--endpoint',
      this.endpoint,
      ...(backend === 'loop' ? ['--pool-dir', this.poolDir] : []),
      ...(opts.nodeId === null ? [] : ['--node-id', this.nodeId]),
      ...(opts.mode ? ['--mode', opts.mode] : []),
      ...(opts.args ?? []),
    ];
    this.env = { ...process.env, CSI_ENDPOINT: this.endpoint, ...opts.env };
  }

  get proc(): ChildProcess {
    if (!this.child) throw new Error('plugin not started');
    return this.child;
  }

  logs(): string {
    return this.output;
  }

  jsonLogs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a partial or non-JSON line
      }
    }
    return out;
  }

  private append(chunk: string): void {
    this.output += chunk;
    if (this.output.length > MAX_LOG_CHARS) this.output = this.output.slice(-MAX_LOG_CHARS / 2);
  }

  private failure(problem: string): Error {
    const cmd = ['node', ...this.argv.map((a) => (a === PLUGIN_MAIN ? 'dist/main.js' : a))].join(' ');
    const tail = this.output.length > 8000 ? `...\n${this.output.slice(-8000)}` : this.output;
    return new Error(`rexcsi plugin ${problem}\ncommand: ${cmd}\n--- plugin output ---\n${tail || '(none)'}`);
  }

  async start(): Promise<void> {
    if (this.child && !this.exitInfo) throw new Error('plugin already running');
    await mkdir(this.poolDir, { recursive: true });
    const [cmd, ...args] = [...(this.opts.wrap ?? []), process.execPath, ...this.argv];
    const child = spawn(cmd!, args, {
      cwd: REPO_ROOT,
      env: { ...this.env, ...this.runEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exitInfo = undefined;
    child.stdout.setEncoding('utf8').on('data', (c: string) => this.append(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => this.append(c));
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.on('error', (e) => {
        this.append(`[spawn error] ${e.message}\n`);
        this.exitInfo = { code: null, signal: null };
        resolve(this.exitInfo);
      });
      // 'close' rather than 'exit': all output has been read by then.
      child.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    await this.waitReady(this.opts.readyTimeoutMs ?? 20_000);
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'the socket was not created';
    while (Date.now() < deadline) {
      if (this.exitInfo) {
        const { code, signal } = this.exitInfo;
        throw this.failure(`exited (${signal ?? `code ${code}`}) before it was ready`);
      }
      if ((await isSocket(this.socketPath)) && this.opts.ready) {
        try {
          await this.opts.ready(this.endpoint);
          return;
        } catch (e) {
          last = `readiness check failed: ${e instanceof Error ? e.message : String(e)}`;
        }
      } else if (await isSocket(this.socketPath)) {
        // A fresh client per attempt: a channel that failed once waits out a reconnect backoff.
        const csi = csiClients(this.endpoint);
        try {
          const res = await csi.identity.Probe({}, { deadlineMs: Math.max(100, Math.min(2000, deadline - Date.now())) });
          if (res.ready == null || res.ready.value) return;
          last = 'Probe answered ready=false';
        } catch (e) {
          last = `Probe failed: ${e instanceof Error ? e.message : String(e)}`;
        } finally {
          csi.close();
        }
      }
      await sleep(100);
    }
    this.child?.kill('SIGKILL');
    await this.exited;
    throw this.failure(`was not ready within ${timeoutMs} ms (${last})`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child && !this.exitInfo) this.child.kill(signal);
  }

  async waitForExit(timeoutMs = 10_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.failure(`did not exit within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return (await Promise.race([this.exited, timeout])).code;
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (!this.child) return null;
    if (this.exitInfo) return this.exitInfo.code;
    this.child.kill('SIGTERM');
    try {
      return await this.waitForExit(timeoutMs);
    } catch {
      this.append(`[test helper] no exit ${timeoutMs} ms after SIGTERM: SIGKILL\n`);
      this.child.kill('SIGKILL');
      await this.exited;
      return null;
    }
  }

  async restart(env: Record<string, string> = {}): Promise<void> {
    await this.stop();
    this.runEnv = env;
    this.append(`[test helper] restart${Object.keys(env).length ? ` with ${JSON.stringify(env)}` : ''}\n`);
    await this.start();
  }

  async cleanup(): Promise<void> {
    await this.stop();
    tracked.delete(this);
    if (process.env['REXCSI_TEST_KEEP'] === '1') return;
    try {
      await removeTempDir(this.dir);
    } catch {
      // Still mounted below it: kept, and the leak check names what is mounted.
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when the test process ends without afterAll hooks (crash, process.exit).
  process.on('exit', () => {
    for (const p of tracked) {
      try {
        p.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Spawns `node dist/main.js serve --backend <loop> --endpoint unix://<dir>/csi.sock --pool-dir <dir>/pool
 * --node-id <id> [--mode <mode>] [...args]` in a new temp dir under /tmp/rexcsi-test and resolves once the
 * socket exists and Identity/Probe answers ready. Rejects (with the plugin's output) when it exits first or
 * is not ready in time.
 */
export async function startPlugin(opts: StartPluginOptions = {}): Promise<PluginProcess> {
  if (!existsSync(PLUGIN_MAIN)) {
    throw new Error(`${PLUGIN_MAIN} does not exist: build the plugin first (npm run build)`);
  }
  const dir = await makeTempDir(opts.name ?? 'plugin');
  const plugin = new Plugin(dir, opts);
  tracked.add(plugin);
  installExitHook();
  try {
    await plugin.start();
  } catch (e) {
    await plugin.cleanup();
    throw e;
  }
  return plugin;
}

/** Stops every plugin started by this process that is still tracked and removes its temp dir. */
export async function stopAllPlugins(): Promise<void> {
  await Promise.all([...tracked].map((p) => p.cleanup()));
}
