// The one door to external programs: argument arrays (never a shell), a timeout, LC_ALL=C so we can
// parse output, and errors that keep the command and its stderr.
import { execa } from 'execa';

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  okExitCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export type ExecObserver = (cmd: string, durationMs: number, ok: boolean) => void;

export const DEFAULT_TIMEOUT_MS = 120_000;
/** For work that scales with device size (mkfs, fsck, resize) on large cloud volumes. */
export const SLOW_TIMEOUT_MS = 600_000;

// Storage tools live in sbin, which minimal container PATHs often lack.
export const STANDARD_PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export class ExecError extends Error {
  readonly command: string;
  readonly args: readonly string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;
  readonly timedOut: boolean;

  constructor(
    command: string,
    args: readonly string[],
    details: { exitCode?: number; stderr: string; stdout?: string; timedOut?: boolean; reason?: string; cause?: unknown },
  ) {
    const stderr = details.stderr.trim();
    // Some tools (resize2fs, xfs_growfs) explain failures on stdout; use it only when stderr is silent.
    const explanation = stderr !== '' ? stderr : (details.stdout ?? '').trim();
    super(`${[command, ...args].join(' ')} failed (${details.reason ?? `exit ${details.exitCode}`})${summary(explanation)}`, {
      cause: details.cause,
    });
    this.name = 'ExecError';
    this.command = command;
    this.args = args;
    this.exitCode = details.exitCode;
    this.stderr = stderr;
    this.timedOut = details.timedOut ?? false;
  }
}

export function isExecError(e: unknown): e is ExecError {
  return e instanceof ExecError;
}

let observer: ExecObserver | undefined;

/** Install (or clear with undefined) a hook called after every command, e.g. for metrics. */
export function setExecObserver(fn: ExecObserver | undefined): void {
  observer = fn;
}

export function searchPath(): string {
  const dirs = (process.env.PATH ?? '').split(':').filter((d) => d !== '');
  for (const d of STANDARD_PATH_DIRS) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(':');
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const okExitCodes = opts.okExitCodes ?? [0];
  const started = performance.now();
  const result = await execa(cmd, args, {
    reject: false,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    env: { LC_ALL: 'C', PATH: searchPath() },
    // Without input, stdin is /dev/null so no tool can sit waiting on a confirmation prompt.
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  });
  const stdout = String(result.stdout ?? '');
  const stderr = String(result.stderr ?? '');
  const ok = result.exitCode !== undefined && okExitCodes.includes(result.exitCode) && !result.timedOut;
  notify(cmd, performance.now() - started, ok);
  if (ok) return { stdout, stderr, exitCode: result.exitCode as number };
  throw new ExecError(cmd, args, {
    exitCode: result.exitCode,
    stderr,
    stdout,
    timedOut: result.timedOut,
    reason: failureReason(result, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    cause: result.cause,
  });
}

function failureReason(
  result: { exitCode?: number; timedOut: boolean; signal?: string; code?: string },
  timeoutMs: number,
): string | undefined {
  if (result.timedOut) return `timed out after ${timeoutMs} ms`;
  if (result.code === 'ENOENT') return 'not found in PATH';
  if (result.exitCode === undefined && result.signal) return `killed by ${result.signal}`;
  if (result.exitCode === undefined) return result.code ?? 'could not start';
  return undefined;
}

function notify(cmd: string, durationMs: number, ok: boolean): void {
  try {
    observer?.(cmd, durationMs, ok);
  } catch {
    // A broken metrics hook must never fail a storage operation.
  }
}

// The first few lines are the useful part; usage dumps that follow are noise.
function summary(stderr: string): string {
  if (stderr === '') return '';
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return `: ${lines.slice(0, 3).join('; ')}`;
}

export interface StreamingOptions {
  /** added to this process's environment (e.g. a tool's repository and password-file variables) */
  env?: Record<string, string>;
  cwd?: string;
  /** a file (or device) the program reads as its stdin; else /dev/null */
  stdinFile?: string;
  /** 'pipe' hands stdout to the caller as a stream (for data); 'lines' (default) delivers it to onLine */
  stdout?: 'pipe' | 'lines';
  /** every line of stderr, and of stdout unless it is piped; '\r' also ends a line (progress meters) */
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  timeoutMs?: number;
  okExitCodes?: number[];
}

export interface StreamingRun {
  /** the program's stdout when StreamingOptions.stdout is 'pipe' */
  stdout: NodeJS.ReadableStream | undefined;
  /** resolves when the program exits with an accepted code, rejects with ExecError otherwise */
  done: Promise<RunResult>;
  kill(): void;
}

const streaming = new Set<() => void>();

/** SIGKILLs every tool runStreaming started that still runs (a crash test killing the command with its tools). */
export function killStreamingTools(): void {
  for (const kill of streaming) kill();
}

/** Long-running tools (backup, copy) whose progress and data are consumed while they run. */
export function runStreaming(cmd: string, args: string[], opts: StreamingOptions = {}): StreamingRun {
  const started = performance.now();
  const child = execa(cmd, args, {
    reject: false,
    timeout: opts.timeoutMs ?? 0,
    env: { LC_ALL: 'C', PATH: searchPath(), ...opts.env },
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.stdinFile !== undefined ? { inputFile: opts.stdinFile } : { stdin: 'ignore' as const }),
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: opts.stdout !== 'pipe', stderr: true },
    maxBuffer: 64 * 1024 * 1024,
  });
  const feed = (stream: 'stdout' | 'stderr', source: NodeJS.ReadableStream | null): void => {
    let pending = '';
    source?.on('data', (chunk: Buffer) => {
      const parts = (pending + chunk.toString('utf8')).split(/\r\n|\r|\n/);
      pending = parts.pop() ?? '';
      for (const line of parts) if (line !== '') opts.onLine?.(stream, line);
    });
    source?.on('end', () => pending !== '' && opts.onLine?.(stream, pending));
  };
  if (opts.stdout !== 'pipe') feed('stdout', child.stdout);
  feed('stderr', child.stderr);
  const okExitCodes = opts.okExitCodes ?? [0];
  const kill = (): void => void child.kill('SIGKILL');
  streaming.add(kill);
  const done = child.then((result) => {
    streaming.delete(kill);
    const stdout = opts.stdout === 'pipe' ? '' : String(result.stdout ?? '');
    const stderr = String(result.stderr ?? '');
    const ok = result.exitCode !== undefined && okExitCodes.includes(result.exitCode) && !result.timedOut;
    notify(cmd, performance.now() - started, ok);
    if (ok) return { stdout, stderr, exitCode: result.exitCode as number };
    throw new ExecError(cmd, args, {
      exitCode: result.exitCode,
      stderr,
      stdout,
      timedOut: result.timedOut,
      reason: failureReason(result, opts.timeoutMs ?? 0),
      cause: result.cause,
    });
  });
  return { stdout: opts.stdout === 'pipe' ? (child.stdout ?? undefined) : undefined, done, kill };
}
