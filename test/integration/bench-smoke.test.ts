// `npm run bench` works on this machine: a tiny run (2 volumes, 1 run, concurrency 1, small pools) of the
// real benchmark against the built plugin prints every figure and leaves nothing behind. Timings are not
// asserted: they belong in bench/README.md, not in a test on a shared machine.
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/plugin.js';
import { TEST_ROOT } from '../helpers/tmp.js';

const TSX = join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const RPCS = ['CreateVolume', 'NodeStageVolume', 'NodePublishVolume', 'NodeUnpublishVolume', 'NodeUnstageVolume', 'DeleteVolume'];
const NUMBER = String.raw`-?\d+(?:\.\d+)?`;

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ['bench/lifecycle.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A report row: the label, its unit, then `columns` numbers (each possibly followed by a spread). */
function rowPattern(label: string, unit: string, columns: number): RegExp {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\s+${escaped}\\s+${unit}${String.raw`\s+`.concat(NUMBER).repeat(columns)}\\s*$`, 'm');
}

describe('npm run bench', () => {
  it('prints every figure for a tiny run and removes everything it made', async () => {
    const before = new Set(await readdir(TEST_ROOT).catch(() => [] as string[]));
    const { code, stdout, stderr } = await runBench([
      '--volumes',
      '2',
      '--runs',
      '1',
      '--concurrency',
      '1',
      '--probes',
      '200',
      '--list-sizes',
      '50,200',
      '--page-size',
      '100',
    ]);
    expect(code, `bench failed:\n${stderr}`).toBe(0);

    expect(stdout).toMatch(/^machine: \d+ CPUs .* GiB, Linux .*, node v\d+/m);
    expect(stdout).toMatch(rowPattern('start-up to first Probe', 'ms', 1));
    expect(stdout).toMatch(rowPattern('RSS idle (after start-up)', 'MiB', 1));
    expect(stdout).toMatch(rowPattern('RSS peak (VmHWM, lifecycle passes)', 'MiB', 1));
    expect(stdout).toMatch(rowPattern('Probe p50', 'us', 1));
    expect(stdout).toMatch(rowPattern('Probe p99', 'us', 1));
    // Both mounters in one run; plugin, floor, plugin/floor, syscall floor, plugin/syscall floor for every figure.
    for (const mounter of ['syscall mounter', 'mount(8) mounter']) {
      const section = `Lifecycle, concurrency 1, ${mounter} (2 volumes of 64 MiB, ext4)`;
      expect(stdout).toContain(section);
      const table = stdout.slice(stdout.indexOf(section)).split('\n\n', 1)[0]!;
      expect(table).toMatch(rowPattern('volumes per second', 'vol/s', 5));
      expect(table).toMatch(rowPattern('whole life of a volume p50', 'ms', 5));
      for (const rpc of RPCS) for (const p of [50, 95, 99]) expect(table).toMatch(rowPattern(`${rpc} p${p}`, 'ms', 5));
    }
    expect(stdout).toMatch(rowPattern('bind mount(2) + umount2(2), 2000 pairs back to back, p50', 'us', 1));
    for (const [size, pages] of [
      [50, 1],
      [200, 2],
    ] as const) {
      expect(stdout).toMatch(rowPattern(`${size} volumes: page p50`, 'ms', 1));
      expect(stdout).toMatch(rowPattern(`${size} volumes: slowest page`, 'ms', 1));
      expect(stdout).toMatch(rowPattern(`${size} volumes: all ${pages} pages`, 'ms', 1));
    }
    for (const target of [
      'whole life at concurrency 1, plugin/floor',
      'NodePublishVolume p50 at concurrency 1',
      'NodeUnpublishVolume p50 at concurrency 1',
      'Probe p50',
      'start-up to first Probe',
      'RSS idle',
      'ListVolumes page p50 at 200 volumes',
    ]) {
      expect(stdout).toMatch(new RegExp(`^\\s+${target}\\s+${NUMBER} \\S+\\s+target < .*(met|NOT met)$`, 'm'));
    }

    // Its directory under TEST_ROOT is gone (test/setup.ts checks mounts, loop devices and processes).
    const left = (await readdir(TEST_ROOT)).filter((n) => n.startsWith('bench-') && !before.has(n));
    expect(left).toEqual([]);
  });
});
