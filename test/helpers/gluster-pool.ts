// A trusted storage pool of three real glusterds on one machine, loopback only, for the glusterfs cluster
// tests.
//
//   const pool = await startGlusterPool();        // 127.0.0.11, .12, .13, peered, each in its own mount namespace
//   await pool.cli(['volume', 'create', ...]);     // on the first server that is up
//   await pool.servers[1].kill();                  // SIGKILL its glusterd, bricks and daemons (a crashed server)
//   await pool.servers[1].start();                 // glusterd again; it restarts its bricks
//   const host = await pool.clientHost('agent2');  // a mount namespace for a second "agent"
//   await pool.stop();                             // unmounts ours, kills every process and namespace, removes the dirs
//
// Each server is a holder process made by `unshare --mount --propagation private` whose namespace has the
// server's own directories bind-mounted over /var/lib/glusterd, /var/run/gluster and /var/log/glusterfs
// (glusterd, bricks and their daemons keep pid files, sockets and volfiles there). Everything of a server
// runs inside that namespace through nsenter: glusterd (its own glusterd.vol: bind-address 127.0.0.1N,
// sockfile, working directory, a brick port range of its own), and the gluster CLI (quota list and heal info
// need the server's state). The brick port ranges (61000-63999) are outside both the single-glusterd
// helper's default range (49152-60999) and the kernel's ephemeral ports. The single-glusterd helper and this
// one take one lock file (gluster-lock.ts), so two runs on one machine take turns. Holders carry
// `rexcsi-gluster-ns:<dir>` as their argv[0], so the leak audit (leaks.ts) sees any left running, as it sees
// glusterd, bricks and FUSE clients whose command line names the test root.

import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, readlink, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mounter, readMountInfo, run } from '../../src/os/index.js';
import { takeGlusterLock } from './gluster-lock.js';
import { waitForForeignGlusterd } from './gluster.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export const POOL_HOSTS = ['127.0.0.11', '127.0.0.12', '127.0.0.13'] as const;
const BASE_PORT = 61000;
const GLUSTER_LIBEXEC = '/usr/lib/x86_64-linux-gnu/glusterfs';
const GLFSHEAL = `${GLUSTER_LIBEXEC}/glfsheal`;
const GSYNCD = `${GLUSTER_LIBEXEC}/gsyncd`;
export const NS_HOLDER_TAG = 'rexcsi-gluster-ns';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Proc {
  pid: number;
  comm: string;
  argv: string[];
  mntNs: string;
}

async function processes(): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [stat, cmdline, mntNs] = await Promise.all([
        readFile(`/proc/${entry}/stat`, 'utf8'),
        readFile(`/proc/${entry}/cmdline`, 'utf8'),
        readlink(`/proc/${entry}/ns/mnt`),
      ]);
      out.push({ pid: Number(entry), comm: /\((.*)\)/.exec(stat)?.[1] ?? '', argv: cmdline.split('\0').filter(Boolean), mntNs });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Waits until none of pids is in /proc any more: reaped, not just dead (glusterd takes a zombie brick for a running one). */
