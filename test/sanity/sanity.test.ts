// csi-sanity (kubernetes-csi/csi-test v5.4.0, built into .bin/ by scripts/install-deps.sh) against each backend
// in TARGETS (loop; ebs on moto_server with the attach simulator), once with mount volumes and once with block. Passes when no spec fails and some pass.
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
import { startEbsWorld, GiB, type EbsWorld } from '../helpers/ebs.js';

const CSI_SANITY = join(REPO_ROOT, '.bin', 'csi-sanity');
const RESULTS = join(REPO_ROOT, 'test-results');
const VOLUME_SIZE = 64 * 1024 * 1024;
const EXPAND_SIZE = 128 * 1024 * 1024;
const SANITY_TIMEOUT_MS = 20 * 60_000;

let sanity: ChildProcess | undefined;
let plugin: PluginProcess | undefined;
let world: EbsWorld | undefined;

afterEach(async () => {
  if (sanity && sanity.exitCode === null && sanity.signalCode === null) sanity.kill('SIGKILL');
  sanity = undefined;
  await plugin?.cleanup();
  plugin = undefined;
  await world?.stop();
  world = undefined;
});

/** A backend under test: how to start its plugin, and the sizes and parameters csi-sanity should use. */
interface SanityTarget {
  backend: string;
  volumeSize: number;
  expandSize: number;
  /** csi-sanity's -csi.testvolumemutableparameters (a YAML map), if the backend can modify volumes */
  mutableParameters?: Record<string, string>;
  start(name: string): Promise<PluginProcess>;
}

const TARGETS: SanityTarget[] = [
  { backend: 'loop', volumeSize: VOLUME_SIZE, expandSize: EXPAND_SIZE, start: (name) => startPlugin({ name }) },
  {
    // moto_server for the EC2 API, and the attach simulator (test/helpers/ebs-sim.ts, the simulated part:
    // loop devices with NVMe by-id links and serials stand in for the hypervisor's attach). EBS sizes are whole
    // GiB; the simulator's backing files are sparse.
    backend: 'ebs',
    volumeSize: GiB,
    expandSize: 2 * GiB,
    mutableParameters: { throughput: '200' },
    async start(name) {
      world = await startEbsWorld(name);
      return world.startPlugin({ name });
    },
  },
];

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

for (const target of TARGETS) describe(`csi-sanity v5.4.0 (${target.backend} backend)`, () => {
  for (const accessType of ['mount', 'block'] as const) {
    it(
      `passes with access type ${accessType}`,
      async () => {
        if (!existsSync(CSI_SANITY)) {
          throw new Error(`${CSI_SANITY} is missing: run bash scripts/install-deps.sh`);
        }
        await mkdir(RESULTS, { recursive: true });
        const tag = target.backend === 'loop' ? accessType : `${target.backend}-${accessType}`;
        const junitFile = join(RESULTS, `csi-sanity-${tag}.xml`);
        const logFile = join(RESULTS, `csi-sanity-${tag}.log`);
        const pluginLogFile = join(RESULTS, `plugin-sanity-${tag}.log`);
        await rm(junitFile, { force: true });

        plugin = await target.start(`sanity-${tag}`);
        const p = plugin;
        const mutableFile = join(p.dir, 'mutable-parameters.yaml');
        if (target.mutableParameters) {
          await writeFile(mutableFile, Object.entries(target.mutableParameters).map(([k, v]) => `${k}: "${v}"\n`).join(''));
        }
        const run = await runSanity(
          [
            '-csi.endpoint', p.endpoint,
            '-csi.stagingdir', join(p.dir, 'staging'),
            '-csi.mountdir', join(p.dir, 'mount'),
            '-csi.testvolumeaccesstype', accessType,
            '-csi.testvolumesize', String(target.volumeSize),
            '-csi.testvolumeexpandsize', String(target.expandSize),
            ...(target.mutableParameters ? ['-csi.testvolumemutableparameters', mutableFile] : []),
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
        console.log(report(`${target.backend} ${accessType}`, summary));
        if (run.stopped) throw new Error(`csi-sanity ${accessType}: ${run.stopped} (see ${logFile}, ${pluginLogFile})`);
        expect(summary.failed, `failed csi-sanity specs (see ${logFile}, ${pluginLogFile})`).toBe(0);
        expect(summary.passed).toBeGreaterThan(0);
        expect(run.exitCode).toBe(0);
      },
      SANITY_TIMEOUT_MS + 2 * 60_000,
    );
  }
});
