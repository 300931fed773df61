// Hostile input, property-based (fast-check, seeded), on every backend: generated requests across every RPC
// (10,500 on loop; fewer where a call costs a storage API round trip, backends.ts `load`), with
// ids, names and paths full of `..`, absolute paths, NUL, newlines, 10 KiB strings, unicode, missing and
// unknown extra fields, huge capacities, wrong capability combinations, maps over 4 KiB, and target paths
// that are symlinks to a canary directory outside the roots. Invariants: every answer is OK or a specific
// code (never INTERNAL or UNKNOWN), the plugin stays up, and nothing changes outside the pool, staging and
// target roots (canary tree, the rest of the test dir, /etc, and the mount table are compared).
//
// The requests are sent once (beforeAll) and each invariant is its own test, so a failure names what broke.
//
// SANDBOX ONLY: run through scripts/sandbox.sh (scripts/test.sh does), where every directory but the test's
// own is read-only, so a plugin that follows `../..` fails there instead of damaging this machine.
// vitest.config.ts leaves this folder out unless REXCSI_SANDBOXED=1.
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csiProto } from '../../src/csi/proto.js';
import type { VolumeCapability } from '../../src/csi/gen/csi/v1/VolumeCapability.js';
import { readMountInfo } from '../../src/os/index.js';
import { csiClients, grpcCodeName } from '../helpers/client.js';
import { isUnder } from '../helpers/leaks.js';
import type { PluginProcess } from '../helpers/plugin.js';
import { forceCleanupUnder, MiB } from '../helpers/volumes.js';
import { backendsFor, type ReliabilityBackend, type RunningBackend } from '../reliability/backends.js';

const SEED = 0x5ec0de;

async function assertSandboxed(): Promise<void> {
  const root = (await readMountInfo()).filter((m) => m.mountPoint === '/').at(-1);
  if (process.env['REXCSI_SANDBOXED'] !== '1' || !root?.options.includes('ro')) {
    throw new Error(
      'test/hostile must run inside scripts/sandbox.sh with REXCSI_SANDBOXED=1 (scripts/test.sh does); refusing to send hostile paths to a plugin that could damage this machine',
    );
  }
}

const ALLOWED = new Set([
  'OK',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'RESOURCE_EXHAUSTED',
  'UNIMPLEMENTED',
]);

/** A listing of every file under dir (type, mode, size, content hash or link target), skipping `skip`. */
async function tree(dir: string, skip: string[] = [], hashContent = true): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(d)).sort();
    } catch (e) {
      out.push(`${d} unreadable ${(e as NodeJS.ErrnoException).code}`);
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (skip.some((s) => isUnder(p, s))) continue;
      const s = await lstat(p);
      if (s.isSymbolicLink()) out.push(`${p} -> ${await readlink(p)}`);
      else if (s.isDirectory()) {
        out.push(`${p}/ ${s.mode.toString(8)}`);
        await walk(p);
      } else if (s.isFile()) {
        const sum = hashContent
          ? createHash('sha256')
              .update(await readFile(p))
              .digest('hex')
          : `${s.mtimeMs}`;
        out.push(`${p} ${s.mode.toString(8)} ${s.size} ${sum}`);
      } else out.push(`${p} special ${s.mode.toString(8)}`);
    }
  };
  await walk(dir);
  return out;
}

type Rpc = { service: 'Identity' | 'Controller' | 'GroupController' | 'Node'; method: string };

