// Runs csi-sanity (kubernetes-csi/csi-test v5.4.0, built into .bin/ by scripts/install-deps.sh) against a
// started plugin and checks the outcome: no spec failed, some passed, exit 0. Prints the counts, then each
// failed spec with its failure and each skipped spec with its reason (each skip should be for a capability
// the plugin does not advertise). Reports: test-results/csi-sanity-<label>.xml (JUnit), .log (csi-sanity
// output), plugin-sanity-<label>.log (the plugin's own log). Used by the test files in test/sanity/.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseJUnit, type JUnitCase, type JUnitSummary } from './junit.js';
import { REPO_ROOT, type PluginProcess } from './plugin.js';

const CSI_SANITY = join(REPO_ROOT, '.bin', 'csi-sanity');
const RESULTS = join(REPO_ROOT, 'test-results');
const VOLUME_SIZE = 64 * 1024 * 1024;
const EXPAND_SIZE = 128 * 1024 * 1024;
export const SANITY_TIMEOUT_MS = 20 * 60_000;

let sanity: ChildProcess | undefined;

/** Kills a csi-sanity run that is still going (for afterEach). */
export function stopSanity(): void {
  if (sanity && sanity.exitCode === null && sanity.signalCode === null) sanity.kill('SIGKILL');
  sanity = undefined;
}

interface SanityRun {
  exitCode: number | null;
  /** Why the run was cut short, if it was. */
  stopped?: string;
}

/** Runs csi-sanity with its output going to `logFile`; SIGTERM on timeout or when the plugin exits. */
function runSanity(args: string[], logFile: string, p: PluginProcess): Promise<SanityRun> {
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    const child = spawn(CSI_SANITY, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    sanity = child;
    child.stdout.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
    let stopped: string | undefined;
    const stop = (why: string) => {
      if (stopped) return;
      stopped = why;
      child.kill('SIGTERM'); // Ginkgo still writes its JUnit report when interrupted
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    };
    const timer = setTimeout(() => stop(`timed out after ${SANITY_TIMEOUT_MS / 60_000} min`), SANITY_TIMEOUT_MS);
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

const MAX_DETAIL_LINES = 25;

/** The counts line, then each failed spec with its failure and each skipped spec with its reason. */
function report(type: string, s: JUnitSummary): string {
  const lines = [`csi-sanity ${type}: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped`];
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

export interface SanityOptions {
  /** names the reports: csi-sanity-<label>.xml */
  label: string;
  accessType: 'mount' | 'block';
  plugin: PluginProcess;
  /** more csi-sanity flags, e.g. -csi.testvolumeparameters */
  extraArgs?: string[];
}

/** Runs csi-sanity against the plugin and expects 0 failed, some passed, exit 0. */
export async function expectSanityPasses(o: SanityOptions): Promise<void> {
  if (!existsSync(CSI_SANITY)) {
    throw new Error(`${CSI_SANITY} is missing: run bash scripts/install-deps.sh`);
  }
  await mkdir(RESULTS, { recursive: true });
  const junitFile = join(RESULTS, `csi-sanity-${o.label}.xml`);
  const logFile = join(RESULTS, `csi-sanity-${o.label}.log`);
  const pluginLogFile = join(RESULTS, `plugin-sanity-${o.label}.log`);
  await rm(junitFile, { force: true });

  const p = o.plugin;
  const run = await runSanity(
    [
      '-csi.endpoint', p.endpoint,
      '-csi.stagingdir', join(p.dir, 'staging'),
      '-csi.mountdir', join(p.dir, 'mount'),
      '-csi.testvolumeaccesstype', o.accessType,
      '-csi.testvolumesize', String(VOLUME_SIZE),
      '-csi.testvolumeexpandsize', String(EXPAND_SIZE),
      '-ginkgo.junit-report', junitFile,
      '-ginkgo.timeout', `${SANITY_TIMEOUT_MS / 60_000 - 1}m`,
      '-ginkgo.no-color',
      ...(o.extraArgs ?? []),
    ],
    logFile,
    p,
  );
  await writeFile(pluginLogFile, p.logs());

  if (!existsSync(junitFile)) {
    const out = await readFile(logFile, 'utf8');
    throw new Error(
      `csi-sanity wrote no JUnit report (exit ${run.exitCode}${run.stopped ? `, ${run.stopped}` : ''}); ` +
        `last output:\n${out.slice(-4000)}`,
    );
  }
  const summary = parseJUnit(await readFile(junitFile, 'utf8'));
  console.log(report(o.label, summary));
  if (run.stopped) throw new Error(`csi-sanity ${o.label}: ${run.stopped} (see ${logFile}, ${pluginLogFile})`);
  expect(summary.failed, `failed csi-sanity specs (see ${logFile}, ${pluginLogFile})`).toBe(0);
  expect(summary.passed).toBeGreaterThan(0);
  expect(run.exitCode).toBe(0);
}
