// Runs csi-sanity (kubernetes-csi/csi-test v5.4.0, built into .bin/ by scripts/install-deps.sh) against a
// started plugin, and reads its JUnit report into counts. Shared by every backend's sanity test.
//
//   const { summary, run } = await runCsiSanity({ label: 'mount', plugin, args: ['-csi.testvolumeaccesstype', 'mount'] });
//   console.log(sanityReport('mount', summary));
//   expectSanityPassed(label, result);
//
// Reports: test-results/csi-sanity-<label>.xml (JUnit), .log (csi-sanity output), plugin-sanity-<label>.log
// (the plugin's own log).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseJUnit, type JUnitCase, type JUnitSummary } from './junit.js';
import { REPO_ROOT, type PluginProcess } from './plugin.js';

export const CSI_SANITY = join(REPO_ROOT, '.bin', 'csi-sanity');
const RESULTS = join(REPO_ROOT, 'test-results');
export const SANITY_TIMEOUT_MS = 20 * 60_000;

let running: ChildProcess | undefined;

/** Kills a csi-sanity still running (for afterEach, when a test failed part-way). */
export function killSanity(): void {
  if (running && running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
  running = undefined;
}

export interface SanityRun {
  exitCode: number | null;
  /** Why the run was cut short, if it was. */
  stopped?: string;
}

export interface SanityResult {
  run: SanityRun;
  summary: JUnitSummary;
  logFile: string;
  pluginLogFile: string;
}

export interface SanityOptions {
  /** names the report files and the printed counts (e.g. 'mount', 'efs') */
  label: string;
  plugin: PluginProcess;
  /** csi-sanity arguments besides endpoint, staging/mount dirs, JUnit report, timeout and color */
  args: string[];
  timeoutMs?: number;
}

/** Runs csi-sanity with its output going to `logFile`; SIGTERM on timeout or when the plugin exits. */
function spawnSanity(args: string[], logFile: string, p: PluginProcess, timeoutMs: number): Promise<SanityRun> {
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    const child = spawn(CSI_SANITY, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    running = child;
    child.stdout.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
    let stopped: string | undefined;
    const stop = (why: string) => {
      if (stopped) return;
      stopped = why;
      child.kill('SIGTERM'); // Ginkgo still writes its JUnit report when interrupted
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    };
    const timer = setTimeout(() => stop(`timed out after ${timeoutMs / 60_000} min`), timeoutMs);
    // A dead plugin makes every remaining spec wait out a 60 s connection timeout: stop at once instead.
    const onPluginExit = (code: number | null, signal: string | null) =>
      stop(`the plugin exited (${signal ?? `code ${code}`}) during the run`);
    p.proc.once('exit', onPluginExit);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      p.proc.off('exit', onPluginExit);
      void writeFile(logFile, chunks.join('')).then(() => resolve({ exitCode, ...(stopped ? { stopped } : {}) }), reject);
    });
  });
}

export async function runCsiSanity(opts: SanityOptions): Promise<SanityResult> {
  if (!existsSync(CSI_SANITY)) throw new Error(`${CSI_SANITY} is missing: run bash scripts/install-deps.sh`);
  const timeoutMs = opts.timeoutMs ?? SANITY_TIMEOUT_MS;
  await mkdir(RESULTS, { recursive: true });
  const junitFile = join(RESULTS, `csi-sanity-${opts.label}.xml`);
  const logFile = join(RESULTS, `csi-sanity-${opts.label}.log`);
  const pluginLogFile = join(RESULTS, `plugin-sanity-${opts.label}.log`);
  await rm(junitFile, { force: true });
  const p = opts.plugin;
  const run = await spawnSanity(
    [
      '-csi.endpoint',
      p.endpoint,
      '-csi.stagingdir',
      join(p.dir, 'staging'),
      '-csi.mountdir',
      join(p.dir, 'mount'),
      ...opts.args,
      '-ginkgo.junit-report',
      junitFile,
      '-ginkgo.timeout',
      `${Math.max(1, Math.floor(timeoutMs / 60_000) - 1)}m`,
      '-ginkgo.no-color',
    ],
    logFile,
    p,
    timeoutMs,
  );
  await writeFile(pluginLogFile, p.logs());
  if (!existsSync(junitFile)) {
    const out = await readFile(logFile, 'utf8');
    throw new Error(
      `csi-sanity wrote no JUnit report (exit ${run.exitCode}${run.stopped ? `, ${run.stopped}` : ''}); last output:\n${out.slice(-4000)}`,
    );
  }
  return { run, summary: parseJUnit(await readFile(junitFile, 'utf8')), logFile, pluginLogFile };
}

