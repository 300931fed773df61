// A tree that exercises what a volume copy can lose (hard links, xattrs, a sparse file, odd modes and
// owners, a symlink, a FIFO, an empty directory), and a manifest of a tree: every entry's type, mode,
// owner, size, mtime, content hash, link target, xattrs and hard-link group, for "metadata for metadata".
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile, open } from 'node:fs/promises';
import { join, relative } from 'node:path';

export const SPARSE_SIZE = 64 * 1024 * 1024;

export async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, 'dir/nested'), { recursive: true });
  await writeFile(join(root, 'hello.txt'), 'hello, volume\n');
  await writeFile(join(root, 'dir/random.bin'), createHash('sha512').update('seed').digest().toString('hex').repeat(5000));
  await link(join(root, 'dir/random.bin'), join(root, 'dir/nested/hardlink.bin'));
  await link(join(root, 'hello.txt'), join(root, 'hello-again.txt'));
  await symlink('../hello.txt', join(root, 'dir/link-to-hello'));
  execFileSync('mkfifo', [join(root, 'dir/fifo')]);
  await mkdir(join(root, 'empty'));
  // a sparse file: 64 MiB with two small islands of data
  const fh = await open(join(root, 'sparse.img'), 'w');
  await fh.write(Buffer.from('start of data'), 0, 13, 4096);
  await fh.write(Buffer.from('middle island'), 0, 13, 32 * 1024 * 1024);
  await fh.truncate(SPARSE_SIZE);
  await fh.close();
  await writeFile(join(root, 'setuid-tool'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'setuid-tool'), 0o4751);
  await writeFile(join(root, 'secret'), 'for the owner only');
  await chmod(join(root, 'secret'), 0o600);
  await chown(join(root, 'secret'), 1234, 5678);
  await chown(join(root, 'dir/nested'), 4321, 8765);
  await chmod(join(root, 'empty'), 0o1777);
  execFileSync('setfattr', ['-n', 'user.purpose', '-v', 'backup test', join(root, 'hello.txt')]);
  execFileSync('setfattr', ['-n', 'user.binary', '-v', '0x00ff10', join(root, 'dir/random.bin')]);
  execFileSync('setfattr', ['-n', 'user.on-dir', '-v', 'yes', join(root, 'dir')]);
  await utimes(join(root, 'hello.txt'), new Date('2020-02-02T02:02:02Z'), new Date('2021-03-03T03:03:03.123Z'));
  await chown(root, 100, 200);
  await chmod(root, 0o750);
}

export interface Entry {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  mtimeMs?: number;
  sha256?: string;
  target?: string;
  xattrs: Record<string, string>;
  /** the first path (sorted) of the entry's hard-link group, when it has more than one name */
  linkGroup?: string;
}

function xattrsOf(path: string): Record<string, string> {
  const out = execFileSync('getfattr', ['-h', '-d', '-m', '^user\\.', '-e', 'hex', '--absolute-names', path], { encoding: 'utf8' });
  const attrs: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=(.*)$/.exec(line);
    if (m) attrs[m[1]!] = m[2]!;
  }
  return attrs;
}

function typeOf(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/** Every entry under root (root itself as '.'), lost+found left out (each filesystem has its own). */
export async function manifest(root: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const inodes = new Map<string, string[]>();
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    const rel = relative(root, path) || '.';
    const type = typeOf(st);
    const e: Entry = {
      path: rel,
      type,
      mode: (st.mode & 0o7777).toString(8),
      uid: st.uid,
      gid: st.gid,
      xattrs: type === 'fifo' ? {} : xattrsOf(path),
    };
    if (type === 'file') {
      e.size = st.size;
      e.sha256 = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
      e.mtimeMs = st.mtimeMs;
      const key = `${st.dev}:${st.ino}`;
      inodes.set(key, [...(inodes.get(key) ?? []), rel]);
      (e as Entry & { inode?: string }).inode = key;
    }
    if (type === 'symlink') e.target = await readlink(path);
    entries.push(e);
    if (type === 'dir')
      for (const name of (await readdir(path)).sort()) if (!(rel === '.' && name === 'lost+found')) await walk(join(path, name));
  };
  await walk(root);
  for (const e of entries as (Entry & { inode?: string })[]) {
    if (e.inode !== undefined) {
      const group = inodes.get(e.inode)!.sort();
      if (group.length > 1) e.linkGroup = group[0];
      delete e.inode;
    }
  }
  return entries;
}

/** Bytes the file occupies on disk (holes take none). */
export async function allocatedBytes(path: string): Promise<number> {
  return (await lstat(path)).blocks * 512;
}
