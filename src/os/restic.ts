// restic, the backup engine of `rexcsi volume backup/restore`: deduplicated, encrypted repositories on a
// local path or any S3 API. The password reaches restic only through its environment (RESTIC_PASSWORD from
// ours, or RESTIC_PASSWORD_FILE naming a file), never argv, and every line passed on is redacted.
import { CsiError, notFound } from '../errors.js';
import { isExecError, runStreaming, type StreamingOptions } from './exec.js';

export interface ResticRepo {
  /** a local path or s3:http://host:port/bucket/prefix */
  url: string;
  /** file holding the password; undefined: RESTIC_PASSWORD from the environment */
  passwordFile?: string;
}

export interface ResticProgress {
  /** 0..1 */
  fraction: number;
  bytesDone: number;
  bytesTotal: number;
  secondsRemaining?: number;
}

export interface ResticSnapshot {
  id: string;
  shortId: string;
  time: string;
  hostname: string;
  paths: string[];
  tags: string[];
}

export interface BackupSummary {
  snapshotId: string;
  bytesProcessed: number;
  bytesAdded: number;
  files: number;
  seconds: number;
}

/** Values never to show: the password and the AWS secret, wherever a tool might echo them. */
function secretsToHide(): string[] {
  return [process.env.RESTIC_PASSWORD, process.env.AWS_SECRET_ACCESS_KEY, process.env.AWS_SESSION_TOKEN].filter(
    (v): v is string => v !== undefined && v.length >= 3,
  );
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secretsToHide()) out = out.split(secret).join('***');
  return out;
}

function resticEnv(repo: ResticRepo): Record<string, string> {
  if (repo.passwordFile === undefined && !process.env.RESTIC_PASSWORD)
    throw new CsiError('INVALID_ARGUMENT', 'no repository password: set RESTIC_PASSWORD or pass --password-file FILE');
  // Our own environment carries RESTIC_PASSWORD through; a file overrides it.
  return { RESTIC_REPOSITORY: repo.url, ...(repo.passwordFile !== undefined ? { RESTIC_PASSWORD_FILE: repo.passwordFile } : {}) };
}

/** restic's own failure, as a CsiError whose code says what to do about it. */
export function resticError(repo: ResticRepo, e: unknown): CsiError {
  if (!isExecError(e)) return e instanceof CsiError ? e : new CsiError('INTERNAL', String(e));
  const stderr = redact(e.stderr);
  const fatal = stderr.split('\n').find((l) => l.startsWith('Fatal:')) ?? stderr.split('\n').slice(-3).join('; ');
  if (/wrong password or no key found/.test(stderr))
    return new CsiError('PERMISSION_DENIED', `repository ${repo.url}: wrong password (restic: ${fatal})`);
  if (/dial tcp|connection refused|no such host|i\/o timeout|network is unreachable|timeout awaiting/i.test(stderr))
    return new CsiError('UNAVAILABLE', `repository ${repo.url} is unreachable: ${fatal}`);
  if (/Is there a repository at the following location\?/.test(stderr))
    return notFound(`no restic repository at ${repo.url} (restic: ${fatal})`);
  if (/no matching ID found|no snapshot found|invalid id/i.test(stderr)) return notFound(`repository ${repo.url}: ${fatal}`);
  if (e.command === 'restic' && e.exitCode === undefined) return new CsiError('UNAVAILABLE', `restic did not run: ${e.message}`);
  return new CsiError('INTERNAL', `restic ${e.args[0] ?? ''} failed: ${fatal}`);
}

async function restic(repo: ResticRepo, args: string[], opts: StreamingOptions = {}): Promise<string> {
  try {
    const { stdout } = await runStreaming('restic', args, { ...opts, env: { ...resticEnv(repo), ...opts.env } }).done;
    return stdout;
  } catch (e) {
    throw resticError(repo, e);
  }
}

/** Opens the repository (password, reachability); with create, makes it when there is none yet. */
export async function openRepository(repo: ResticRepo, create: boolean): Promise<'opened' | 'created'> {
  try {
    await restic(repo, ['cat', 'config', '--no-lock'], { timeoutMs: 120_000 });
    return 'opened';
  } catch (e) {
    if (!(create && e instanceof CsiError && e.code === 'NOT_FOUND')) throw e;
  }
  await restic(repo, ['init'], { timeoutMs: 120_000 });
  return 'created';
}

/** Removes locks left by a killed restic on this host (restic itself keeps live ones). */
export async function removeStaleLocks(repo: ResticRepo): Promise<void> {
  await restic(repo, ['unlock'], { timeoutMs: 120_000 });
}

