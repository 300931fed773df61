// One machine-wide lock for the gluster test helpers: the single glusterd (gluster.ts, 127.0.0.2) and the
// three-server pool (gluster-pool.ts, 127.0.0.11-13) could share a machine (distinct addresses, port
// ranges and namespaces), but both FUSE-mount from the test's namespace and glusterd's defaults are
// machine-wide, so runs take turns: a second run waits here instead of failing.
//
//   const release = await takeGlusterLock();   // waits while another live process holds it
//   ... start glusterd(s), test, stop them ...
//   await release();

import { open, readFile, rm } from 'node:fs/promises';

export const GLUSTER_LOCK_FILE = '/tmp/rexcsi-glusterd.lock';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid holding the lock, undefined when nobody (a dead holder's lock is stale and removed). */
async function holder(): Promise<number | undefined> {
  const pid = Number((await readFile(GLUSTER_LOCK_FILE, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(pid) && pid > 0 && alive(pid)) return pid;
  await rm(GLUSTER_LOCK_FILE, { force: true });
  return undefined;
}

let held = 0;

/** Takes the lock (re-entrant within this process); resolves to its release. Throws after timeoutMs. */
export async function takeGlusterLock(opts: { timeoutMs?: number; pollMs?: number } = {}): Promise<() => Promise<void>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 40 * 60_000);
  let warned = false;
  while (held === 0) {
    try {
      const f = await open(GLUSTER_LOCK_FILE, 'wx');
      await f.writeFile(`${process.pid}\n`);
      await f.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = await holder();
    if (pid === process.pid) break; // ours from an earlier take in this process
    if (pid === undefined) continue;
    if (Date.now() > deadline) throw new Error(`${GLUSTER_LOCK_FILE} is held by pid ${pid} (another gluster test run); gave up waiting`);
    if (!warned) console.warn(`[gluster] waiting for pid ${pid} (another gluster test run) to release ${GLUSTER_LOCK_FILE}`);
    warned = true;
    await sleep(opts.pollMs ?? 2000);
  }
  held++;
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    if (--held === 0) await rm(GLUSTER_LOCK_FILE, { force: true });
  };
}
