// A real glusterd for the glusterfs tests, on loopback, with its working directory under TEST_ROOT.
//
//   const g = await startGlusterd();                    // glusterd on 127.0.0.2:24007, socket g.socket
//   const hosting = await g.createHostingVolume('hosting');   // one brick under g.dir, started
//   ...
//   await g.stop();     // unmounts what is ours, stops and deletes every volume, stops glusterd and its children
//
// What cannot be moved off the machine-wide places, and why the helper is strict about them: bricks and
// the quota daemon fetch their volume files from glusterd's port 24007 on the brick host (a custom port is
// not passed on to them), and glusterd keeps pid files under /var/run/gluster. So one glusterd per
// machine: startGlusterd() refuses to run beside a glusterd it did not start. Bricks are named by
// 127.0.0.2 because glusterd refuses "localhost" and 127.0.0.1 as brick hosts; bricks on the root
// filesystem need `force`. Every glusterd started is tracked; stopAllGlusterd() (test/setup.ts) stops
// the ones a failing test left running.

import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { mounter, readMountInfo, run } from '../../src/os/index.js';
import { takeGlusterLock } from './gluster-lock.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export const GLUSTER_HOST = '127.0.0.2';
const GLUSTER_RUN_DIR = '/var/run/gluster';

export interface Glusterd {
  /** its temp dir: working directory (wd/), bricks (bricks/), log (glusterd.log), socket */
  readonly dir: string;
  readonly socket: string;
  readonly host: string;
  /** Runs `gluster --mode=script --glusterd-sock=<socket> ...args`; returns stdout, throws on a non-zero exit. */
  cli(args: string[]): Promise<string>;
  /** Creates (force: the brick is on the root filesystem) and starts a one-brick volume. */
  createHostingVolume(name: string): Promise<string>;
  stop(): Promise<void>;
}

const tracked = new Set<GlusterdProcess>();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface ProcInfo {
  pid: number;
  comm: string;
  argv: string[];
  zombie: boolean;
}

