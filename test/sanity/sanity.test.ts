// csi-sanity (kubernetes-csi/csi-test v5.4.0, built into .bin/ by scripts/install-deps.sh) against the loop
// backend, once with mount volumes and once with block volumes. Passes when no spec fails and some pass.
// The skipped specs are printed with their reasons: each should be for a capability the plugin does not
// advertise. Reports: test-results/csi-sanity-<type>.xml (JUnit), .log (csi-sanity output),
// plugin-sanity-<type>.log (the plugin's own log).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJUnit, type JUnitCase, type JUnitSummary } from '../helpers/junit.js';
import { REPO_ROOT, startPlugin, type PluginProcess } from '../helpers/plugin.js';

const CSI_SANITY = join(REPO_ROOT, '.bin', 'csi-sanity');
const RESULTS = join(REPO_ROOT, 'test-results');
const VOLUME_SIZE = 64 * 1024 * 1024;
const EXPAND_SIZE = 128 * 1024 * 1024;
const SANITY_TIMEOUT_MS = 20 * 60_000;

let sanity: ChildProcess | undefined;
let plugin: PluginProcess | undefined;

afterEach(async () => {
  if (sanity && sanity.exitCode === null && sanity.signalCode === null) sanity.kill('SIGKILL');
  sanity = undefined;
  await plugin?.cleanup();
  plugin = undefined;
});

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

// The data services (issue: snapshots, clones, expansion, group snapshots): their specs must run and pass,
// not be skipped. Each group is recognised by its spec names.
const DATA_SERVICE_SPECS: Record<string, RegExp> = {
  snapshots: /\b(Create|Delete)Snapshot \[|\bListSnapshots \[|from an existing source snapshot|source snapshot is not found/,
  clones: /from an existing source volume|source volume is not found/,
  expansion: /ExpandVolume/,
  'group snapshots': /GroupController/,
};

/** Per data service: passed/failed/skipped counts, one line each. */
function dataServiceReport(type: string, s: JUnitSummary): { text: string; notPassed: string[] } {
  const lines = [`csi-sanity ${type} data services:`];
  const notPassed: string[] = [];
  for (const [service, pattern] of Object.entries(DATA_SERVICE_SPECS)) {
    const cases = s.cases.filter((c) => pattern.test(c.name));
    const count = (o: JUnitCase['outcome']) => cases.filter((c) => c.outcome === o).length;
    lines.push(`  ${service}: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`);
    if (cases.length === 0) notPassed.push(`${service}: no specs found`);
    notPassed.push(...cases.filter((c) => c.outcome !== 'passed').map((c) => `${service}: [${c.outcome}] ${c.name}`));
  }
  return { text: lines.join('\n'), notPassed };
}

describe('csi-sanity v5.4.0 (loop backend)', () => {
  for (const accessType of ['mount', 'block'] as const) {
    it(
      `passes with access type ${accessType}`,
      async () => {
        if (!existsSync(CSI_SANITY)) {
          throw new Error(`${CSI_SANITY} is missing: run bash scripts/install-deps.sh`);
        }
        await mkdir(RESULTS, { recursive: true });
        const junitFile = join(RESULTS, `csi-sanity-${accessType}.xml`);
        const logFile = join(RESULTS, `csi-sanity-${accessType}.log`);
        const pluginLogFile = join(RESULTS, `plugin-sanity-${accessType}.log`);
        await rm(junitFile, { force: true });

        plugin = await startPlugin({ name: `sanity-${accessType}` });
        const p = plugin;
        const run = await runSanity(
          [
            '-csi.endpoint', p.endpoint,
            '-csi.stagingdir', join(p.dir, 'staging'),
            '-csi.mountdir', join(p.dir, 'mount'),
            '-csi.testvolumeaccesstype', accessType,
            '-csi.testvolumesize', String(VOLUME_SIZE),
            '-csi.testvolumeexpandsize', String(EXPAND_SIZE),
            '-ginkgo.junit-report', junitFile,
            '-ginkgo.timeout', `${SANITY_TIMEOUT_MS / 60_000 - 1}m`,
            '-ginkgo.no-color',
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
        console.log(report(accessType, summary));
        const data = dataServiceReport(accessType, summary);
        console.log(data.text);
        if (run.stopped) throw new Error(`csi-sanity ${accessType}: ${run.stopped} (see ${logFile}, ${pluginLogFile})`);
        expect(summary.failed, `failed csi-sanity specs (see ${logFile}, ${pluginLogFile})`).toBe(0);
        expect(summary.passed).toBeGreaterThan(0);
        expect(data.notPassed, 'data-service specs that did not run and pass').toEqual([]);
        expect(run.exitCode).toBe(0);
      },
      SANITY_TIMEOUT_MS + 2 * 60_000,
    );
  }
});
