// The gluster CLI, run through src/os run() as `gluster --mode=script --glusterd-sock=SOCK ... --xml`.
// glusterd accepts changes only over its UNIX socket (TCP callers may only read), so the controller runs
// on a gluster server. With --xml the CLI exits 0 even when the operation failed: the verdict is opRet
// in the output, and opErrstr is gluster's own message, which every error here keeps.
import { CsiError, failedPrecondition, unavailable } from '../../errors.js';
import { isExecError, run } from '../../os/index.js';
import { child, children, parseXml, textOf, type XmlNode } from './xml.js';

export interface GlusterBrick {
  host: string;
  path: string;
}

export interface GlusterVolumeInfo {
  name: string;
  started: boolean;
  typeStr: string;
  replicaCount: number;
  disperseCount: number;
  redundancyCount: number;
  arbiterCount: number;
  bricks: GlusterBrick[];
  options: Map<string, string>;
}

export interface QuotaLimit {
  path: string;
  hardLimitBytes: number;
  usedBytes: number;
}

export interface BrickSpace {
  host: string;
  path: string;
  device: string;
  sizeFreeBytes: number;
  sizeTotalBytes: number;
}

/** A failed gluster operation: opErrstr as the message. */
export class GlusterError extends CsiError {
  constructor(
    code: ConstructorParameters<typeof CsiError>[0],
    readonly glusterMessage: string,
    command: string,
  ) {
    super(code, `gluster ${command}: ${glusterMessage}`);
    this.name = 'GlusterError';
  }
}

const CLI_TIMEOUT_MS = 120_000;
/** glusterd runs one transaction at a time cluster-wide and refuses the others ("Another transaction is in progress") */
const BUSY_RETRIES = 5;
const BUSY_BACKOFF_MS = 250;