describe.each(backendsFor('hostile').map((b) => [b.label, b] as const))('hostile input (%s)', (_label, backend: ReliabilityBackend) => {
  const REQUESTS = Number(process.env['REXCSI_HOSTILE_REQUESTS'] ?? backend.load.hostileRequests);
  let running: RunningBackend;
  let plugin: PluginProcess;
  let stagingRoot: string;
  let targetRoot: string;
  let outside: string;
  let channel: grpc.Client;
  const realIds: string[] = [];
  let before: { outside: string[]; etc: string[]; mounts: string[] };

  const snapshot = async () => ({
    outside: await tree(plugin.dir, [plugin.poolDir, stagingRoot, targetRoot]),
    etc: await tree('/etc', [], false),
    mounts: (await readMountInfo())
      .filter((m) => !isUnder(m.mountPoint, stagingRoot) && !isUnder(m.mountPoint, targetRoot))
      .map((m) => `${m.mountPoint} ${m.source} ${m.fsType}`)
      .sort(),
  });

  beforeAll(async () => {
    await assertSandboxed();
    running = await backend.start('hostile', { args: ['--log-level', 'warn'] });
    plugin = running.plugin;
    stagingRoot = join(plugin.dir, 'staging');
    targetRoot = join(plugin.dir, 'targets');
    outside = join(plugin.dir, 'outside');
    await mkdir(join(outside, 'sub'), { recursive: true });
    await writeFile(join(outside, 'canary.txt'), 'do not touch');
    await writeFile(join(outside, 'sub', 'deep.txt'), 'nor this');
    for (const root of [stagingRoot, targetRoot]) {
      await mkdir(join(root, 's0'), { recursive: true });
      await mkdir(join(root, 's1'));
      await symlink(outside, join(root, 'link-out'));
      await symlink(join(outside, 'canary.txt'), join(root, 'link-file'));
      await symlink('/etc', join(root, 'link-etc'));
      await symlink('../../outside', join(root, 'link-rel'));
    }
    const csi = csiClients(plugin.endpoint);
    try {
      // A mount volume, and a block one where the backend has block volumes (another mount one elsewhere).
      const made: [string, VolumeCapability][] = [
        ['h-mount', backend.capability],
        backend.blockCapability ? ['h-block', backend.blockCapability] : ['h-mount-2', backend.capability],
      ];
      for (const [name, cap] of made) {
        const { volume } = await csi.controller.CreateVolume({
          name,
          capacity_range: { required_bytes: backend.capacityBytes },
          volume_capabilities: [cap],
          parameters: running.parameters,
        });
        realIds.push(volume!.volume_id);
      }
      // One volume staged for real, so publish/unpublish/unstage reach the mount code with hostile paths.
      await csi.node.NodeStageVolume({
        volume_id: realIds[0]!,
        staging_target_path: join(stagingRoot, 's0'),
        volume_capability: backend.capability,
      });
    } finally {
      csi.close();
    }
    channel = new grpc.Client(`unix://${plugin.socketPath}`, grpc.credentials.createInsecure());
    before = await snapshot();
  }, backend.startTimeoutMs);

  afterAll(async () => {
    channel?.close();
    if (!running) return;
    await plugin.stop();
    await forceCleanupUnder(plugin.dir);
    await running.stop();
  }, 120_000);

  // ---- generators

  const nasty = fc.constantFrom(
    '',
    '.',
    '..',
    '../..',
    '../../../../../../../../etc',
    '/etc',
    '/etc/passwd',
    '/',
    '//',
    'a/../../b',
    './x',
    'a\u0000b',
    '\u0000',
    'line\nbreak',
    'cr\r',
    '\t',
    'ünïcødé-卷-🙂',
    '\u202e\u200b',
    'x'.repeat(129),
    'y'.repeat(10 * 1024),
    'vol-000000000000000000000000',
    'vol-../../etc',
    'vol-0000000000000000000000000',
    '%2e%2e%2f',
    '$(reboot)',
    '`id`',
    '-rf',
    '--help',
  );
  const str = fc.oneof(
    nasty,
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );
  const id = (): fc.Arbitrary<string> =>
    fc.oneof(
      str,
      fc.nat(1).map((i) => realIds[i] ?? ''),
    );
  const path = (): fc.Arbitrary<string> =>
    fc.oneof(
      str,
      fc
        .boolean()
        .map((staging) => (staging ? stagingRoot : targetRoot))
        .chain((root) =>
          fc.oneof(
            fc
              .constantFrom(
                's0',
                's1',
                'new',
                'link-out',
                'link-out/sub',
                'link-out/new',
                'link-file',
                'link-etc',
                'link-etc/new',
                'link-rel',
                'link-rel/sub',
                '../outside',
                's0/../../outside',
                's1/./',
                's0//x',
              )
              .map((p) => `${root}/${p}`),
            str.map((p) => `${root}/${p}`),
          ),
        ),
    );
  const bigMap = fc.constant(Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`key-${i}`, 'v'.repeat(80)])));
  const map = fc.oneof(
    fc.dictionary(str, str, { maxKeys: 4 }),
    bigMap,
    fc.constant({ fsType: 'ext4' }),
    fc.constant({ fsType: '../../etc' }),
  );
  const capacity = fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1, MiB, 2 ** 53 - 1, -(2 ** 53 - 1), 1024 ** 5 * 17, 2 ** 40));
  const mode = fc.oneof(
    fc.constantFrom('SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'MULTI_NODE_MULTI_WRITER', 'UNKNOWN', 'SINGLE_NODE_MULTI_WRITER'),
    fc.integer({ min: -5, max: 99 }),
  );
  const capability = fc.record(
    {
      mount: fc.record(
        {
          fs_type: fc.oneof(fc.constantFrom('ext4', 'xfs', 'btrfs', 'nfs', '../x'), str),
          mount_flags: fc.array(
            fc.oneof(fc.constantFrom('ro', 'bind', 'remount', 'nosuid', 'x-mount.mkdir', 'loop', 'rw,bind', 'noexec'), str),
            { maxLength: 3 },
          ),
        },
        { requiredKeys: [] },
      ),
      block: fc.constant({}),
      access_mode: fc.record({ mode }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  );
  const caps = fc.array(capability, { maxLength: 3 });
  const secrets = fc.oneof(map, fc.constant({ password: 'hunter2-secret' }));
  const topology = fc.record(
    {
      requisite: fc.array(fc.record({ segments: map }), { maxLength: 2 }),
      preferred: fc.array(fc.record({ segments: map }), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  );

  const requests: [Rpc, fc.Arbitrary<Record<string, unknown>>][] = [
    [{ service: 'Identity', method: 'GetPluginInfo' }, fc.constant({})],
    [{ service: 'Identity', method: 'Probe' }, fc.constant({})],
    [
      { service: 'Controller', method: 'CreateVolume' },
      fc.record(
        {
          name: fc.oneof(str, fc.constantFrom('h-mount', 'h-block')),
          capacity_range: fc.record({ required_bytes: capacity, limit_bytes: capacity }, { requiredKeys: [] }),
          volume_capabilities: caps,
          parameters: map,
          secrets,
          accessibility_requirements: topology,
          volume_content_source: fc.oneof(
            fc.record({ volume: fc.record({ volume_id: id() }) }),
            fc.record({ snapshot: fc.record({ snapshot_id: str }) }),
          ),
          mutable_parameters: map,
        },
        { requiredKeys: [] },
      ),
    ],
    [{ service: 'Controller', method: 'DeleteVolume' }, fc.record({ volume_id: str, secrets }, { requiredKeys: [] })],
    [
      { service: 'Controller', method: 'ControllerPublishVolume' },
      fc.record(
        { volume_id: id(), node_id: str, volume_capability: capability, readonly: fc.boolean(), secrets, volume_context: map },
        { requiredKeys: [] },
      ),
    ],
    [
      { service: 'Controller', method: 'ControllerUnpublishVolume' },
      fc.record({ volume_id: id(), node_id: str, secrets }, { requiredKeys: [] }),
    ],
    [
      { service: 'Controller', method: 'ValidateVolumeCapabilities' },
      fc.record(
        { volume_id: id(), volume_context: map, volume_capabilities: caps, parameters: map, secrets, mutable_parameters: map },
        { requiredKeys: [] },
      ),
    ],
    [{ service: 'Controller', method: 'ListVolumes' }, fc.record({ max_entries: fc.integer(), starting_token: str }, { requiredKeys: [] })],
    [
      { service: 'Controller', method: 'GetCapacity' },
      fc.record({ volume_capabilities: caps, parameters: map, accessible_topology: fc.record({ segments: map }) }, { requiredKeys: [] }),
    ],
    [{ service: 'Controller', method: 'ControllerGetCapabilities' }, fc.constant({})],
    [
      { service: 'Controller', method: 'CreateSnapshot' },
      fc.record({ source_volume_id: id(), name: str, secrets, parameters: map }, { requiredKeys: [] }),
    ],
    [{ service: 'Controller', method: 'DeleteSnapshot' }, fc.record({ snapshot_id: str, secrets }, { requiredKeys: [] })],
    [
      { service: 'Controller', method: 'ListSnapshots' },
      fc.record(
        { max_entries: fc.integer(), starting_token: str, source_volume_id: id(), snapshot_id: str, secrets },
        { requiredKeys: [] },
      ),
    ],
    [{ service: 'Controller', method: 'GetSnapshot' }, fc.record({ snapshot_id: str, secrets }, { requiredKeys: [] })],
    [
      { service: 'Controller', method: 'ControllerExpandVolume' },
      fc.record(
        {
          volume_id: id(),
          capacity_range: fc.record({ required_bytes: capacity, limit_bytes: capacity }, { requiredKeys: [] }),
          secrets,
          volume_capability: capability,
        },
        { requiredKeys: [] },
      ),
    ],
    [{ service: 'Controller', method: 'ControllerGetVolume' }, fc.record({ volume_id: id() }, { requiredKeys: [] })],
    [
      { service: 'Controller', method: 'ControllerModifyVolume' },
      fc.record({ volume_id: id(), secrets, mutable_parameters: map }, { requiredKeys: [] }),
    ],
    [{ service: 'GroupController', method: 'GroupControllerGetCapabilities' }, fc.constant({})],
    [
      { service: 'GroupController', method: 'CreateVolumeGroupSnapshot' },
      fc.record({ name: str, source_volume_ids: fc.array(id(), { maxLength: 3 }), secrets, parameters: map }, { requiredKeys: [] }),
    ],
    [
      { service: 'GroupController', method: 'DeleteVolumeGroupSnapshot' },
      fc.record({ group_snapshot_id: str, snapshot_ids: fc.array(str, { maxLength: 3 }), secrets }, { requiredKeys: [] }),
    ],
    [
      { service: 'GroupController', method: 'GetVolumeGroupSnapshot' },
      fc.record({ group_snapshot_id: str, snapshot_ids: fc.array(str, { maxLength: 3 }), secrets }, { requiredKeys: [] }),
    ],
    [
      { service: 'Node', method: 'NodeStageVolume' },
      fc.record(
        { volume_id: id(), publish_context: map, staging_target_path: path(), volume_capability: capability, secrets, volume_context: map },
        { requiredKeys: [] },
      ),
    ],
    [{ service: 'Node', method: 'NodeUnstageVolume' }, fc.record({ volume_id: id(), staging_target_path: path() }, { requiredKeys: [] })],
    [
      { service: 'Node', method: 'NodePublishVolume' },
      fc.record(
        {
          volume_id: id(),
          publish_context: map,
          staging_target_path: path(),
          target_path: path(),
          volume_capability: capability,
          readonly: fc.boolean(),
          secrets,
          volume_context: map,
        },
        { requiredKeys: [] },
      ),
    ],
    [{ service: 'Node', method: 'NodeUnpublishVolume' }, fc.record({ volume_id: id(), target_path: path() }, { requiredKeys: [] })],
    [
      { service: 'Node', method: 'NodeGetVolumeStats' },
      fc.record({ volume_id: id(), volume_path: path(), staging_target_path: path() }, { requiredKeys: [] }),
    ],
    [
      { service: 'Node', method: 'NodeExpandVolume' },
      fc.record(
        {
          volume_id: id(),
          volume_path: path(),
          capacity_range: fc.record({ required_bytes: capacity }, { requiredKeys: [] }),
          staging_target_path: path(),
          volume_capability: capability,
          secrets,
        },
        { requiredKeys: [] },
      ),
    ],
    [{ service: 'Node', method: 'NodeGetCapabilities' }, fc.constant({})],
    [{ service: 'Node', method: 'NodeGetInfo' }, fc.constant({})],
  ];

  /** Unknown fields (numbers the CSI proto does not use) appended to the encoded message. */
  const extraField = fc.oneof(
    fc.constant(Buffer.alloc(0)),
    fc.constant(Buffer.alloc(0)),
    fc.tuple(fc.integer({ min: 900, max: 5000 }), fc.uint8Array({ maxLength: 64 })).map(([field, bytes]) => {
      const varint = (n: number): number[] => (n < 0x80 ? [n] : [(n & 0x7f) | 0x80, ...varint(n >>> 7)]);
      return Buffer.from([...varint((field << 3) | 2), ...varint(bytes.length), ...bytes]);
    }),
  );

  const call = (rpc: Rpc, request: Record<string, unknown>, extra: Buffer): Promise<string> => {
    const def = csiProto().csi.v1[rpc.service].service[rpc.method as never] as grpc.MethodDefinition<unknown, unknown>;
    return new Promise((resolve, reject) => {
      channel.makeUnaryRequest(
        def.path,
        (req: unknown) => Buffer.concat([def.requestSerialize(req), extra]),
        def.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + 60_000 },
        (err) =>
          err ? (err.details === 'Request message serialization failure' ? reject(err) : resolve(grpcCodeName(err.code))) : resolve('OK'),
      );
    });
  };

  /** Every request's RPC and answer, whether the plugin was still up after it, and the machine afterwards. */
  const answers: { method: string; code: string; exited: number | null }[] = [];
  let secretsSent = 0;
  let after: typeof before;

  beforeAll(async () => {
    const anyRequest = fc.oneof(...requests.map(([rpc, arb]) => fc.tuple(fc.constant(rpc), arb, extraField)));
    for (const [rpc, request, extra] of fc.sample(anyRequest, { numRuns: REQUESTS, seed: SEED })) {
      if (JSON.stringify(request).includes('hunter2-secret')) secretsSent++;
      const code = await call(rpc, request, extra);
      answers.push({ method: rpc.method, code, exited: plugin.proc.exitCode });
      if (plugin.proc.exitCode !== null) break; // the plugin died: the tests below say so
    }
    after = await snapshot();
    const counts: Record<string, number> = {};
    for (const a of answers) counts[`${a.method} ${a.code}`] = (counts[`${a.method} ${a.code}`] ?? 0) + 1;
    console.log(`hostile (${backend.name}): ${answers.length} requests; answers: ${JSON.stringify(counts)}`);
  }, 600_000);

  it(`answers all ${REQUESTS} generated requests, across every RPC, staying up`, () => {
    expect(answers.filter((a) => a.exited !== null).slice(0, 1)).toEqual([]);
    expect(answers).toHaveLength(REQUESTS);
    expect(new Set(answers.map((a) => a.method)).size).toBe(requests.length);
  });

  it('answers each OK or a specific code, never INTERNAL or UNKNOWN', () => {
    const bad = answers.filter((a) => !ALLOWED.has(a.code)).map((a) => `${a.method} answered ${a.code}`);
    expect([...new Set(bad)]).toEqual([]);
  });

  it('changes nothing outside its roots (canary tree and the rest of the test dir)', () => {
    expect(after.outside).toEqual(before.outside);
  });

  it('leaves /etc untouched', () => {
    expect(after.etc).toEqual(before.etc);
  });

  it('leaves the mount table as it was outside its roots', () => {
    const diff = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
    expect({ gone: diff(before.mounts, after.mounts), added: diff(after.mounts, before.mounts) }).toEqual({ gone: [], added: [] });
  });

  it('never logs a secret', () => {
    expect(secretsSent).toBeGreaterThan(0);
    expect(plugin.logs()).not.toMatch(/hunter2-secret/);
  });
});
