import { destination as fdDestination, pino, type DestinationStream, type Logger } from 'pino';

// The plugin's logger: pino JSON lines by default (what log collectors parse), readable lines when a person
// watches a terminal. Secrets are redacted before anything is logged (src/csi/redact.ts), not here.

export type LogFormat = 'auto' | 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'text'];

export interface LoggerOptions {
  level: string;
  format: LogFormat;
  base: Record<string, unknown>;
  /** where lines go (default stdout) */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createLogger(opts: LoggerOptions): Logger {
  const out = opts.out ?? process.stdout;
  const text = opts.format === 'text' || (opts.format === 'auto' && out.isTTY === true);
  let destination: DestinationStream;
  if (text) destination = readableLines(out, out.isTTY === true);
  else if (opts.out) destination = { write: (line: string) => void out.write(line) };
  else destination = fdDestination({ fd: 1, sync: true });
  return pino({ level: opts.level, base: opts.base }, destination);
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOURS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
const HIDDEN_KEYS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'plugin', 'mode']);

/** `12:03:04.120 INFO  CreateVolume method=CreateVolume volume=v1 code=OK ms=12.3 req=4` */
export function formatLine(json: string, colour = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const level = typeof entry.level === 'number' ? entry.level : 30;
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
  const fields = Object.entries(entry)
    .filter(([k]) => !HIDDEN_KEYS.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/[\s"]/.test(v) ? v : JSON.stringify(v)}`);
  const head = colour ? `\x1b[${LEVEL_COLOURS[level] ?? '0'}m${name}\x1b[0m` : name;
  return `${time} ${head} ${typeof entry.msg === 'string' ? entry.msg : JSON.stringify(entry.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}\n`;
}

function readableLines(out: NodeJS.WritableStream, colour: boolean): DestinationStream {
  return { write: (line: string) => void out.write(formatLine(line.trimEnd(), colour)) };
}