async function waitReaped(pids: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = (await processes()).filter((p) => pids.includes(p.pid));
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes did not exit: ${left.map((p) => `${p.pid} ${p.comm}`).join(', ')}`);
    await sleep(50);
  }
}

const isGlusterProcess = (p: Proc) => p.comm === 'glusterd' || p.comm === 'glusterfsd' || p.comm === 'glusterfs';

/** A mount namespace held open by a sleeping process; commands run in it through nsenter. */
export class MountNamespace {
  private holder: number | undefined;
  private ns = '';

  constructor(
    readonly dir: string,
    /** directories bind-mounted over a path inside the namespace: [source, target] */
    private readonly binds: [string, string][] = [],
  ) {}

  get pid(): number {
    if (this.holder === undefined) throw new Error('namespace not started');
    return this.holder;
  }

  /** The command prefix that runs a program inside this namespace. */
  prefix(): string[] {
    return ['nsenter', '-t', String(this.pid), '-m', '--'];
  }

  /** A path as this namespace sees it, readable from outside (through the holder's root). */
  path(p: string): string {
    return `/proc/${this.pid}/root${p}`;
  }

  async start(): Promise<void> {
    const script = [
      ...this.binds.map(([s, t]) => `mount --bind '${s}' '${t}'`),
      `exec -a '${NS_HOLDER_TAG}:${this.dir}' sleep infinity`,
    ].join(' && ');
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    let exited = false;
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('exit', () => (exited = true));
    child.unref();
    if (child.pid === undefined) throw new Error('unshare did not start');
    this.holder = child.pid;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const cmdline = await readFile(`/proc/${child.pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.startsWith(NS_HOLDER_TAG)) break;
      if (exited || Date.now() > deadline) throw new Error(`the namespace holder for ${this.dir} did not come up: ${stderr.trim()}`);
      await sleep(20);
    }
    child.stderr.destroy();
    this.ns = await readlink(`/proc/${child.pid}/ns/mnt`);
  }

  async run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
    const { stdout } = await run(this.prefix()[0]!, [...this.prefix().slice(1), cmd, ...args], { timeoutMs: opts.timeoutMs ?? 120_000 });
    return stdout;
  }

  /** Processes inside this namespace other than its holder. */
  async members(): Promise<Proc[]> {
    if (this.holder === undefined) return [];
    return (await processes()).filter((p) => p.mntNs === this.ns && p.pid !== this.holder);
  }

  /** FUSE mounts inside the namespace, deepest first. */
  async fuseMounts(): Promise<string[]> {
    const text = await readFile(`/proc/${this.pid}/mountinfo`, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => / - fuse\.glusterfs /.test(l))
      .map((l) => l.split(' ')[4]!)
      .reverse();
  }

  /** Kills everything inside (SIGKILL), then the holder; the namespace and its mounts go with it. */
  async stop(): Promise<void> {
    if (this.holder === undefined) return;
    for (let round = 0; round < 3; round++) {
      const members = await this.members();
      if (members.length === 0) break;
      for (const p of members) signal(p.pid, 'SIGKILL');
      await waitReaped(
        members.map((p) => p.pid),
        15_000,
      ).catch(() => undefined);
    }
    signal(this.holder, 'SIGKILL');
    await waitReaped([this.holder], 10_000);
    this.holder = undefined;
  }
}

export class GlusterServer {
  readonly socket: string;
  readonly brickRoot: string;
  readonly ns: MountNamespace;
  private glusterdPid: number | undefined;

  constructor(
    readonly index: number,
    readonly host: string,
    readonly dir: string,
  ) {
    this.socket = join(dir, 'glusterd.socket');
    this.brickRoot = join(dir, 'bricks');
    this.ns = new MountNamespace(dir, [
      [join(dir, 'var-lib'), '/var/lib/glusterd'],
      [join(dir, 'var-run'), '/var/run/gluster'],
      [join(dir, 'var-log'), '/var/log/glusterfs'],
      // glusterd runs geo-replication's python helper many times at start (~15 s on a busy machine); these
      // tests use no geo-replication, so a stand-in answers its version and accepts every setting at once
      [join(dir, 'gsyncd-stand-in'), GSYNCD],
    ]);
  }

  get basePort(): number {
    return BASE_PORT + 1000 * this.index;
  }

  async prepare(): Promise<void> {
    for (const d of ['var-lib', 'var-run', 'var-log', 'bricks']) await mkdir(join(this.dir, d), { recursive: true });
    await writeFile(join(this.dir, 'gsyncd-stand-in'), '#!/bin/sh\n[ "$1" = --version ] && echo gsyncd.py 4.0.0\nexit 0\n', {
      mode: 0o755,
    });
    // `volume set group ...` reads the option groups from the working directory
    await cp('/var/lib/glusterd/groups', join(this.dir, 'var-lib', 'groups'), { recursive: true }).catch(() => undefined);
    await writeFile(
      join(this.dir, 'glusterd.vol'),
      [
        'volume management',
        '    type mgmt/glusterd',
        `    option working-directory ${join(this.dir, 'var-lib')}`,
        `    option glusterd-sockfile ${this.socket}`,
        '    option transport-type socket',
        '    option transport.address-family inet',
        // without both keepalive options glusterd fails every peer connection ("connect returned -2")
        '    option transport.socket.keepalive-time 10',
        '    option transport.socket.keepalive-interval 2',
        `    option transport.socket.bind-address ${this.host}`,
        '    option transport.socket.listen-port 24007',
        `    option base-port ${this.basePort}`,
        `    option max-port ${this.basePort + 999}`,
        '    option ping-timeout 0',
        '    option event-threads 1',
        'end-volume',
        '',
      ].join('\n'),
    );
    await this.ns.start();
  }

