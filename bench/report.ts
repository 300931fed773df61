// Figures collected run by run, and printed as the median of the runs with the spread (min-max), as
// aligned text or as a markdown table (for bench/README.md).

import { summarize, type Summary } from './stats.js';

export interface Row {
  section: string;
  label: string;
  unit: string;
  /** One value per run. */
  plugin: number[];
  /** The floor's value per run, for lifecycle figures. */
  floor?: number[];
  /** plugin cost / floor cost per run: above 1 means the plugin is slower. */
  ratio?: number[];
  /** The syscall floor's value per run (mounts by mount(2)), and plugin / syscall floor. */
  sysFloor?: number[];
  sysRatio?: number[];
}

export class Results {
  readonly rows: Row[] = [];

  private row(section: string, label: string, unit: string): Row {
    let r = this.rows.find((x) => x.section === section && x.label === label);
    if (!r) {
      r = { section, label, unit, plugin: [] };
      this.rows.push(r);
    }
    return r;
  }

  add(section: string, label: string, unit: string, value: number): void {
    this.row(section, label, unit).plugin.push(value);
  }

  /** A figure measured for the plugin and the floor; for a rate (higherIsBetter) the ratio is inverted. */
  addVersusFloor(section: string, label: string, unit: string, value: number, floor: number, higherIsBetter = false): void {
    const r = this.row(section, label, unit);
    r.plugin.push(value);
    (r.floor ??= []).push(floor);
    (r.ratio ??= []).push(higherIsBetter ? floor / value : value / floor);
  }

  /** Adds the syscall floor to a figure addVersusFloor recorded in this run. */
  addSyscallFloor(section: string, label: string, floor: number, higherIsBetter = false): void {
    const r = this.row(section, label, '');
    const value = r.plugin.at(-1)!;
    (r.sysFloor ??= []).push(floor);
    (r.sysRatio ??= []).push(higherIsBetter ? floor / value : value / floor);
  }

  find(section: string, label: string): Row | undefined {
    return this.rows.find((x) => x.section === section && x.label === label);
  }
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

function cell(values: number[] | undefined): string {
  if (!values || values.length === 0) return '';
  const s: Summary = summarize(values);
  return s.runs > 1 ? `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})` : fmt(s.median);
}

function sections(results: Results): string[] {
  return [...new Set(results.rows.map((r) => r.section))];
}

/** Aligned text: one block per section; rows with a floor get floor and ratio columns. */
export function renderText(results: Results): string {
  const out: string[] = [];
  for (const section of sections(results)) {
    const rows = results.rows.filter((r) => r.section === section);
    const versus = rows.some((r) => r.floor);
    const sys = rows.some((r) => r.sysFloor);
    const head = [
      '',
      'unit',
      versus ? 'plugin median (min-max)' : 'median (min-max)',
      ...(versus ? ['floor median (min-max)', 'plugin/floor'] : []),
      ...(sys ? ['syscall floor', 'plugin/syscall floor'] : []),
    ];
    const body = rows.map((r) => [
      r.label,
      r.unit,
      cell(r.plugin),
      ...(versus ? [cell(r.floor), cell(r.ratio)] : []),
      ...(sys ? [cell(r.sysFloor), cell(r.sysRatio)] : []),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
    out.push(`${section}`);
    for (const line of [head, ...body]) out.push(`  ${line.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd());
    out.push('');
  }
  return out.join('\n');
}

export function renderMarkdown(results: Results): string {
  const out: string[] = [];
  for (const section of sections(results)) {
    const rows = results.rows.filter((r) => r.section === section);
    const versus = rows.some((r) => r.floor);
    out.push(`**${section}**`, '');
    const sys = rows.some((r) => r.sysFloor);
    const head = versus ? ['figure', 'unit', 'plugin', 'floor', 'plugin/floor'] : ['figure', 'unit', 'median (min-max)'];
    if (sys) head.push('syscall floor', 'plugin/syscall floor');
    out.push(`| ${head.join(' | ')} |`, `|${'---|'.repeat(head.length)}`);
    for (const r of rows) {
      const cells = [r.label, r.unit, cell(r.plugin), ...(versus ? [cell(r.floor), cell(r.ratio)] : [])];
      if (sys) cells.push(cell(r.sysFloor), cell(r.sysRatio));
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

export interface Target {
  what: string;
  /** The figure's median, in the unit of `limit`. */
  measured: number;
  limit: number;
  unit: string;
}

export function renderTargets(targets: Target[], markdown: boolean): string {
  const lines = targets.map((t) => {
    const met = t.measured <= t.limit ? 'met' : 'NOT met';
    return markdown
      ? `| ${t.what} | ${fmt(t.measured)} ${t.unit} | < ${t.limit} ${t.unit} | ${met} |`
      : `  ${t.what.padEnd(48)} ${`${fmt(t.measured)} ${t.unit}`.padEnd(14)} target < ${`${t.limit} ${t.unit}`.padEnd(10)} ${met}`;
  });
  return markdown
    ? ['| target | median | limit | |', '|---|---|---|---|', ...lines].join('\n')
    : ['Targets (reported, never asserted)', ...lines].join('\n');
}
