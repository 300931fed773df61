// A private Docker engine for a test: Debian's dockerd with no network set-up, its data, exec root,
// pidfile and containerd sockets in a temp dir under REXCSI_TEST_ROOT, a busybox image imported from
// busybox-static (no registry), and a uniquely named plugin socket path in /run/docker/plugins (the only
// socket directory Docker 20.10 searches: pkg/plugins/discovery_unix.go). Stopped by PID, even when a test fails.
//
//   const docker = await startDockerd();
//   const plugin = await startPlugin({ args: ['--docker-endpoint', docker.pluginSocket, '--docker-root', ...] });
//   await docker.run(['volume', 'create', '-d', docker.driver, 'v1']);
//   await docker.stop();        // also removes the plugin socket path

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from './tmp.js';

export const DOCKER_CLIENT = '/usr/bin/docker';
export const PLUGIN_SOCKET_DIR = '/run/docker/plugins';
export const BUSYBOX_IMAGE = 'local/busybox';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Dockerd {
  readonly dir: string;
  /** unix:///.../docker.sock */
  readonly host: string;
  /** the driver name (`docker volume create -d <driver>`) */
  readonly driver: string;
  /** /run/docker/plugins/<driver>.sock: hand it to the plugin as --docker-endpoint */
  readonly pluginSocket: string;
  /** `docker <args>` against this engine; rejects with its stderr on a non-zero exit */
  run(args: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** the same, resolving to the exit code and output whatever the exit code */
  tryRun(args: string[], opts?: { timeoutMs?: number }): Promise<DockerResult>;
  logs(): string;
  stop(): Promise<void>;
}

const running = new Set<Dockerd>();
/** PIDs of running engines and their containerds, for the exit hook */
const pids = new Set<number>();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function dockerCli(host: string, args: string[], timeoutMs: number): Promise<DockerResult> {
  return new Promise((resolve) => {
    execFile(DOCKER_CLIENT, ['-H', host, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: err && !stderr ? err.message : stderr });
    });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await sleep(100);
  }
  return !pidAlive(pid);
}

/** The engine's own containerd, which dockerd starts as a child and which must go with it. */
async function containerdPid(dir: string): Promise<number | undefined> {
  const text = await readFile(join(dir, 'exec', 'containerd', 'containerd.pid'), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** A directory of busybox links, tarred into `docker import`: an image with sh, cat, echo, sleep, ls. */
async function importBusybox(dir: string, host: string): Promise<void> {
  const root = join(dir, 'busybox-root');
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile('/usr/bin/busybox', join(root, 'bin', 'busybox'));
  for (const cmd of ['sh', 'cat', 'echo', 'sleep', 'ls', 'df', 'wc', 'touch', 'rm', 'mkdir'])
    await symlink('busybox', join(root, 'bin', cmd));
  await mkdir(join(root, 'data'));
  await new Promise<void>((resolve, reject) => {
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const imp = spawn(DOCKER_CLIENT, ['-H', host, 'import', '-', BUSYBOX_IMAGE], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    imp.stderr.on('data', (b: Buffer) => (err += b.toString()));
    tar.stdout.pipe(imp.stdin);
    imp.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker import failed (${code}): ${err}`))));
    imp.on('error', reject);
  });
}

export async function startDockerd(opts: { readyTimeoutMs?: number } = {}): Promise<Dockerd> {
  const dir = await makeTempDir('dockerd');
  const host = `unix://${join(dir, 'docker.sock')}`;
  const driver = `rexcsi-t${randomBytes(4).toString('hex')}`;
  const pluginSocket = join(PLUGIN_SOCKET_DIR, `${driver}.sock`);
  await mkdir(PLUGIN_SOCKET_DIR, { recursive: true });
  let output = '';
  const proc: ChildProcess = spawn(
    'dockerd',
    [
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
      '--storage-driver=vfs',
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '-H',
      host,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const append = (b: Buffer) => (output = (output + b.toString('utf8')).slice(-1024 * 1024));
  proc.stdout?.on('data', append);
  proc.stderr?.on('data', append);
  let exited = false;
  proc.on('exit', () => (exited = true));
  proc.on('error', (e) => append(Buffer.from(`[spawn error] ${e.message} (is docker.io installed? bash scripts/install-deps.sh)\n`)));

  let ctrd: number | undefined;
  const stop = async (): Promise<void> => {
    running.delete(engine);
    ctrd ??= await containerdPid(dir);
    if (proc.pid !== undefined && !exited) {
      proc.kill('SIGTERM');
      if (!(await waitGone(proc.pid, 20_000))) proc.kill('SIGKILL');
      await waitGone(proc.pid, 5_000);
    }
    if (ctrd !== undefined && pidAlive(ctrd)) {
      process.kill(ctrd, 'SIGTERM');
      if (!(await waitGone(ctrd, 10_000))) process.kill(ctrd, 'SIGKILL');
    }
    if (proc.pid !== undefined) pids.delete(proc.pid);
    if (ctrd !== undefined) pids.delete(ctrd);
    await unlink(pluginSocket).catch(() => undefined);
    await removeTempDir(dir).catch(async () => {
      await rm(join(dir, 'busybox-root'), { recursive: true, force: true }); // kept for a look: something is mounted below it
    });
  };
  const engine: Dockerd = {
    dir,
    host,
    driver,
    pluginSocket,
    async run(args, o = {}) {
      const r = await dockerCli(host, args, o.timeoutMs ?? 120_000);
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      return r.stdout;
    },
    tryRun: (args, o = {}) => dockerCli(host, args, o.timeoutMs ?? 120_000),
    logs: () => output,
    stop,
  };
  running.add(engine);
  if (proc.pid !== undefined) pids.add(proc.pid);
  installExitHook();
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (exited) throw new Error(`dockerd exited before it was ready:\n${output.slice(-4000)}`);
      if ((await dockerCli(host, ['version', '--format', '{{.Server.Version}}'], 10_000)).code === 0) break;
      if (Date.now() > deadline)
        throw new Error(`dockerd was not ready within ${opts.readyTimeoutMs ?? 60_000} ms:\n${output.slice(-4000)}`);
      await sleep(200);
    }
    ctrd = await containerdPid(dir);
    if (ctrd !== undefined) pids.add(ctrd);
    await importBusybox(dir, host);
  } catch (e) {
    await stop();
    throw e;
  }
  return engine;
}

let hookInstalled = false;
function installExitHook(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  // Last resort when the test process ends without its cleanup: no engine outlives the tests.
  process.on('exit', () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export async function stopAllDockerd(): Promise<void> {
  await Promise.all([...running].map((d) => d.stop()));
}