const MAX_DETAIL_LINES = 25;

/** The counts line, then each failed spec with its failure and each skipped spec with its reason. */
export function sanityReport(label: string, s: JUnitSummary): string {
  const lines = [`csi-sanity ${label}: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped`];
  // Ginkgo shuffles the top-level containers: sort, so two runs read alike.
  const byName = (a: JUnitCase, b: JUnitCase) => a.name.localeCompare(b.name);
  const failed = s.cases.filter((c) => c.outcome === 'failed').sort(byName);
  if (failed.length) {
    lines.push('', `failed specs (${failed.length}):`);
    for (const c of failed) {
      lines.push(`  [${c.status}] ${c.name}`);
      const text = (c.detail || c.message).trim().split('\n');
      if (text.length > MAX_DETAIL_LINES) text.splice(MAX_DETAIL_LINES, Infinity, '... (rest in the JUnit report)');
      lines.push(...text.filter(Boolean).map((l) => `      ${l}`));
    }
  }
  const skipped = s.cases
    .filter((c) => c.outcome === 'skipped')
    .sort((a, b) => (a.message || a.status).localeCompare(b.message || b.status) || byName(a, b));
  if (skipped.length) {
    lines.push('', `skipped specs (${skipped.length}):`);
    for (const c of skipped) lines.push(`  [${c.message || c.status}] ${c.name}`);
  }
  return lines.join('\n');
}

/** Prints the report and fails unless the run finished with no failed spec and some passed. */
export function expectSanityPassed(label: string, r: SanityResult): void {
  console.log(sanityReport(label, r.summary));
  if (r.run.stopped) throw new Error(`csi-sanity ${label}: ${r.run.stopped} (see ${r.logFile}, ${r.pluginLogFile})`);
  expect(r.summary.failed, `failed csi-sanity specs (see ${r.logFile}, ${r.pluginLogFile})`).toBe(0);
  expect(r.summary.passed).toBeGreaterThan(0);
  expect(r.run.exitCode).toBe(0);
}

// Spec groups that must run and pass (not be skipped) where a backend advertises them; recognised by name.
export const DATA_SERVICE_SPECS: Record<string, RegExp> = {
  snapshots: /\b(Create|Delete)Snapshot \[|\bListSnapshots \[|from an existing source snapshot|source snapshot is not found/,
  clones: /from an existing source volume|source volume is not found/,
  expansion: /ExpandVolume/,
  'group snapshots': /GroupController/,
};

/** Prints passed/failed/skipped per spec group and fails if any spec of those groups did not run and pass. */
export function expectGroupsPassed(label: string, s: JUnitSummary, groups: Record<string, RegExp>): void {
  const lines = [`csi-sanity ${label} data services:`];
  const notPassed: string[] = [];
  for (const [group, pattern] of Object.entries(groups)) {
    const cases = s.cases.filter((c) => pattern.test(c.name));
    const count = (o: JUnitCase['outcome']) => cases.filter((c) => c.outcome === o).length;
    lines.push(`  ${group}: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`);
    if (cases.length === 0) notPassed.push(`${group}: no specs found`);
    notPassed.push(...cases.filter((c) => c.outcome !== 'passed').map((c) => `${group}: [${c.outcome}] ${c.name}`));
  }
  console.log(lines.join('\n'));
  expect(notPassed, 'data-service specs that did not run and pass').toEqual([]);
}