function progressOf(line: string): ResticProgress | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const m = JSON.parse(line) as Record<string, unknown>;
    if (m.message_type !== 'status') return undefined;
    const num = (k: string): number => (typeof m[k] === 'number' ? m[k] : 0);
    return {
      fraction: num('percent_done'),
      bytesDone: num('bytes_done'),
      bytesTotal: num('total_bytes'),
      ...(typeof m.seconds_remaining === 'number' ? { secondsRemaining: m.seconds_remaining } : {}),
    };
  } catch {
    return undefined;
  }
}

function summaryOf(stdout: string): BackupSummary {
  for (const line of stdout.split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    const m = JSON.parse(line) as Record<string, unknown>;
    if (m.message_type !== 'summary' || typeof m.snapshot_id !== 'string') continue;
    return {
      snapshotId: m.snapshot_id,
      bytesProcessed: Number(m.total_bytes_processed ?? 0),
      bytesAdded: Number(m.data_added ?? 0),
      files: Number(m.total_files_processed ?? 0),
      seconds: Number(m.total_duration ?? 0),
    };
  }
  throw new CsiError('INTERNAL', 'restic backup printed no summary');
}

export interface BackupSource {
  /** a directory whose contents become the snapshot's root ... */
  dir?: string;
  /** ... or a file or device read as one stream, stored as `streamName` */
  stream?: { path: string; name: string };
  /** names below dir to leave out, e.g. lost+found */
  exclude?: string[];
}

/** Backs up a directory (as the snapshot's root) or a device (one file); returns restic's summary. */
export async function backup(
  repo: ResticRepo,
  source: BackupSource,
  tags: string[],
  onProgress?: (p: ResticProgress) => void,
): Promise<BackupSummary> {
  const tagArgs = tags.flatMap((t) => ['--tag', t]);
  const onLine = (stream: string, line: string): void => {
    const p = stream === 'stdout' ? progressOf(line) : undefined;
    if (p) onProgress?.(p);
  };
  const common = ['backup', '--json', '--host', 'rexcsi', ...tagArgs];
  const stdout = source.stream
    ? await restic(repo, [...common, '--stdin', '--stdin-filename', source.stream.name], { stdinFile: source.stream.path, onLine })
    : await restic(
        repo,
        [...common, '--one-file-system', ...(source.exclude ?? []).flatMap((x) => ['--exclude', `${source.dir!}/${x}`]), '.'],
        {
          cwd: source.dir!,
          onLine,
        },
      );
  return summaryOf(stdout);
}

export async function listSnapshots(repo: ResticRepo, tags: string[] = []): Promise<ResticSnapshot[]> {
  const stdout = await restic(repo, ['snapshots', '--json', '--no-lock', ...(tags.length ? ['--tag', tags.join(',')] : [])], {
    timeoutMs: 300_000,
  });
  const raw = JSON.parse(stdout.trim() || '[]') as Record<string, unknown>[] | null;
  return (raw ?? []).map((s) => ({
    id: String(s.id),
    shortId: String(s.short_id),
    time: String(s.time),
    hostname: String(s.hostname),
    paths: Array.isArray(s.paths) ? s.paths.map(String) : [],
    tags: Array.isArray(s.tags) ? s.tags.map(String) : [],
  }));
}

/** Restores a snapshot's root into target (existing files are overwritten) and verifies what it wrote. */
export async function restoreTree(repo: ResticRepo, snapshotId: string, target: string, onLine?: (line: string) => void): Promise<void> {
  await restic(repo, ['restore', snapshotId, '--target', target, '--verify'], {
    onLine: (_stream, line) => onLine?.(redact(line)),
  });
}

export interface DumpRun {
  data: NodeJS.ReadableStream;
  done: Promise<void>;
  kill(): void;
}

/** Streams one file of a snapshot (a block volume's image) to the caller. */
export function dumpFile(repo: ResticRepo, snapshotId: string, name: string): DumpRun {
  const run = runStreaming('restic', ['dump', snapshotId, `/${name}`], { env: resticEnv(repo), stdout: 'pipe' });
  return {
    data: run.stdout!,
    done: run.done.then(
      () => undefined,
      (e: unknown) => {
        throw resticError(repo, e);
      },
    ),
    kill: () => run.kill(),
  };
}

/** Deletes snapshots (a failed restore's test backups, or retention by the operator); prune is separate. */
export async function forgetSnapshots(repo: ResticRepo, ids: string[]): Promise<void> {
  if (ids.length) await restic(repo, ['forget', ...ids]);
}
