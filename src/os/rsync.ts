// rsync for `rexcsi volume migrate` between two mounted volumes: hard links, ACLs, xattrs, numeric owners and
// holes kept (-aHAX --numeric-ids --sparse), and a checksum pass over both trees as the verification.
import { CsiError } from '../errors.js';
import { isExecError, runStreaming } from './exec.js';

export interface CopyProgress {
  bytesDone: number;
  /** 0..1 */
  fraction: number;
  /** rsync's own rate text, e.g. 31.25MB/s */
  rate: string;
}

export interface TreeCopyResult {
  files: number;
  bytes: number;
}

// The same flags for the copy and for its verification, so the check compares exactly what was copied.
const MIRROR = ['-aHAX', '--numeric-ids', '--delete'];

function excludes(names: string[]): string[] {
  return names.map((n) => `--exclude=/${n}`);
}

function rsyncError(what: string, e: unknown): CsiError {
  if (!isExecError(e)) return e instanceof CsiError ? e : new CsiError('INTERNAL', String(e));
  const lines = e.stderr.split('\n').filter((l) => l.trim() !== '');
  return new CsiError('INTERNAL', `rsync ${what} failed (exit ${e.exitCode ?? 'none'}): ${lines.slice(-3).join('; ')}`);
}

function progressOf(line: string): CopyProgress | undefined {
  const m = /^\s*([\d,]+)\s+(\d+)%\s+(\S+\/s)/.exec(line);
  return m ? { bytesDone: Number(m[1]!.replace(/,/g, '')), fraction: Number(m[2]) / 100, rate: m[3]! } : undefined;
}

function statNumber(stdout: string, label: string): number {
  const m = new RegExp(`^${label}:\\s+([\\d,]+)`, 'm').exec(stdout);
  return m ? Number(m[1]!.replace(/,/g, '')) : 0;
}

/** Makes dst (a directory) a copy of src's contents; dst's extra files go. */
export async function copyTree(
  src: string,
  dst: string,
  opts: { exclude?: string[]; onProgress?: (p: CopyProgress) => void } = {},
): Promise<TreeCopyResult> {
  try {
    const { stdout } = await runStreaming(
      'rsync',
      [...MIRROR, '--sparse', '--stats', '--info=progress2', ...excludes(opts.exclude ?? []), `${src}/`, `${dst}/`],
      {
        onLine: (stream, line) => {
          const p = stream === 'stdout' ? progressOf(line) : undefined;
          if (p) opts.onProgress?.(p);
        },
      },
    ).done;
    return { files: statNumber(stdout, 'Number of regular files transferred'), bytes: statNumber(stdout, 'Total file size') };
  } catch (e) {
    throw rsyncError(`${src} -> ${dst}`, e);
  }
}

/**
 * Reads every file of both trees in full (--checksum) and compares content, modes, owners, times, hard
 * links, ACLs and xattrs; returns the differences rsync itemizes (none: the trees match).
 */
export async function compareTrees(src: string, dst: string, exclude: string[] = []): Promise<string[]> {
  try {
    const { stdout } = await runStreaming('rsync', [
      ...MIRROR,
      '--checksum',
      '--dry-run',
      '--itemize-changes',
      ...excludes(exclude),
      `${src}/`,
      `${dst}/`,
    ]).done;
    return stdout.split('\n').filter((l) => l.trim() !== '');
  } catch (e) {
    throw rsyncError(`verification of ${dst} against ${src}`, e);
  }
}