async function listProcesses(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [statText, cmdline] = await Promise.all([readFile(`/proc/${entry}/stat`, 'utf8'), readFile(`/proc/${entry}/cmdline`, 'utf8')]);
      const comm = /\((.*)\)/.exec(statText)?.[1] ?? '';
      const state = statText.slice(statText.lastIndexOf(')') + 2, statText.lastIndexOf(')') + 3);
      out.push({ pid: Number(entry), comm, argv: cmdline.split('\0').filter(Boolean), zombie: state === 'Z' });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Gluster processes that serve our loopback host: bricks, quotad, self-heal, FUSE clients. */
async function ourGlusterChildren(): Promise<ProcInfo[]> {
  return (await listProcesses()).filter(
    (p) =>
      !p.zombie &&
      (p.comm === 'glusterfs' || p.comm === 'glusterfsd') &&
      p.argv.some((a, i) => a === `--volfile-server=${GLUSTER_HOST}` || (a === '-s' && p.argv[i + 1] === GLUSTER_HOST)),
  );
}

/** The FUSE client process serving the mount at mountPoint (its mount point is its last argument). */
export async function fuseClientOf(mountPoint: string): Promise<number | undefined> {
  return (await listProcesses()).find((p) => !p.zombie && p.comm === 'glusterfs' && p.argv.at(-1) === mountPoint)?.pid;
}

/**
 * Whether something listens on glusterd's port: a glusterd of another PID namespace (a run inside
 * scripts/sandbox.sh, or this run inside it and the other outside) is not in our /proc, but its port is shared.
 */
function glusterdPortInUse(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: GLUSTER_HOST, port: 24007 });
    const done = (inUse: boolean) => {
      socket.destroy();
      resolve(inUse);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** pids of the glusterds this process can see, or ['another PID namespace'] when only the port shows one */
async function foreignGlusterds(): Promise<string[]> {
  const seen = (await listProcesses()).filter((p) => !p.zombie && p.comm === 'glusterd').map((p) => `pid ${p.pid}`);
  if (seen.length > 0) return seen;
  return (await glusterdPortInUse()) ? [`one listening on ${GLUSTER_HOST}:24007 from another PID namespace`] : [];
}

async function waitGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = (await listProcesses()).filter((p) => !p.zombie && pids.includes(p.pid)).map((p) => p.pid);
    if (alive.length === 0 || Date.now() > deadline) return alive;
    await sleep(100);
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

class GlusterdProcess implements Glusterd {
  readonly host = GLUSTER_HOST;
  readonly socket: string;
  private pid: number | undefined;
  private readonly volumes = new Set<string>();
  /** what /var/run/gluster held before: everything added later (pid files, sockets, per-volume dirs) is ours */
  private runEntriesBefore = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly release: () => Promise<void>,
  ) {
    this.socket = join(dir, 'glusterd.socket');
  }

  async start(): Promise<void> {
    const others = await foreignGlusterds();
    if (others.length > 0) {
      throw new Error(
        `another glusterd is running (${others.join(', ')}); the glusterfs tests need port 24007 and ` +
          `${GLUSTER_RUN_DIR} to themselves: stop it first`,
      );
    }
    this.runEntriesBefore = new Set(await listRunEntries());
    await mkdir(join(this.dir, 'wd'), { recursive: true });
    await mkdir(join(this.dir, 'bricks'), { recursive: true });
    const volfile = join(this.dir, 'glusterd.vol');
    await writeFile(
      volfile,
      [
        'volume management',
        '    type mgmt/glusterd',
        `    option working-directory ${join(this.dir, 'wd')}`,
        `    option glusterd-sockfile ${this.socket}`,
        '    option transport-type socket',
        `    option transport.socket.bind-address ${GLUSTER_HOST}`,
        '    option transport.socket.listen-port 24007',
        '    option ping-timeout 0',
        '    option event-threads 1',
        'end-volume',
        '',
      ].join('\n'),
    );
    const pidFile = join(this.dir, 'glusterd.pid');
    // glusterd daemonizes: the spawned process exits once the daemon runs.
    await new Promise<void>((resolve, reject) => {
      const child = spawn('glusterd', ['-f', volfile, '-p', pidFile, '-l', join(this.dir, 'glusterd.log')], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`glusterd exited with ${code}; see ${this.dir}/glusterd.log`)),
      );
    });
    this.pid = Number((await readFile(pidFile, 'utf8')).trim());
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.cli(['volume', 'list']);
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`glusterd did not answer within 30 s: ${String(e)}`, { cause: e });
        await sleep(200);
      }
    }
  }

  async cli(args: string[]): Promise<string> {
    const { stdout } = await run('gluster', ['--mode=script', `--glusterd-sock=${this.socket}`, ...args]);
    return stdout;
  }

  async createHostingVolume(name: string): Promise<string> {
    const brick = join(this.dir, 'bricks', name);
    await mkdir(brick, { recursive: true });
    this.volumes.add(name);
    await this.cli(['volume', 'create', name, `${GLUSTER_HOST}:${brick}`, 'force']);
    await this.cli(['volume', 'start', name]);
    return name;
  }

  /** Every step runs even when one fails; the first failure is thrown at the end. */
  async stop(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (e) {
        errors.push(e);
      }
    };
    if (this.pid === undefined) {
      // never started: nothing of ours runs, and whatever gluster runs here is someone else's
      tracked.delete(this);
      await removeTempDir(this.dir);
      await this.release();
      return;
    }
    let volumes = [...this.volumes];
    await attempt(async () => {
      volumes = [
        ...new Set([
          ...volumes,
          ...(await this.cli(['volume', 'list']))
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l && !/^No volumes/.test(l)),
        ]),
      ];
    });
    // FUSE mounts of our volumes (the tests' own and gluster's quota helper mounts) go before the volumes.
    await attempt(() => this.unmountOurs(volumes));
    for (const v of volumes) {
      await attempt(() => this.cli(['volume', 'stop', v, 'force']).catch(() => undefined));
      await attempt(() => this.cli(['volume', 'delete', v]));
    }
    await attempt(() => this.stopProcesses());
    await attempt(() => this.unmountOurs(volumes)); // a helper mount that appeared during the stops
    await attempt(() => this.removeRunEntries());
    tracked.delete(this);
    await attempt(() => removeTempDir(this.dir));
    await attempt(() => this.release());
    if (errors.length > 0) throw errors[0];
  }

  private async unmountOurs(volumes: string[]): Promise<void> {
    const ours = (await readMountInfo()).filter(
      (m) =>
        m.fsType === 'fuse.glusterfs' &&
        (m.source.startsWith(`${GLUSTER_HOST}:`) || volumes.some((v) => m.mountPoint.startsWith(`${GLUSTER_RUN_DIR}/${v}`))),
    );
    for (const m of ours.reverse()) {
      await mounter.unmount(m.mountPoint).catch(() => run('umount', ['-l', m.mountPoint]));
    }
  }

  /** glusterd leaves pid files, brick sockets and per-volume dirs behind, even for deleted volumes. */
  private async removeRunEntries(): Promise<void> {
    const mounted = new Set((await readMountInfo()).map((m) => m.mountPoint));
    for (const entry of await listRunEntries()) {
      const path = join(GLUSTER_RUN_DIR, entry);
      if (this.runEntriesBefore.has(entry) || entry === 'vols' || mounted.has(path)) continue;
      await rm(path, { recursive: true, force: true });
    }
  }

  private async stopProcesses(): Promise<void> {
    const pid = this.pid!;
    kill(pid, 'SIGTERM');
    if ((await waitGone([pid], 10_000)).length > 0) kill(pid, 'SIGKILL');
    const children = (await ourGlusterChildren()).map((p) => p.pid);
    for (const pid of children) kill(pid, 'SIGTERM');
    const left = await waitGone(children, 10_000);
    for (const pid of left) kill(pid, 'SIGKILL');
    const stubborn = await waitGone([...left, pid], 5000);
    if (stubborn.length > 0) throw new Error(`gluster processes did not exit: ${stubborn.join(', ')}`);
  }
}

