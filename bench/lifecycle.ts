// `npm run bench`: what the plugin costs above the storage work itself. Drives the built plugin
// (dist/main.js, loop backend) over its unix socket and prints every figure as the median of --runs runs
// with its spread. See bench/README.md for the figures, the targets and the latest results.
//
//   npm run bench                                   # 50 volumes, 5 runs, concurrency 1,4,16
//   npm run bench -- --volumes 2 --runs 1 --concurrency 1 --list-sizes 100,1000
//
// Everything it makes lives in one directory under REXCSI_TEST_ROOT (default /tmp/rexcsi-test) and is
// removed at the end, also after a failure or Ctrl-C (mounts, loop devices, processes, files).

import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { csiProto } from '../src/csi/proto.js';
import { csiClients } from '../test/helpers/client.js';
import { makeTempDir } from '../test/helpers/tmp.js';
import { Teardown } from './cleanup.js';
import { BenchPlugin } from './plugin.js';
import { bindPairs, syscallFloorLifecycle } from './syscall-floor.js';
import { renderMarkdown, renderTargets, renderText, Results, type Target } from './report.js';
import { percentile, summarize } from './stats.js';
import {
  floorLifecycle,
  LIFECYCLE_RPCS,
  listAllVolumes,
  makeListPool,
  pluginLifecycle,
  probeLatencies,
  type LifecycleResult,
} from './workloads.js';

const MiB = 1024 * 1024;
const MiB_ = 2 ** 20;
const MOUNTERS = ['syscall', 'mount'] as const;
type BenchMounter = (typeof MOUNTERS)[number];
const MOUNTER_NAME: Record<BenchMounter, string> = { syscall: 'syscall mounter', mount: 'mount(8) mounter' };
const BIND_PAIRS = 2000;
const IDLE_SETTLE_MS = 1000;

const USAGE = `npm run bench -- [options]
  --volumes N          volumes per lifecycle pass (default 50)
  --runs N             runs; each figure is their median, with min-max (default 5)
  --concurrency LIST   comma-separated concurrency levels (default 1,4,16)
  --size-mib N         volume size in MiB (default 64)
  --probes N           Probe calls per run (default 1000)
  --list-sizes LIST    pool sizes for ListVolumes (default 1000,10000)
  --page-size N        ListVolumes max_entries (default 1000)
  --markdown           print the tables as markdown (for bench/README.md)
  --json FILE          also write every run's values to FILE
`;

interface Options {
  volumes: number;
  runs: number;
  concurrency: number[];
  sizeBytes: number;
  probes: number;
  listSizes: number[];
  pageSize: number;
  markdown: boolean;
  json: string | undefined;
}

