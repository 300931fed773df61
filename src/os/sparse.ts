// Holes back into restored files: restic 0.14 restores a sparse file's holes as written zeros, so after a
// restore the zero ranges of large files are punched out again (fallocate --dig-holes). The data reads the
// same; the file's mtime, which punching changes, is put back to the nanosecond.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';

/** Files smaller than this are left as they are: their holes are not worth a process each. */
export const DIG_MIN_BYTES = 1024 * 1024;

/** Punches holes in the zero ranges of every regular file of at least minBytes under root; returns how many files. */
export async function digHoles(root: string, minBytes = DIG_MIN_BYTES): Promise<number> {
  const seen = new Set<string>();
  let count = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      if (!entry.isFile()) continue;
      const st = await lstat(path, { bigint: true });
      const inode = `${st.dev}:${st.ino}`;
      if (st.size < BigInt(minBytes) || seen.has(inode)) continue;
      seen.add(inode);
      // Already as sparse as its size allows: nothing to punch.
      if (st.blocks * 512n < st.size) continue;
      await run('fallocate', ['--dig-holes', '--', path]);
      const ns = st.mtimeNs % 1_000_000_000n;
      await run('touch', ['-m', '-c', '-d', `@${st.mtimeNs / 1_000_000_000n}.${ns.toString().padStart(9, '0')}`, '--', path]);
      count++;
    }
  };
  await walk(root);
  return count;
}
