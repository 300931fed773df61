// What a test run leaves on the machine: loop devices, mounts and our own processes (plugins started from
// /tmp/rexcsi-test, csi-sanity). Take a snapshot before, compare after; anything new is a leak.
//
//   const before = await snapshotSystem();
//   ... tests ...
//   await stopAllPlugins();          // from ./plugin.js: stop what the tests started first
//   await assertNoLeaks(before);     // throws naming each leftover (under CI, removes what is clearly ours)
//
// test/setup.ts does exactly this around every test file, and scripts/test.sh does it around the whole run
// (through test/helpers/leak-audit.ts), so a single test file needs none of it unless it wants to check a
// narrower span.
//
// Reads /sys and /proc directly (no exec), so it is cheap enough to run around every file.

import { readdir, readFile, readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { detachLoopDevice, listLoopDevices, mounter, readMountInfo, run, type LoopDevice } from '../../src/os/index.js';
import { TEST_ROOT } from './tmp.js';

export type { LoopDevice };
export { TEST_ROOT };

export interface MountEntry {
  target: string;
  source: string;
  fstype: string;
}

export interface OurProcess {
  pid: number;
  cmdline: string;
}

export interface SystemSnapshot {
  loops: LoopDevice[];
  mounts: MountEntry[];
  processes: OurProcess[];
  /** Only mounts at or below this path were recorded; null = all mounts. */
  mountScope: string | null;
}

export interface Leaks {
  loops: LoopDevice[];
  mounts: MountEntry[];
  processes: OurProcess[];
}

export interface SnapshotOptions {
  /** Record only mounts at or below this path (default TEST_ROOT); null records every mount. */
  mountScope?: string | null;
}

// ---- reading the system (through src/os: /proc/self/mountinfo and sysfs, no exec) -----------------------

/** The mount table of this process's mount namespace (what `findmnt` shows). */
export async function listMounts(): Promise<MountEntry[]> {
  return (await readMountInfo()).map((m) => ({ target: m.mountPoint, source: m.source, fstype: m.fsType }));
}

/** True when `path` is `dir` or inside it. */
export function isUnder(path: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return path === d || path.startsWith(d + '/');
}

/**
 * Processes the tests start: rexcsi plugins serving from TEST_ROOT (`node .../dist/main.js ... /tmp/rexcsi-test/...`),
 * csi-sanity, gluster processes (glusterd, bricks, FUSE clients) whose command line names TEST_ROOT, the
 * mount-namespace holders of the gluster pool helper (argv[0] `rexcsi-gluster-ns:<dir under TEST_ROOT>`) and
 * every process inside such a namespace (self-heal and quota daemons name no path). A plugin a developer
 * runs by hand elsewhere is not counted.
 */
export async function listOurProcesses(): Promise<OurProcess[]> {
  const all: { pid: number; argv: string[]; comm: string; mntNs: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      if (argv.length === 0) continue; // kernel thread or zombie
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
      const mntNs = await readlink(`/proc/${pid}/ns/mnt`).catch(() => '');
      all.push({ pid, argv, comm, mntNs });
    } catch {
      continue; // gone meanwhile
    }
  }
  // TEST_ROOT followed by '/': /tmp/rexcsi-test must not claim another run's /tmp/rexcsi-test-<name>
  const inRoot = (a: string) => a.endsWith(TEST_ROOT) || a.includes(`${TEST_ROOT}/`);
  const isHolder = (argv: string[]) => (argv[0] ?? '').startsWith('rexcsi-gluster-ns:') && inRoot(argv[0]!);
  const holderNs = new Set(all.filter((p) => isHolder(p.argv) && p.mntNs).map((p) => p.mntNs));
  const out: OurProcess[] = [];
  for (const { pid, argv, comm, mntNs } of all) {
    const isPlugin = argv.some((a) => a.endsWith('dist/main.js')) && argv.some(inRoot);
    const isSanity = basename(argv[0] ?? '') === 'csi-sanity' && argv.some(inRoot);
    const isGluster = /^gluster(d|fs|fsd)$/.test(comm) && (argv.some(inRoot) || holderNs.has(mntNs));
    if (isPlugin || isSanity || isGluster || isHolder(argv)) out.push({ pid, cmdline: argv.join(' ') });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

// ---- snapshots and leaks ---------------------------------------------------------------------------------

export async function snapshotSystem(opts: SnapshotOptions = {}): Promise<SystemSnapshot> {
  const mountScope = opts.mountScope === undefined ? TEST_ROOT : opts.mountScope;
  const [loops, mounts, processes] = await Promise.all([listLoopDevices(), listMounts(), listOurProcesses()]);
  return {
    // only loop devices of files under the scope are ours (other runs on the machine have their own root)
    loops: mountScope === null ? loops : loops.filter((l) => isUnder(l.backingFile, mountScope)),
    mounts: mountScope === null ? mounts : mounts.filter((m) => isUnder(m.target, mountScope)),
    processes,
    mountScope,
  };
}

const loopKey = (l: LoopDevice): string => `${l.device} ${l.backingFile}`;
const mountKey = (m: MountEntry): string => `${m.target} ${m.source} ${m.fstype}`;

/** Multiset difference: entries of `now` not matched by an entry of `before`. */
function added<T>(before: T[], now: T[], key: (t: T) => string): T[] {
  const counts = new Map<string, number>();
  for (const b of before) counts.set(key(b), (counts.get(key(b)) ?? 0) + 1);
  return now.filter((n) => {
    const c = counts.get(key(n)) ?? 0;
    if (c > 0) {
      counts.set(key(n), c - 1);
      return false;
    }
    return true;
  });
}

export function hasLeaks(l: Leaks): boolean {
  return l.loops.length + l.mounts.length + l.processes.length > 0;
}

/**
 * What is on the machine now and was not in `before`. Loop detaches and process exits can lag a moment
 * behind the call that caused them, so a difference is re-read until it is gone or `settleMs` has passed.
 */
export async function findLeaks(before: SystemSnapshot, opts: { settleMs?: number } = {}): Promise<Leaks> {
  const deadline = Date.now() + (opts.settleMs ?? 5000);
  for (;;) {
    const now = await snapshotSystem({ mountScope: before.mountScope });
    const leaks: Leaks = {
      loops: added(before.loops, now.loops, loopKey),
      mounts: added(before.mounts, now.mounts, mountKey),
      processes: now.processes.filter((p) => !before.processes.some((b) => b.pid === p.pid)),
    };
    if (!hasLeaks(leaks) || Date.now() >= deadline) return leaks;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function formatLeaks(l: Leaks): string {
  const lines: string[] = [];
  for (const m of l.mounts) lines.push(`  mount still in place: ${m.target} (${m.source}, ${m.fstype})`);
  for (const d of l.loops) {
    lines.push(`  loop device still attached: ${d.device} -> ${d.backingFile}${d.deleted ? ' (deleted)' : ''}`);
  }
  for (const p of l.processes) lines.push(`  process still running: pid ${p.pid}: ${p.cmdline}`);
  return lines.join('\n');
}

/**
 * Removes the leftovers that are certainly the tests' own: processes from listOurProcesses(), mounts under
 * TEST_ROOT (deepest first), loop devices whose backing file is under TEST_ROOT. Anything else is only
 * reported. Returns a line per action that failed or was not taken.
 */
export async function cleanupLeaks(l: Leaks): Promise<string[]> {
  const problems: string[] = [];
  for (const p of l.processes) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') problems.push(`kill ${p.pid}: ${String(e)}`);
    }
  }
  const mounts = [...l.mounts].sort((a, b) => b.target.length - a.target.length);
  for (const m of mounts) {
    if (!isUnder(m.target, TEST_ROOT)) {
      problems.push(`left in place (not under ${TEST_ROOT}): ${m.target}`);
      continue;
    }
    try {
      await mounter.unmount(m.target);
    } catch {
      try {
        await run('umount', ['-l', m.target]); // busy: detach it from the tree at least
      } catch (e) {
        problems.push(`umount ${m.target}: ${String(e)}`);
      }
    }
  }
  for (const d of l.loops) {
    if (!isUnder(d.backingFile, TEST_ROOT)) {
      problems.push(`left attached (backing file not under ${TEST_ROOT}): ${d.device}`);
      continue;
    }
    try {
      await detachLoopDevice(d.device);
    } catch (e) {
      problems.push(`losetup -d ${d.device}: ${String(e)}`);
    }
  }
  return problems;
}

/**
 * Whether leak checks remove the leftovers they find: REXCSI_TEST_CLEANUP=1 or 0; by default only under CI.
 * On a shared development machine another test run's loop devices and plugins look the same as ours, and
 * removing them would break that run.
 */
export function cleanupWanted(): boolean {
  const v = process.env['REXCSI_TEST_CLEANUP'];
  if (v === '1' || v === '0') return v === '1';
  return Boolean(process.env['CI']) && process.env['CI'] !== 'false';
}

/**
 * Throws when loop devices, mounts (within the snapshot's scope) or our processes appeared since `before`,
 * naming each one. With `cleanup` (default cleanupWanted()) it first removes what is clearly the tests'
 * own (see cleanupLeaks); the error still fails the file that leaked.
 */
export async function assertNoLeaks(before: SystemSnapshot, opts: { settleMs?: number; cleanup?: boolean } = {}): Promise<void> {
  const leaks = await findLeaks(before, opts);
  if (!hasLeaks(leaks)) return;
  let msg = `test run left these behind:\n${formatLeaks(leaks)}`;
  if (opts.cleanup ?? cleanupWanted()) {
    const problems = await cleanupLeaks(leaks);
    msg += problems.length ? `\ncleanup could not remove:\n  ${problems.join('\n  ')}` : '\n(cleaned up since)';
  } else {
    msg += '\n(left in place; REXCSI_TEST_CLEANUP=1 removes them)';
  }
  throw new Error(msg);
}
