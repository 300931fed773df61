// `npm run bench:profile`: where a volume's life spends its time. Serves the plugin in this process (the
// same src/ code as dist/main.js) with a hook on src/os/exec.ts run(), drives K volumes one at a time over
// the unix socket and splits every call into time in external commands (by command) and the rest (Node,
// gRPC, file system calls). Then compares what one fork+exec costs from Node (execa, as the plugin runs
// it; bare child_process.spawn) and from bash, and what a gRPC round trip costs without any work.
//
//   npm run bench:profile -- --volumes 10 --list-pool 10000
//
// Client and server share one event loop here, so the totals are a little higher than the benchmark's;
// the split is what matters.

import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { destination, pino } from 'pino';
import { parseServeConfig } from '../src/config.js';
import { csiProto } from '../src/csi/proto.js';
import { run, setExecObserver } from '../src/os/index.js';
import { startServer } from '../src/server.js';
import { csiClients, type CsiClients } from '../test/helpers/client.js';
import { makeTempDir } from '../test/helpers/tmp.js';
import { Teardown } from './cleanup.js';
import { fmt } from './report.js';
import { nowMs, percentile } from './stats.js';
import { LIFECYCLE_RPCS, makeListPool, pluginLifecycle } from './workloads.js';

const MiB = 1024 * 1024;

interface CallProfile {
  total: number[];
  /** per command: one summed duration per call */
  commands: Map<string, number[]>;
  inCommands: number[];
}

/** The time covered by the intervals [start, end] (commands may overlap: wipefs and blkid run together). */
function covered(intervals: [number, number][]): number {
  let total = 0;
  let reach = -Infinity;
  for (const [start, end] of [...intervals].sort((a, b) => a[0] - b[0])) {
    if (end > reach) {
      total += end - Math.max(start, reach);
      reach = end;
    }
  }
  return total;
}

/** Wraps every client call so that the commands run() executes meanwhile are charged to it. */
function attributingClients(csi: CsiClients, profiles: Map<string, CallProfile>): CsiClients {
  let current: { rpc: string; commands: Map<string, number>; intervals: [number, number][] } | undefined;
  setExecObserver((cmd, ms) => {
    if (!current) return;
    current.commands.set(cmd, (current.commands.get(cmd) ?? 0) + ms);
    const end = nowMs();
    current.intervals.push([end - ms, end]);
  });
  const wrap = <T extends object>(service: T): T =>
    new Proxy(service, {
      get(target, method: string) {
        const fn = (target as Record<string, (...a: unknown[]) => Promise<unknown>>)[method];
        if (typeof fn !== 'function' || !(LIFECYCLE_RPCS as readonly string[]).includes(method)) return fn;
        return async (...args: unknown[]) => {
          current = { rpc: method, commands: new Map(), intervals: [] };
          const t0 = nowMs();
          const res = await fn(...args);
          const p = profiles.get(method)!;
          p.total.push(nowMs() - t0);
          for (const [cmd, ms] of current.commands) (p.commands.get(cmd) ?? p.commands.set(cmd, []).get(cmd)!).push(ms);
          p.inCommands.push(covered(current.intervals));
          current = undefined;
          return res;
        };
      },
    });
  return { ...csi, controller: wrap(csi.controller), node: wrap(csi.node) };
}

async function timeEach(count: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    await fn();
    out.push(nowMs() - t0);
  }
  return out;
}

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('/bin/true', [], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', () => resolve());
  });
}

