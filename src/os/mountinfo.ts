// The kernel's mount table (/proc/self/mountinfo), read directly: no fork, and it shows stacked and
// bind mounts that stat() comparisons miss.
import { open, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export interface MountEntry {
  mountId: number;
  parentId: number;
  majorMinor: string;
  root: string;
  mountPoint: string;
  /** Per-mount options (ro, nosuid, ...): what a bind mount changes. */
  options: string[];
  /** Tagged fields such as shared:1 or master:2. */
  optionalFields: string[];
  fsType: string;
  source: string;
  /** Per-superblock options, shared by every mount of the filesystem. */
  superOptions: string[];
}

const MOUNTINFO_PATH = '/proc/self/mountinfo';

/** Undo the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash). */
export function decodeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const entry = parseMountInfoLine(line);
    if (entry) entries.push(entry);
  }
  return entries;
}

// Format: id parent major:minor root mountpoint options [optional...] - fstype source superoptions
function parseMountInfoLine(line: string): MountEntry | undefined {
  // Split on single spaces: an empty source is an empty field, not a missing one.
  const fields = line.split(' ');
  const sep = fields.indexOf('-', 6);
  if (sep < 0 || fields.length < sep + 3) return undefined;
  const [mountId, parentId, majorMinor, root, mountPoint, options] = fields;
  return {
    mountId: Number(mountId),
    parentId: Number(parentId),
    majorMinor: majorMinor ?? '',
    root: decodeMountField(root ?? ''),
    mountPoint: decodeMountField(mountPoint ?? ''),
    options: splitOptions(options ?? ''),
    optionalFields: fields.slice(6, sep),
    fsType: decodeMountField(fields[sep + 1] ?? ''),
    source: decodeMountField(fields[sep + 2] ?? ''),
    superOptions: splitOptions(fields.slice(sep + 3).join(' ')),
  };
}

function splitOptions(text: string): string[] {
  return text === '' ? [] : text.split(',').map(decodeMountField);
}

// One open, as few reads as the table needs, one close: readFile() would add an fstat (of a size-0 /proc file)
// and an extra read to find the end, each a round trip to libuv's thread pool.
const MOUNTINFO_CHUNK = 256 * 1024;

export async function readMountInfo(): Promise<MountEntry[]> {
  const file = await open(MOUNTINFO_PATH, 'r');
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const { bytesRead, buffer } = await file.read(Buffer.allocUnsafe(MOUNTINFO_CHUNK), 0, MOUNTINFO_CHUNK, null);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
      // seq_file hands out whole lines up to the buffer; a short read with room left over is not yet the end
      // for every kernel, so only an empty read ends the table.
    }
    return parseMountInfo(Buffer.concat(chunks).toString('utf8'));
  } finally {
    await file.close();
  }
}

// The kernel reports canonical paths; a symlinked or relative path must be resolved to compare.
export async function canonicalPath(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    // Missing (a deleted backing file) or a dead mount (ENOTCONN, ESTALE): resolve what is above it.
    return realpath(dirname(absolute)).then(
      (dir) => join(dir, basename(absolute)),
      () => absolute,
    );
  }
}

/** Every mount at exactly this path, bottom first: the last one is the visible (top) mount. */
export async function mountsAt(path: string): Promise<MountEntry[]> {
  const [target, entries] = await Promise.all([canonicalPath(path), readMountInfo()]);
  return stackOrder(entries.filter((e) => e.mountPoint === target));
}

// A mount stacked on a path has the mount below it as parent; follow that chain rather than trust file order.
export function stackOrder(stack: MountEntry[]): MountEntry[] {
  const ids = new Set(stack.map((e) => e.mountId));
  const ordered: MountEntry[] = [];
  let layer = stack.filter((e) => !ids.has(e.parentId));
  while (layer.length > 0) {
    ordered.push(...layer);
    const below = new Set(layer.map((e) => e.mountId));
    layer = stack.filter((e) => below.has(e.parentId) && !ordered.includes(e));
  }
  return ordered.length === stack.length ? ordered : stack; // defensive: never lose an entry
}

export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountsAt(path)).length > 0;
}

/** Mounts of a device or remote source; a block device also matches by major:minor, whatever name was used. */
export async function mountsOfSource(source: string): Promise<MountEntry[]> {
  const [majorMinor, entries] = await Promise.all([blockMajorMinor(source), readMountInfo()]);
  return entries.filter((e) => e.source === source || (majorMinor !== undefined && e.majorMinor === majorMinor));
}

async function blockMajorMinor(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    if (!st.isBlockDevice()) return undefined;
    return `${deviceMajor(st.rdev)}:${deviceMinor(st.rdev)}`;
  } catch {
    return undefined;
  }
}

// Linux dev_t layout (glibc gnu_dev_major / gnu_dev_minor).
export function deviceMajor(rdev: number): number {
  return Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
}

export function deviceMinor(rdev: number): number {
  return Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);
}
