// `npm run bench:mobility`: throughput of `rexcsi volume migrate` and `volume backup` against the floor of the
// same tools run directly on the staged paths (rsync -aHAX, dd conv=sparse, restic backup), on two loop
// plugins of this machine. Prints a Markdown table (docs/backup-and-migration.md keeps the figures).
//   npm run bench:mobility -- [--mib 128] [--runs 3]   (medians of the runs; MiB/s = data MiB / seconds)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { csiClients } from '../test/helpers/client.js';
import { runCli, type CliResult } from '../test/helpers/cli.js';
import { startPlugin, stopAllPlugins } from '../test/helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../test/helpers/tmp.js';
import { createVolume, lastJson, withVolume, type Side } from '../test/mobility/world.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({ options: { mib: { type: 'string', default: '128' }, runs: { type: 'string', default: '3' } } });
const dataMiB = Number(values.mib);
const runs = Number(values.runs);
if (!Number.isInteger(dataMiB) || dataMiB < 4 || dataMiB % 4 !== 0) throw new Error('--mib: a multiple of 4, at least 4');
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: a whole number, at least 1');
const env = { RESTIC_PASSWORD: 'bench-password' };

function pseudoRandom(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 64) createHash('sha512').update(`${seed}:${i}`).digest().copy(out, i);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  const at = (i: number): number => s[i] ?? NaN;
  return s.length % 2 === 1 ? at(m) : (at(m - 1) + at(m)) / 2;
}

const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;

async function timed(fn: () => unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

async function cli(args: string[]): Promise<CliResult> {
  const r = await runCli(args, { env, timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(`rexcsi ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r;
}

/** Runs `rexcsi volume migrate ... --json`; returns its seconds and the destination volume it made. */
async function migrate(args: string[]): Promise<[number, string]> {
  let id = '';
  const seconds = await timed(async () => {
    id = lastJson<{ destinationId: string }>(await cli(['volume', 'migrate', ...args, '--json'])).destinationId;
  });
  return [seconds, id];
}

async function main(): Promise<void> {
  const dir = await makeTempDir('bench-mobility');
  const a = await startPlugin({ name: 'bench-mob-a' });
  const b = await startPlugin({ name: 'bench-mob-b' });
  const src: Side = { csi: csiClients(a.endpoint), endpoint: a.endpoint };
  const dst: Side = { csi: csiClients(b.endpoint), endpoint: b.endpoint };
  const size = Math.max(256, dataMiB * 2) * MiB;
  const rows = new Map<string, { floor: number[]; ours: number[] }>();
  const record = (label: string, floor: number, ours: number): void => {
    const r = rows.get(label) ?? { floor: [], ours: [] };
    r.floor.push(floor);
    r.ours.push(ours);
    rows.set(label, r);
  };
  try {
    // a mount volume: dataMiB in 4 MiB files; a block volume: dataMiB of data, the rest zeros
    const fsVol = await createVolume(src, 'bench-fs', size);
    await withVolume(src, fsVol, dir, false, async (p) => {
      for (let i = 0; i < dataMiB / 4; i++) await writeFile(join(p, `f${i}`), pseudoRandom(4 * MiB, `f${i}`));
    });
    const blkVol = await createVolume(src, 'bench-blk', size, true);
    await withVolume(src, blkVol, dir, true, async (dev) => {
      const fh = await open(dev, 'r+');
      for (let i = 0; i < dataMiB / 4; i++) await fh.write(pseudoRandom(4 * MiB, `b${i}`), 0, 4 * MiB, i * 8 * MiB);
      await fh.close();
    });
    const work = join(dir, 'work');
    const del = (side: Side, id: string) => side.csi.controller.DeleteVolume({ volume_id: id });

    // Each run copies into fresh volumes and repositories: a second rsync or restic into the same target
    // would copy nothing and measure nothing.
    for (let run = 0; run < runs; run++) {
      const floorDst = await createVolume(dst, `bench-floor-${run}`, size);
      const floorRsync = await withVolume(src, fsVol, dir, false, (s) =>
        withVolume(dst, floorDst, dir, false, (d) =>
          timed(() => execFileSync('rsync', ['-aHAX', '--numeric-ids', '--sparse', `${s}/`, `${d}/`])),
        ),
      );
      await del(dst, floorDst);
      const fsName = `bench-fs-m-${run}`;
      const [migrateFs, migrateFsId] = await migrate([
        fsVol,
        '--from',
        a.endpoint,
        '--to',
        b.endpoint,
        '--name',
        fsName,
        '--work-dir',
        work,
      ]);
      await del(dst, migrateFsId);
      record('migrate, mount volume (rsync)', floorRsync, migrateFs);

      const floorBlk = await createVolume(dst, `bench-floor-blk-${run}`, size, true);
      const floorDd = await withVolume(src, blkVol, dir, true, (s) =>
        withVolume(dst, floorBlk, dir, true, (d) =>
          timed(() => execFileSync('dd', [`if=${s}`, `of=${d}`, 'bs=4M', 'conv=sparse,notrunc,fsync', 'status=none'])),
        ),
      );
      await del(dst, floorBlk);
      const blkName = `bench-blk-m-${run}`;
      const [migrateBlk, migrateBlkId] = await migrate([
        blkVol,
        '--from',
        a.endpoint,
        '--to',
        b.endpoint,
        '--name',
        blkName,
        '--work-dir',
        work,
      ]);
      await del(dst, migrateBlkId);
      record('migrate, block volume (sparse copy)', floorDd, migrateBlk);

      const floorRepo = join(dir, `repo-floor-${run}`);
      execFileSync('restic', ['init', '-q', '-r', floorRepo], { env: { ...process.env, ...env } });
      const floorRestic = await withVolume(src, fsVol, dir, false, (s) =>
        timed(() => execFileSync('restic', ['backup', '-q', '-r', floorRepo, '.'], { cwd: s, env: { ...process.env, ...env } })),
      );
      const backupFs = await timed(() =>
        cli(['volume', 'backup', fsVol, '--endpoint', a.endpoint, '--repo', join(dir, `repo-${run}`), '--work-dir', work]),
      );
      record('backup, mount volume (restic, new repository)', floorRestic, backupFs);
    }

    console.log(`data: ${dataMiB} MiB on ${size / MiB} MiB loop volumes; ${runs} runs, medians shown (min-max in brackets)`);
    console.log('floor = the tool alone on already-staged paths; rexcsi = the whole command (snapshot, stage, copy, verify, clean up)');
    console.log(
      `measured on ${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}: `,
    );
    console.log('a loaded, shared machine gives noisy figures; compare the columns with each other, not with a target\n');
    console.log('| operation | floor (tool alone) | floor MiB/s | rexcsi command | rexcsi MiB/s | overhead |');
    console.log('|---|---|---|---|---|---|');
    for (const [label, { floor, ours }] of rows) {
      const f = median(floor);
      const o = median(ours);
      console.log(
        `| ${label} | ${f.toFixed(2)} s [${spread(floor)}] | ${(dataMiB / f).toFixed(0)} | ${o.toFixed(2)} s [${spread(ours)}] | ${(dataMiB / o).toFixed(0)} | +${(o - f).toFixed(2)} s |`,
      );
    }
  } finally {
    src.csi.close();
    dst.csi.close();
    await stopAllPlugins();
    await rm(join(dir, 'work'), { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await removeTempDir(dir);
  }
}

await main();
