// How client commands print: aligned tables and "field: value" blocks for people, JSON for scripts, and a
// progress line on a terminal (stderr) only while a call takes long.

export interface Writer {
  write(s: string): unknown;
  isTTY?: boolean;
}

export type Row = Record<string, string>;

export class Output {
  constructor(
    readonly json: boolean,
    private readonly stdout: Writer = process.stdout,
    private readonly stderr: Writer = process.stderr,
  ) {}

  /** Prints `value` as JSON with --json, otherwise calls `human`. */
  result(value: unknown, human: () => void): void {
    if (this.json) this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else human();
  }

  table(columns: [key: string, header: string][], rows: Row[]): void {
    const widths = columns.map(([key, header]) => Math.max(header.length, ...rows.map((r) => (r[key] ?? '').length)));
    const line = (cells: string[]): string =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd();
    const lines = [line(columns.map(([, h]) => h)), ...rows.map((r) => line(columns.map(([k]) => r[k] ?? '')))];
    this.stdout.write(`${lines.join('\n')}\n`);
  }

  /** `label:  value` lines, aligned; empty values are left out. */
  fields(pairs: [label: string, value: string | undefined][]): void {
    const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== '');
    const width = Math.max(0, ...shown.map(([l]) => l.length + 1));
    this.stdout.write(shown.map(([l, v]) => `${`${l}:`.padEnd(width)}  ${v}\n`).join(''));
  }

  line(text: string): void {
    this.stdout.write(`${text}\n`);
  }

  /** Awaits `work`; on a terminal (and not with --json), shows `label... Ns` on stderr after a second. */
  async progress<T>(label: string, work: Promise<T>): Promise<T> {
    if (this.json || this.stderr.isTTY !== true) return work;
    const started = Date.now();
    const frames = ['|', '/', '-', '\\'];
    let frame = 0;
    let shown = false;
    const timer = setInterval(() => {
      const seconds = Math.floor((Date.now() - started) / 1000);
      if (seconds < 1) return;
      shown = true;
      this.stderr.write(`\r${frames[frame++ % frames.length]} ${label}... ${seconds}s `);
    }, 250);
    try {
      return await work;
    } finally {
      clearInterval(timer);
      if (shown) this.stderr.write('\r\x1b[2K');
    }
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1073741824 -> "1 GiB"; 1500000 -> "1.43 MiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return String(n);
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, '');
  return `${text} ${UNITS[i]}`;
}

/** {a: '1', b: '2'} -> "a=1,b=2" */
export function formatMap(map: Record<string, string> | null | undefined): string {
  return Object.entries(map ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