/** One fork+exec of /bin/true from bash, ms: a loop of `count` timed with EPOCHREALTIME inside bash. */
async function bashForkExecMs(count: number): Promise<number> {
  const script = `t=\${EPOCHREALTIME/./}; for ((i=0;i<${count};i++)); do /bin/true; done; echo $(( \${EPOCHREALTIME/./} - t ))`;
  const { stdout } = await run('bash', ['-c', script]);
  return Number(stdout.trim()) / 1000 / count;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      volumes: { type: 'string', default: '10' },
      'size-mib': { type: 'string', default: '64' },
      'list-pool': { type: 'string', default: '10000' },
    },
  });
  const volumes = Number(values.volumes);
  const listPool = Number(values['list-pool']);
  const root = await makeTempDir('bench-profile');
  const teardown = new Teardown(root);
  process.on('SIGINT', () => void teardown.teardown().then(() => process.exit(130)));
  const socket = join(root, 'csi.sock');
  const config = parseServeConfig(
    ['--backend', 'loop', '--endpoint', socket, '--pool-dir', join(root, 'pool'), '--node-id', 'bench-node'],
    {},
  );
  // The plugin's one log line per call, written where it costs what a pipe costs, read by nobody.
  const log = pino({ level: config.logLevel }, destination({ dest: '/dev/null', sync: true }));
  const backend = await config.backend.create({
    nodeId: config.nodeId,
    maxVolumesPerNode: config.maxVolumesPerNode,
    options: config.backendOptions,
  });
  const server = await startServer(config, backend, log);
  csiProto();
  const csi = csiClients(`unix://${socket}`);
  try {
    const profiles = new Map<string, CallProfile>(LIFECYCLE_RPCS.map((r) => [r, { total: [], commands: new Map(), inCommands: [] }]));
    const base = { dir: root, concurrency: 1, sizeBytes: Number(values['size-mib']) * MiB, teardown };
    await pluginLifecycle(csi, { ...base, volumes: 2, tag: 'warm' }); // JIT and page cache
    await pluginLifecycle(attributingClients(csi, profiles), { ...base, volumes, tag: 'profile' });
    setExecObserver(undefined);

    const p50 = (xs: number[]): string => fmt(percentile(xs, 50));
    console.log(`Where a volume's life spends its time (in-process server, concurrency 1, ${volumes} volumes; p50 per call, ms)`);
    console.log(
      `  ${'call'.padEnd(20)} ${'total'.padStart(7)} ${'commands'.padStart(9)} ${'rest'.padStart(7)}  commands run (p50 ms each)`,
    );
    for (const rpc of LIFECYCLE_RPCS) {
      const p = profiles.get(rpc)!;
      const rest = p.total.map((t, i) => t - (p.inCommands[i] ?? 0));
      const cmds = [...p.commands]
        .map(([cmd, xs]) => `${cmd} ${p50(xs)}${xs.length > p.total.length ? ` (${xs.length / p.total.length}x)` : ''}`)
        .join(', ');
      console.log(
        `  ${rpc.padEnd(20)} ${p50(p.total).padStart(7)} ${p50(p.inCommands).padStart(9)} ${p50(rest).padStart(7)}  ${cmds || '-'}`,
      );
    }

    const info = await timeEach(500, () => csi.identity.GetPluginInfo({}));
    const probe = await timeEach(500, () => csi.identity.Probe({}));
    const backendProbe = await timeEach(500, () => backend.probe());
    // ListVolumes: the same page with and without gRPC, on a pool of listPool volumes (metadata only).
    await makeListPool(join(root, 'pool'), listPool, base.sizeBytes);
    await csi.controller.ListVolumes({ max_entries: 1000 });
    const listGrpc = await timeEach(5, () => csi.controller.ListVolumes({ max_entries: 1000 }));
    const listBackend = await timeEach(5, () => backend.listVolumes({ afterId: '', limit: 1000 }));
    const listIds = await timeEach(5, () => readdir(join(root, 'pool', 'volumes')));

    console.log('\nRound trips (p50, ms)');
    console.log(`  GetPluginInfo over gRPC (no work)    ${p50(info)}`);
    console.log(`  Probe over gRPC                      ${p50(probe)}`);
    console.log(`  backend.probe() alone (no gRPC)      ${p50(backendProbe)}`);
    console.log(`  ListVolumes, 1000 of ${listPool}, over gRPC  ${p50(listGrpc)}`);
    console.log(`  backend.listVolumes(1000) alone      ${p50(listBackend)}`);
    console.log(`  readdir of the pool alone            ${p50(listIds)}`);

    const viaRun = await timeEach(200, () => run('true', []));
    const viaSpawn = await timeEach(200, spawnTrue);
    console.log('\nOne fork+exec of /bin/true (p50, ms)');
    console.log(`  from Node, src/os run() (execa)      ${p50(viaRun)}`);
    console.log(`  from Node, child_process.spawn       ${p50(viaSpawn)}`);
    console.log(`  from bash (the floor)                ${fmt(await bashForkExecMs(200))}`);
  } finally {
    csi.close();
    await server.stop(5000);
    const problems = await teardown.teardown();
    for (const p of problems) console.error(`profile: left behind: ${p}`);
  }
}

await main();