function positiveInt(name: string, text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new Error(`--${name}=${JSON.stringify(text)}: expected a positive whole number`);
  return Number(text);
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      volumes: { type: 'string', default: '50' },
      runs: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '1,4,16' },
      'size-mib': { type: 'string', default: '64' },
      probes: { type: 'string', default: '1000' },
      'list-sizes': { type: 'string', default: '1000,10000' },
      'page-size': { type: 'string', default: '1000' },
      markdown: { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const list = (name: string, text: string): number[] => text.split(',').map((t) => positiveInt(name, t.trim()));
  return {
    volumes: positiveInt('volumes', values.volumes),
    runs: positiveInt('runs', values.runs),
    concurrency: list('concurrency', values.concurrency),
    sizeBytes: positiveInt('size-mib', values['size-mib']) * MiB,
    probes: positiveInt('probes', values.probes),
    listSizes: list('list-sizes', values['list-sizes']),
    pageSize: positiveInt('page-size', values['page-size']),
    markdown: values.markdown,
    json: values.json,
  };
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} CPUs (${cpu}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, node ${process.version}`;
}

const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const lifecycleSection = (o: Options, c: number, m: BenchMounter): string =>
  `Lifecycle, concurrency ${c}, ${MOUNTER_NAME[m]} (${o.volumes} volumes of ${o.sizeBytes / MiB} MiB, ext4)`;
const MOUNT_SECTION = 'Mount calls';
const listSection = (o: Options): string => `ListVolumes (pages of ${o.pageSize}; pool metadata only, no devices)`;
const probeSection = (o: Options): string => `Probe (${o.probes} calls)`;
const START_SECTION = 'Start-up and memory';

/** One lifecycle pass through the plugin against the shell floor and the syscall floor, at one concurrency. */
function recordLifecycle(results: Results, section: string, plugin: LifecycleResult, floor: LifecycleResult, sys: LifecycleResult): void {
  const rate = (r: LifecycleResult): number => (r.volumes / r.wallMs) * 1000;
  results.addVersusFloor(section, 'volumes per second', 'vol/s', rate(plugin), rate(floor), true);
  results.addSyscallFloor(section, 'volumes per second', rate(sys), true);
  const life = 'whole life of a volume p50';
  results.addVersusFloor(section, life, 'ms', percentile(plugin.perVolume, 50), percentile(floor.perVolume, 50));
  results.addSyscallFloor(section, life, percentile(sys.perVolume, 50));
  for (const rpc of LIFECYCLE_RPCS) {
    for (const p of [50, 95, 99]) {
      results.addVersusFloor(section, `${rpc} p${p}`, 'ms', percentile(plugin.latencies[rpc], p), percentile(floor.latencies[rpc], p));
      results.addSyscallFloor(section, `${rpc} p${p}`, percentile(sys.latencies[rpc], p));
    }
  }
}

/** Per concurrency: the plugin with each mounter, the shell floor and the syscall floor, one after another. */
async function lifecyclePasses(
  o: Options,
  dir: string,
  run: number,
  plugins: Record<BenchMounter, BenchPlugin>,
  teardown: Teardown,
  results: Results,
) {
  const clients = { syscall: csiClients(plugins.syscall.endpoint), mount: csiClients(plugins.mount.endpoint) };
  try {
    for (const c of o.concurrency) {
      const base = { dir, volumes: o.volumes, concurrency: c, sizeBytes: o.sizeBytes, teardown };
      const viaPlugin: Partial<Record<BenchMounter, LifecycleResult>> = {};
      for (const m of MOUNTERS) viaPlugin[m] = await pluginLifecycle(clients[m], { ...base, tag: `r${run}c${c}${m}` });
      const viaFloor = await floorLifecycle({ ...base, tag: `r${run}c${c}` });
      const viaSyscalls = await syscallFloorLifecycle({ ...base, tag: `r${run}c${c}` });
      for (const m of MOUNTERS) recordLifecycle(results, lifecycleSection(o, c, m), viaPlugin[m]!, viaFloor, viaSyscalls);
    }
  } finally {
    clients.syscall.close();
    clients.mount.close();
  }
}

async function lifecycleRun(o: Options, run: number, root: string, teardown: Teardown, results: Results): Promise<void> {
  const dir = join(root, `run${run}`);
  const plugin = new BenchPlugin(dir, join(dir, 'pool'));
  const viaMount8 = new BenchPlugin(join(dir, 'mount8'), join(dir, 'pool-mount8'), 'mount');
  teardown.addPlugin(plugin);
  teardown.addPlugin(viaMount8);
  results.add(START_SECTION, 'start-up to first Probe', 'ms', await plugin.start());
  await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
  results.add(START_SECTION, 'RSS idle (after start-up)', 'MiB', (await plugin.memory()).rssBytes / MiB_);
  await viaMount8.start();
  const csi = csiClients(plugin.endpoint);
  try {
    await lifecyclePasses(o, dir, run, { syscall: plugin, mount: viaMount8 }, teardown, results);
    results.add(START_SECTION, 'RSS peak (VmHWM, lifecycle passes)', 'MiB', (await plugin.memory()).peakBytes / MiB_);
    const probes = await probeLatencies(csi, o.probes);
    results.add(probeSection(o), 'Probe p50', 'us', percentile(probes, 50) * 1000);
    results.add(probeSection(o), 'Probe p99', 'us', percentile(probes, 99) * 1000);
    const pairs = await bindPairs(dir, BIND_PAIRS);
    results.add(MOUNT_SECTION, `bind mount(2) + umount2(2), ${BIND_PAIRS} pairs back to back, p50`, 'us', percentile(pairs, 50));
  } finally {
    csi.close();
    await plugin.stop();
    await viaMount8.stop();
    teardown.removePlugin(plugin);
    teardown.removePlugin(viaMount8);
  }
}

async function listRun(
  o: Options,
  pools: Map<number, string>,
  root: string,
  run: number,
  teardown: Teardown,
  results: Results,
): Promise<void> {
  for (const [size, poolDir] of pools) {
    const plugin = new BenchPlugin(join(root, `list${size}-run${run}`), poolDir);
    teardown.addPlugin(plugin);
    await plugin.start();
    const csi = csiClients(plugin.endpoint);
    try {
      await listAllVolumes(csi, o.pageSize); // warm-up: the first listing also pays for JIT and the page cache
      const listed = await listAllVolumes(csi, o.pageSize);
      if (listed.entries !== size) throw new Error(`ListVolumes returned ${listed.entries} volumes of a pool of ${size}`);
      const section = listSection(o);
      results.add(section, `${size} volumes: page p50`, 'ms', percentile(listed.pages, 50));
      results.add(section, `${size} volumes: slowest page`, 'ms', Math.max(...listed.pages));
      results.add(section, `${size} volumes: all ${listed.pages.length} pages`, 'ms', listed.totalMs);
    } finally {
      csi.close();
      await plugin.stop();
      teardown.removePlugin(plugin);
    }
  }
}

/** The targets of issue 15, each from the syscall mounter's figures (the default). */
function targets(o: Options, results: Results): Target[] {
  const median = (section: string, label: string, col: 'plugin' | 'ratio' = 'plugin'): number =>
    summarize(results.find(section, label)?.[col] ?? []).median;
  const out: Target[] = [];
  for (const c of [1, 4]) {
    if (!o.concurrency.includes(c)) continue;
    const section = lifecycleSection(o, c, 'syscall');
    out.push({
      what: `whole life at concurrency ${c}, plugin/floor`,
      measured: median(section, 'whole life of a volume p50', 'ratio'),
      limit: 1.3,
      unit: 'x',
    });
    out.push({
      what: `NodePublishVolume p50 at concurrency ${c}`,
      measured: median(section, 'NodePublishVolume p50'),
      limit: c === 1 ? 1 : 2,
      unit: 'ms',
    });
    if (c === 1)
      out.push({
        what: 'NodeUnpublishVolume p50 at concurrency 1',
        measured: median(section, 'NodeUnpublishVolume p50'),
        limit: 1,
        unit: 'ms',
      });
  }
  out.push({ what: 'Probe p50', measured: median(probeSection(o), 'Probe p50'), limit: 250, unit: 'us' });
  out.push({ what: 'start-up to first Probe', measured: median(START_SECTION, 'start-up to first Probe'), limit: 150, unit: 'ms' });
  out.push({ what: 'RSS idle', measured: median(START_SECTION, 'RSS idle (after start-up)'), limit: 60, unit: 'MiB' });
  const largest = Math.max(...o.listSizes);
  out.push({
    what: `ListVolumes page p50 at ${largest} volumes`,
    measured: median(listSection(o), `${largest} volumes: page p50`),
    limit: 50,
    unit: 'ms',
  });
  return out;
}

async function benchmark(o: Options, root: string, teardown: Teardown): Promise<void> {
  const started = new Date();
  csiProto(); // load the proto before any timing
  const header = [
    `rexcsi benchmark, ${started.toISOString()}`,
    `machine: ${machine()}`,
    `${o.volumes} volumes of ${o.sizeBytes / MiB} MiB, ext4; ${o.runs} runs; concurrency ${o.concurrency.join(',')}; load average at start ${load()}`,
  ];
  process.stderr.write(`${header.join('\n')}\n`);
  const pools = new Map<number, string>();
  for (const size of o.listSizes) {
    const poolDir = join(root, `listpool-${size}`);
    await makeListPool(poolDir, size, o.sizeBytes);
    pools.set(size, poolDir);
  }
  const results = new Results();
  for (let run = 1; run <= o.runs; run++) {
    const t0 = Date.now();
    await lifecycleRun(o, run, root, teardown, results);
    await listRun(o, pools, root, run, teardown, results);
    process.stderr.write(`run ${run}/${o.runs} done in ${((Date.now() - t0) / 1000).toFixed(1)} s (load average ${load()})\n`);
  }
  header.push(`load average at end ${load()}`);
  const body = o.markdown ? renderMarkdown(results) : renderText(results);
  process.stdout.write(`${header.join('\n')}\n\n${body}\n${renderTargets(targets(o, results), o.markdown)}\n`);
  if (o.json)
    await writeFile(
      o.json,
      `${JSON.stringify({ date: started.toISOString(), machine: machine(), options: o, rows: results.rows }, null, 2)}\n`,
    );
}

async function main(): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!o) {
    process.stdout.write(USAGE);
    return 0;
  }
  const root = await makeTempDir('bench');
  const teardown = new Teardown(root);
  const interrupted = (signal: NodeJS.Signals): void => {
    process.stderr.write(`bench: ${signal}: stopping and cleaning up ${root}\n`);
    void teardown.teardown().then((problems) => {
      for (const p of problems) process.stderr.write(`bench: left behind: ${p}\n`);
      process.exit(130);
    });
  };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  let status = 0;
  try {
    await benchmark(o, root, teardown);
  } catch (e) {
    if (!teardown.stopping) process.stderr.write(`bench: failed: ${(e as Error).stack ?? String(e)}\n`);
    status = 1;
  } finally {
    const problems = await teardown.teardown();
    for (const p of problems) process.stderr.write(`bench: left behind: ${p}\n`);
    if (problems.length > 0) status = 1;
  }
  return status;
}

process.exitCode = await main();