/** Files directly in /var/run/gluster and in its vols/ (relative paths). */
async function listRunEntries(): Promise<string[]> {
  const list = (sub: string) =>
    readdir(join(GLUSTER_RUN_DIR, sub)).then(
      (names) => names.map((n) => join(sub, n)),
      () => [],
    );
  return [...(await list('.')), ...(await list('vols'))];
}

export async function startGlusterd(): Promise<Glusterd> {
  const release = await takeGlusterLock(); // the three-server pool (gluster-pool.ts) takes it too
  const dir = await makeTempDir('glusterd');
  const g = new GlusterdProcess(dir, release);
  tracked.add(g);
  try {
    await g.start();
  } catch (e) {
    await g.stop().catch(() => undefined);
    throw e;
  }
  return g;
}

/** Stops every glusterd this process started that is still running (test/setup.ts runs it after each file). */
export async function stopAllGlusterd(): Promise<void> {
  for (const g of [...tracked]) await g.stop();
}

/**
 * Waits while a glusterd runs that this process did not start (another engineer's or CI's test run on this
 * shared machine: one glusterd per machine), polling every pollMs; never touches it. Throws after timeoutMs.
 */
export async function waitForForeignGlusterd(opts: { pollMs?: number; timeoutMs?: number } = {}): Promise<void> {
  const pollMs = opts.pollMs ?? 30_000;
  const deadline = Date.now() + (opts.timeoutMs ?? 40 * 60_000);
  for (let logged = false; ; logged = true) {
    const others = await foreignGlusterds();
    if (others.length === 0) return;
    if (Date.now() > deadline) throw new Error(`a glusterd this test did not start still runs (${others.join(', ')}); not touching it`);
    if (!logged)
      console.warn(
        `[gluster] waiting for a glusterd this test did not start (${others.join(', ')}) to end; polling every ${pollMs / 1000} s`,
      );
    await sleep(pollMs);
  }
}