export class GlusterCli {
  /** our own calls go one after another, so this process never collides with itself in glusterd's lock */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly socket: string,
    /** named in UNAVAILABLE errors: the server this controller manages through that socket */
    private readonly serverName: string,
  ) {}

  async volumeNames(): Promise<string[]> {
    const out = await this.exec(['volume', 'list']);
    return children(child(out, 'volList'), 'volume').map((v) => v.text);
  }

  /** undefined when there is no such volume */
  async volumeInfo(name: string): Promise<GlusterVolumeInfo | undefined> {
    let out: XmlNode;
    try {
      out = await this.exec(['volume', 'info', name]);
    } catch (e) {
      if (e instanceof GlusterError && /does not exist/i.test(e.glusterMessage)) return undefined;
      throw e;
    }
    const v = child(out, 'volInfo', 'volumes', 'volume');
    if (!v) return undefined;
    const options = new Map<string, string>();
    for (const o of children(child(v, 'options'), 'option')) options.set(textOf(o, 'name'), textOf(o, 'value'));
    const bricks = children(child(v, 'bricks'), 'brick').map((b) => splitBrick(textOf(b, 'name')));
    return {
      name: textOf(v, 'name'),
      started: textOf(v, 'statusStr') === 'Started',
      typeStr: textOf(v, 'typeStr'),
      replicaCount: Number(textOf(v, 'replicaCount')) || 1,
      disperseCount: Number(textOf(v, 'disperseCount')) || 0,
      redundancyCount: Number(textOf(v, 'redundancyCount')) || 0,
      arbiterCount: Number(textOf(v, 'arbiterCount')) || 0,
      bricks,
      options,
    };
  }

  /** layoutArgs: `replica 3 [arbiter 1]`, `disperse N redundancy R` or nothing (placement.ts layoutArgs) */
  async volumeCreate(name: string, layoutArgs: string[], bricks: GlusterBrick[]): Promise<void> {
    // force: bricks on a root filesystem are refused without it (placement never puts two on one server)
    await this.exec(['volume', 'create', name, ...layoutArgs, ...bricks.map((b) => `${b.host}:${b.path}`), 'force']);
  }

  /** The pool as this glusterd sees it: itself (host 'localhost') and its peers, connected or not. */
  async poolList(): Promise<{ host: string; hostnames: string[]; connected: boolean; self: boolean }[]> {
    const out = await this.exec(['pool', 'list']);
    return children(child(out, 'peerStatus'), 'peer').map((p) => {
      const host = textOf(p, 'hostname');
      const hostnames = children(child(p, 'hostnames'), 'hostname').map((h) => h.text);
      return {
        host,
        hostnames: hostnames.length ? hostnames : [host],
        connected: textOf(p, 'connected') === '1',
        self: host === 'localhost',
      };
    });
  }

  /** Bricks glusterd reports for a started volume, online or not (bricks of a server that is down are left out). */
  async brickStates(name: string): Promise<{ host: string; path: string; online: boolean }[]> {
    const out = await this.exec(['volume', 'status', name]);
    return children(child(out, 'volStatus', 'volumes', 'volume'), 'node')
      .filter((n) => textOf(n, 'path').startsWith('/'))
      .map((n) => ({ host: textOf(n, 'hostname'), path: textOf(n, 'path'), online: textOf(n, 'status') === '1' }));
  }

  /** Client mounts of a started volume: FUSE and gfapi connections (not gluster's own daemons), and the hosts connected to its bricks. */
  async volumeClients(name: string): Promise<{ mounts: number; hosts: string[] }> {
    const { stdout } = await this.runCli(['volume', 'status', name, 'client-list'], 'volume status client-list');
    let mounts = 0;
    for (const m of stdout.matchAll(/^(fuse|gfapi)\s+(\d+)\s*$/gm)) mounts += Number(m[2]);
    const out = await this.exec(['volume', 'status', name, 'clients']);
    const hosts = new Set<string>();
    for (const n of children(child(out, 'volStatus', 'volumes', 'volume'), 'node'))
      for (const c of children(child(n, 'clientsStatus'), 'client')) hosts.add(textOf(c, 'hostname').replace(/:\d+$/, ''));
    return { mounts, hosts: [...hosts].sort() };
  }

  async volumeStart(name: string): Promise<void> {
    await this.tolerate(['volume', 'start', name], /already started/i);
  }

  async volumeStop(name: string): Promise<void> {
    await this.tolerate(['volume', 'stop', name, 'force'], /is not in the started state|not started/i);
  }

  async volumeDelete(name: string): Promise<void> {
    await this.tolerate(['volume', 'delete', name], /does not exist/i);
  }

  async volumeSet(name: string, key: string, value: string): Promise<void> {
    await this.exec(['volume', 'set', name, key, value]);
  }

  async quotaEnable(name: string): Promise<void> {
    await this.tolerate(['volume', 'quota', name, 'enable'], /already enabled/i);
  }

  async quotaLimit(name: string, path: string, bytes: number): Promise<void> {
    await this.exec(['volume', 'quota', name, 'limit-usage', path, String(bytes)]);
  }

  /** Fine when no limit is set on path, or path is gone. */
  async quotaRemove(name: string, path: string): Promise<void> {
    await this.tolerate(
      ['volume', 'quota', name, 'remove', path],
      /No data available|No such file or directory|quota is not enabled|Quota is disabled|not enabled|not found in store/i,
    );
  }

  /** The limits set on these paths (paths without a limit or missing are left out). */
  async quotaList(name: string, paths: string[]): Promise<Map<string, QuotaLimit>> {
    const found = new Map<string, QuotaLimit>();
    if (paths.length === 0) return found;
    let out: XmlNode;
    try {
      out = await this.exec(['volume', 'quota', name, 'list', ...paths]);
    } catch (e) {
      if (e instanceof GlusterError && /quota is not enabled|Quota is disabled|No quota configured/i.test(e.glusterMessage)) return found;
      throw e;
    }
    for (const l of children(child(out, 'volQuota'), 'limit')) {
      const hard = Number(textOf(l, 'hard_limit'));
      if (!Number.isFinite(hard) || hard <= 0) continue;
      found.set(textOf(l, 'path'), { path: textOf(l, 'path'), hardLimitBytes: hard, usedBytes: Number(textOf(l, 'used_space')) || 0 });
    }
    return found;
  }

  /** Space on each brick of a started volume. */
  async brickSpace(name: string): Promise<BrickSpace[]> {
    const out = await this.exec(['volume', 'status', name, 'detail']);
    return children(child(out, 'volStatus', 'volumes', 'volume'), 'node').map((n) => ({
      host: textOf(n, 'hostname'),
      path: textOf(n, 'path'),
      device: textOf(n, 'device'),
      sizeFreeBytes: Number(textOf(n, 'sizeFree')) || 0,
      sizeTotalBytes: Number(textOf(n, 'sizeTotal')) || 0,
    }));
  }

  private async tolerate(args: string[], harmless: RegExp): Promise<void> {
    try {
      await this.exec(args);
    } catch (e) {
      if (e instanceof GlusterError && harmless.test(e.glusterMessage)) return;
      throw e;
    }
  }

  /** Runs the CLI and returns <cliOutput>; a failed operation throws GlusterError with gluster's message. */
  exec(args: string[]): Promise<XmlNode> {
    const next = this.queue.then(() => this.execRetryingBusy(args));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Another controller's transaction holds glusterd's lock for a moment: wait and try again, then ABORTED. */
  private async execRetryingBusy(args: string[]): Promise<XmlNode> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.execOnce(args);
      } catch (e) {
        if (!(e instanceof GlusterError && e.code === 'ABORTED') || attempt >= BUSY_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, BUSY_BACKOFF_MS * 2 ** attempt));
      }
    }
  }

  /** The CLI without --xml (client-list has no XML form). */
  private async runCli(args: string[], command: string): Promise<{ stdout: string }> {
    try {
      return await run('gluster', ['--mode=script', `--glusterd-sock=${this.socket}`, ...args], { timeoutMs: CLI_TIMEOUT_MS });
    } catch (e) {
      throw this.execFailure(e, command);
    }
  }

  private async execOnce(args: string[]): Promise<XmlNode> {
    const command = args.join(' ');
    const { stdout } = await this.runCli([...args, '--xml'], command);
    let doc: XmlNode;
    try {
      doc = parseXml(stdout);
    } catch {
      throw new GlusterError('UNKNOWN', firstLines(stdout) || 'no output', command);
    }
    const out = child(doc, 'cliOutput');
    if (!out) throw new GlusterError('UNKNOWN', firstLines(stdout) || 'no output', command);
    if (Number(textOf(out, 'opRet')) !== 0) {
      const message = textOf(out, 'opErrstr') || textOf(out, 'output') || `failed (opErrno ${textOf(out, 'opErrno')})`;
      throw new GlusterError(codeFor(message), message, command);
    }
    return out;
  }

  private execFailure(e: unknown, command: string): CsiError {
    if (!isExecError(e)) return unavailable(`gluster ${command}: ${(e as Error).message}`);
    const said = firstLines(e.stderr) || firstLines(e.message);
    if (e.exitCode === undefined && !e.timedOut)
      return failedPrecondition(`the gluster CLI could not run (${said}); install glusterfs-server on the controller`);
    if (e.timedOut || /Connection failed|gluster daemon is operational|Is glusterd running/i.test(`${e.message} ${e.stderr}`)) {
      return unavailable(`glusterd on ${this.serverName} is not reachable through ${this.socket}: ${said}`);
    }
    return new GlusterError(codeFor(said), said, command);
  }
}

/** The gRPC code a gluster message means, where we can tell. */
function codeFor(message: string): ConstructorParameters<typeof CsiError>[0] {
  if (/another transaction is in progress|locking failed|Another transaction/i.test(message)) return 'ABORTED';
  if (/not connected|disconnected|Connection failed|quorum/i.test(message)) return 'UNAVAILABLE';
  if (/does not exist/i.test(message)) return 'NOT_FOUND';
  return 'FAILED_PRECONDITION';
}

function splitBrick(name: string): GlusterBrick {
  const colon = name.lastIndexOf(':/');
  return colon < 0 ? { host: '', path: name } : { host: name.slice(0, colon), path: name.slice(colon + 1) };
}

function firstLines(s: string): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, 3)
    .join('; ');
}
