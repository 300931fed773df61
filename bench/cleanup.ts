// Leaving nothing behind, also after a failure or a Ctrl-C: every process the benchmark starts is
// registered here; teardown() stops them (their whole process group, so a mount or losetup they started
// dies with them) and then sweeps the benchmark's directory: unmount everything below it, deepest first,
// detach every loop device whose backing file is below it, remove the directory.

import type { ChildProcess } from 'node:child_process';
import { detachLoopDevice, listLoopDevices, mounter, readMountInfo, run } from '../src/os/index.js';
import { isUnder } from '../test/helpers/leaks.js';
import { removeTempDir } from '../test/helpers/tmp.js';
import type { BenchPlugin } from './plugin.js';

export class Teardown {
  private readonly plugins = new Set<BenchPlugin>();
  private readonly children = new Set<ChildProcess>();
  private aborted = false;
  private finished: Promise<string[]> | undefined;

  constructor(readonly dir: string) {}

  /** Set once teardown has begun: workers stop taking new volumes. */
  get stopping(): boolean {
    return this.aborted;
  }

  addPlugin(p: BenchPlugin): void {
    this.plugins.add(p);
  }

  removePlugin(p: BenchPlugin): void {
    this.plugins.delete(p);
  }

  /** A child spawned with detached: true (its own process group), tracked until it closes. */
  addChild(c: ChildProcess): void {
    this.children.add(c);
    c.once('close', () => this.children.delete(c));
  }

  /** Stops everything and sweeps the directory once; returns what could not be removed (empty when clean). */
  teardown(): Promise<string[]> {
    this.finished ??= this.stopAndSweep();
    return this.finished;
  }

  private async stopAndSweep(): Promise<string[]> {
    this.aborted = true;
    for (const c of this.children) killGroup(c);
    await Promise.all([...this.plugins].map((p) => p.stop()));
    await Promise.all(
      [...this.children].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('close', r)))),
    );
    return sweep(this.dir);
  }
}

function killGroup(c: ChildProcess): void {
  if (!c.pid || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

/** Unmounts, detaches and removes everything of the benchmark below dir; nothing outside it is touched. */
export async function sweep(dir: string): Promise<string[]> {
  const problems: string[] = [];
  const mounts = (await readMountInfo()).map((m) => m.mountPoint).filter((p) => isUnder(p, dir));
  for (const target of [...new Set(mounts)].sort((a, b) => b.length - a.length)) {
    try {
      await mounter.unmount(target);
    } catch {
      try {
        await run('umount', ['-l', target]); // busy: at least take it out of the tree
      } catch (e) {
        problems.push(`umount ${target}: ${(e as Error).message}`);
      }
    }
  }
  for (const d of (await listLoopDevices()).filter((l) => isUnder(l.backingFile, dir))) {
    try {
      await detachLoopDevice(d.device);
    } catch (e) {
      problems.push(`losetup -d ${d.device}: ${(e as Error).message}`);
    }
  }
  try {
    await removeTempDir(dir);
  } catch (e) {
    problems.push((e as Error).message);
  }
  return problems;
}