  /** Starts glusterd in the server's namespace (it starts the bricks of started volumes) and waits for its CLI. */
  async start(): Promise<void> {
    // FUSE mounts whose client died with the server (quota's helper mounts) answer ENOTCONN: drop them
    for (const m of await this.ns.fuseMounts()) await this.ns.run('umount', ['-l', m]).catch(() => undefined);
    const pidFile = join(this.dir, 'glusterd.pid');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        'nsenter',
        [
          '-t',
          String(this.ns.pid),
          '-m',
          '--',
          'glusterd',
          '-f',
          join(this.dir, 'glusterd.vol'),
          '-p',
          pidFile,
          '-l',
          join(this.dir, 'glusterd.log'),
        ],
        { stdio: 'ignore' },
      );
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`glusterd ${this.host} exited with ${code}; see ${this.dir}/glusterd.log`)),
      );
    });
    this.glusterdPid = Number((await readFile(pidFile, 'utf8')).trim());
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.cli(['volume', 'list']);
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`glusterd ${this.host} did not answer within 30 s: ${String(e)}`, { cause: e });
        await sleep(100);
      }
    }
  }

  get up(): boolean {
    return this.glusterdPid !== undefined;
  }

  /** `gluster --mode=script --glusterd-sock=<socket> ...args` inside the server's namespace. */
  cli(args: string[], timeoutMs?: number): Promise<string> {
    return this.ns.run('gluster', ['--mode=script', `--glusterd-sock=${this.socket}`, ...args], timeoutMs ? { timeoutMs } : {});
  }

  /** A crashed server: SIGKILL its glusterd, bricks, self-heal and quota daemons and helper mounts; waits until reaped. */
  async kill(): Promise<void> {
    const victims = (await this.ns.members()).filter(isGlusterProcess);
    for (const p of victims) signal(p.pid, 'SIGKILL');
    await waitReaped(
      victims.map((p) => p.pid),
      15_000,
    );
    this.glusterdPid = undefined;
  }

  /** SIGKILLs this server's brick process of volume; waits until it is reaped (else glusterd thinks it still runs). */
  async killBrick(volume: string): Promise<number> {
    const brick = (await this.ns.members()).find(
      (p) => p.comm === 'glusterfsd' && p.argv.some((a, i) => p.argv[i - 1] === '--volfile-id' && a.startsWith(`${volume}.${this.host}.`)),
    );
    if (!brick) throw new Error(`no brick process of ${volume} on ${this.host}`);
    signal(brick.pid, 'SIGKILL');
    await waitReaped([brick.pid], 15_000);
    return brick.pid;
  }

  /** Bricks of volume on this server that run (by process). */
  async brickPids(volume: string): Promise<number[]> {
    return (await this.ns.members())
      .filter(
        (p) =>
          p.comm === 'glusterfsd' && p.argv.some((a, i) => p.argv[i - 1] === '--volfile-id' && a.startsWith(`${volume}.${this.host}.`)),
      )
      .map((p) => p.pid);
  }

  /** Waits until this server's brick of volume runs (glusterd starts bricks a moment after it answers). */
  async waitBrick(volume: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.brickPids(volume)).length === 0) {
      if (Date.now() > deadline) throw new Error(`the brick of ${volume} on ${this.host} did not start within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** Entries still to heal, per brick (glfsheal with this server's socket: the CLI's heal info needs /var/run/glusterd.socket). */
  async healPending(volume: string): Promise<number> {
    const xml = await this.ns.run(GLFSHEAL, [volume, 'info-summary', '--xml', 'glusterd-sock', this.socket]).catch((e: unknown) => {
      const out = (e as { stdout?: string }).stdout;
      if (out) return out;
      throw e;
    });
    const bricks = [...xml.matchAll(/<brick [^>]*>([\s\S]*?)<\/brick>/g)].map((m) => m[1]!);
    let pending = 0;
    for (const b of bricks) {
      const status = /<status>([^<]*)<\/status>/.exec(b)?.[1] ?? '';
      if (status !== 'Connected') return Number.POSITIVE_INFINITY; // a brick not answering: not healed
      pending += Number(/<totalNumberOfEntries>(\d+)<\/totalNumberOfEntries>/.exec(b)?.[1] ?? 'NaN');
    }
    return bricks.length === 0 ? Number.POSITIVE_INFINITY : pending;
  }
}

export interface GlusterPool {
  readonly dir: string;
  readonly servers: GlusterServer[];
  /** the servers' hosts, comma-separated, as for --gluster-server */
  readonly hosts: string[];
  /** The CLI on the first server that is up. */
  cli(args: string[]): Promise<string>;
  /** Creates (force: bricks on the root filesystem) and starts a replica-3 volume, one brick per server. */
  createReplicatedVolume(name: string): Promise<string>;
  /** Waits until every brick of volume runs and nothing is left to heal. */
  waitHealed(volume: string, timeoutMs?: number): Promise<void>;
  /** A mount namespace of its own (a second agent), stopped with the pool. */
  clientHost(name: string): Promise<MountNamespace>;
  stop(): Promise<void>;
}

const trackedPools = new Set<Pool>();

class Pool implements GlusterPool {
  readonly servers: GlusterServer[];
  readonly hosts = [...POOL_HOSTS];
  private readonly clients: MountNamespace[] = [];
  release: (() => Promise<void>) | undefined;

  constructor(readonly dir: string) {
    this.servers = POOL_HOSTS.map((h, i) => new GlusterServer(i, h, join(dir, `s${i + 1}`)));
  }

  async start(): Promise<void> {
    for (const s of this.servers) await s.prepare();
    await Promise.all(this.servers.map((s) => s.start()));
    for (const s of this.servers.slice(1)) await this.servers[0]!.cli(['peer', 'probe', s.host], 30_000);
    // the first server is known by its address too (not by the address its probe came from)
    await this.servers[1]!.cli(['peer', 'probe', this.servers[0]!.host]);
    await this.waitPeered();
  }

  private async waitPeered(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const counts = await Promise.all(
        this.servers.map(async (s) => ((await s.cli(['pool', 'list']).catch(() => '')).match(/\tConnected/g) ?? []).length),
      );
      if (counts.every((c) => c === this.servers.length)) return;
      if (Date.now() > deadline) throw new Error(`the pool did not connect within 60 s (connected peers per server: ${counts.join(', ')})`);
      await sleep(200);
    }
  }

  async cli(args: string[]): Promise<string> {
    const s = this.servers.find((x) => x.up);
    if (!s) throw new Error('no server of the pool is up');
    return s.cli(args);
  }

  async createReplicatedVolume(name: string): Promise<string> {
    const bricks: string[] = [];
    for (const s of this.servers) {
      const path = join(s.brickRoot, name);
      await mkdir(path, { recursive: true });
      bricks.push(`${s.host}:${path}`);
    }
    await this.cli(['volume', 'create', name, 'replica', '3', ...bricks, 'force']);
    await this.cli(['volume', 'start', name]);
    return name;
  }

  async waitHealed(volume: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let last: string;
      const s = this.servers.find((x) => x.up)!;
      try {
        const pending = await s.healPending(volume);
        if (pending === 0) return;
        last = `${pending} entries to heal`;
        // an index heal now, rather than at the self-heal daemon's next crawl
        if (Number.isFinite(pending)) await s.cli(['volume', 'heal', volume]).catch(() => undefined);
      } catch (e) {
        last = String(e);
      }
      if (Date.now() > deadline) throw new Error(`volume ${volume} did not heal within ${timeoutMs} ms: ${last}`);
      await sleep(500);
    }
  }

  async clientHost(name: string): Promise<MountNamespace> {
    const dir = join(this.dir, `client-${name}`);
    await mkdir(dir, { recursive: true });
    const ns = new MountNamespace(dir);
    this.clients.push(ns);
    await ns.start();
    return ns;
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
    // FUSE mounts of the pool in the test's own namespace (node plugins, tests)
    await attempt(async () => {
      const ours = (await readMountInfo()).filter(
        (m) => m.fsType === 'fuse.glusterfs' && this.hosts.some((h) => m.source.startsWith(`${h}:`)),
      );
      for (const m of ours.reverse()) await mounter.unmount(m.mountPoint).catch(() => run('umount', ['-l', m.mountPoint]));
    });
    for (const ns of this.clients) await attempt(() => ns.stop());
    for (const s of this.servers) await attempt(() => s.ns.stop());
    trackedPools.delete(this);
    // REXCSI_TEST_KEEP=1 keeps the servers' logs and state for a look after the run
    if (process.env['REXCSI_TEST_KEEP'] !== '1') await attempt(() => removeTempDir(this.dir));
    await attempt(async () => this.release?.());
    if (errors.length > 0) throw errors[0];
  }
}

export async function startGlusterPool(): Promise<GlusterPool> {
  const release = await takeGlusterLock();
  await waitForForeignGlusterd({ pollMs: 5000 });
  const pool = new Pool(await makeTempDir('gluster-pool'));
  pool.release = release;
  trackedPools.add(pool);
  try {
    await pool.start();
  } catch (e) {
    await pool.stop().catch(() => undefined);
    throw e;
  }
  return pool;
}

/** Stops every pool this process started that is still running (test/setup.ts runs it after each file). */
export async function stopAllGlusterPools(): Promise<void> {
  for (const p of [...trackedPools]) await p.stop();
}
