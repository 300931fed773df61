// The `rexcsi` client commands end to end: the built CLI against a running loop plugin on its unix socket,
// on real loop devices, mkfs and mounts. Checks output (table and --json), exit codes and error lines.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, unlessGone, type CliResult } from '../helpers/cli.js';
import { csiClients, type CsiClients } from '../helpers/client.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup, mountsUnder } from '../helpers/tmp.js';

let plugin: PluginProcess;
let csi: CsiClients;
const cleanup = new Cleanup();

beforeAll(async () => {
  plugin = await startPlugin({ name: 'cli' });
  csi = csiClients(plugin.endpoint);
  cleanup.defer(() => plugin.cleanup());
  cleanup.defer(() => csi.close());
});

afterAll(() => cleanup.run());

const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--endpoint', plugin.endpoint]);

function json<T>(r: CliResult): T {
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
}

describe('rexcsi client commands against a running loop plugin', () => {
  it('runs a volume through create, list, get, stage, mount, stats, unmount, unstage and delete', async () => {
    const staging = join(plugin.dir, 'staging');
    const target = join(plugin.dir, 'target');
    await mkdir(staging);

    const created = json<{ volume: { volume_id: string; capacity_bytes: number; volume_context: Record<string, string> } }>(
      await cli('volume', 'create', 'cli-vol', '--size', '64Mi', '--json'),
    );
    const id = created.volume.volume_id;
    expect(created.volume.capacity_bytes).toBe(64 * 1024 * 1024);
    // If anything below fails, leave no mount, loop device or volume behind.
    cleanup.defer(unlessGone(() => csi.controller.DeleteVolume({ volume_id: id })));
    cleanup.defer(unlessGone(() => csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging })));
    cleanup.defer(unlessGone(() => csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target })));

    // Creating again with the same settings is idempotent and prints the same volume, as a table.
    const again = await cli('volume', 'create', 'cli-vol', '--size', '64Mi');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^id:\\s+${id}$`, 'm'));
    expect(again.stdout).toMatch(/^capacity:\s+64 MiB \(67108864 bytes\)$/m);
    expect(again.stdout).toContain(`rexcsi volume stage ${id} --staging-path DIR --context fsType=ext4`);

    const table = await cli('volume', 'list');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+CAPACITY\s+PUBLISHED ON\s+CONDITION$/);
    expect(lines.find((l) => l.startsWith(id))).toMatch(new RegExp(`^${id}\\s+64 MiB\\s+ok$`));

    const got = json<{ volume: { volume_id: string } }>(await cli('volume', 'get', id, '--json'));
    expect(got.volume.volume_id).toBe(id);

    const staged = await cli('volume', 'stage', id, '--staging-path', staging, '--context', 'fsType=ext4');
    expect(staged).toMatchObject({ code: 0, stdout: `staged ${id} at ${staging}\n`, stderr: '' });
    const mounted = await cli('volume', 'mount', id, '--staging-path', staging, '--target', target);
    expect(mounted).toMatchObject({ code: 0, stdout: `mounted ${id} at ${target}\n`, stderr: '' });
    expect(await mountsUnder(target)).toEqual([target]);

    const listed = json<{ volume: { volume_id: string }; status: { published_node_ids: string[] } }[]>(
      await cli('volume', 'list', '--json', '--page-size', '1'),
    );
    expect(listed.find((e) => e.volume.volume_id === id)?.status.published_node_ids).toEqual([plugin.nodeId]);

    const stats = await cli('volume', 'stats', id, '--path', target);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(/^UNIT\s+TOTAL\s+USED\s+AVAILABLE$/m);
    expect(stats.stdout).toMatch(/^BYTES\s+\d+(\.\d+)? MiB\s+\S+ \S+\s+\d+(\.\d+)? MiB$/m);
    expect(stats.stdout).toMatch(/^INODES\s+\d+\s+\d+\s+\d+$/m);
    expect(stats.stdout).toContain('condition: ok');
    const statsJson = json<{ usage: { unit: string; total: number }[] }>(await cli('volume', 'stats', id, '--path', target, '--json'));
    expect(statsJson.usage.find((u) => u.unit === 'BYTES')!.total).toBeGreaterThan(32 * 1024 * 1024);

    // A staged and mounted volume cannot be deleted: FAILED_PRECONDITION or similar, exit 1, with a hint.
    const inUse = await cli('volume', 'unstage', id, '--staging-path', join(plugin.dir, 'elsewhere'));
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toMatch(/^rexcsi volume unstage: FAILED_PRECONDITION from NodeUnstageVolume: .*still published/m);
    expect(inUse.stderr).toMatch(/^ {2}hint: /m);

    expect(await cli('volume', 'unmount', id, '--target', target)).toMatchObject({ code: 0, stdout: `unmounted ${id} from ${target}\n` });
    expect(await mountsUnder(target)).toEqual([]);
    expect(await cli('volume', 'unstage', id, '--staging-path', staging)).toMatchObject({
      code: 0,
      stdout: `unstaged ${id} from ${staging}\n`,
    });
    expect(await mountsUnder(staging)).toEqual([]);
    expect(await cli('volume', 'delete', id)).toMatchObject({ code: 0, stdout: `deleted ${id}\n`, stderr: '' });
    // Deleting what is gone succeeds (CSI idempotency); getting it is NOT_FOUND, exit code 4.
    expect((await cli('volume', 'delete', id)).code).toBe(0);
    const gone = await cli('volume', 'get', id);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toMatch(new RegExp(`^rexcsi volume get: NOT_FOUND from ControllerGetVolume: .*${id}`, 'm'));
    expect(gone.stderr).toContain('hint: it does not exist');
  });

  it('prints the plugin identity, capabilities and readiness', async () => {
    const info = await cli('info');
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/^name:\s+loop\.rexcsi\.io$/m);
    expect(info.stdout).toMatch(/^ready:\s+yes$/m);
    expect(info.stdout).toMatch(/^controller:\s+.*CREATE_DELETE_VOLUME/m);
    expect(info.stdout).toMatch(new RegExp(`^node id:\\s+${plugin.nodeId}$`, 'm'));
    const parsed = json<{ plugin: { name: string }; ready: boolean; node: { capabilities: unknown[] } }>(await cli('info', '--json'));
    expect(parsed.plugin.name).toBe('loop.rexcsi.io');
    expect(parsed.ready).toBe(true);
    expect(parsed.node.capabilities.length).toBeGreaterThan(0);
  });

  it('shows capacity and validates capabilities (exit 5 when not confirmed)', async () => {
    const cap = json<{ available_capacity: number; minimum_volume_size: { value: number } }>(await cli('capacity', '--json'));
    expect(cap.available_capacity).toBeGreaterThan(0);
    expect(cap.minimum_volume_size.value).toBe(1024 * 1024);

    const created = json<{ volume: { volume_id: string } }>(await cli('volume', 'create', 'cli-validate', '--size', '8Mi', '--json'));
    const id = created.volume.volume_id;
    cleanup.defer(unlessGone(() => csi.controller.DeleteVolume({ volume_id: id })));
    expect(await cli('volume', 'validate', id)).toMatchObject({ code: 0, stdout: 'confirmed\n' });
    const declined = await cli('volume', 'validate', id, '--access-mode', 'rwx');
    expect(declined.code).toBe(5);
    expect(declined.stdout).toMatch(/^not confirmed/);
    expect((await cli('volume', 'delete', id)).code).toBe(0);
  });

  it('tells an existing name with other settings (ALREADY_EXISTS, exit 1) from a usage error (exit 2)', async () => {
    const first = json<{ volume: { volume_id: string } }>(await cli('volume', 'create', 'cli-clash', '--size', '8Mi', '--json'));
    cleanup.defer(unlessGone(() => csi.controller.DeleteVolume({ volume_id: first.volume.volume_id })));
    const clash = await cli('volume', 'create', 'cli-clash', '--size', '16Mi');
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/^rexcsi volume create: ALREADY_EXISTS from CreateVolume: /m);
    expect(clash.stdout).toBe('');
    expect((await cli('volume', 'delete', first.volume.volume_id)).code).toBe(0);
  });

  it('exits 2 with a pointer to --help on usage errors, without calling the plugin', async () => {
    const cases: [string[], RegExp][] = [
      [['volume', 'create'], /^rexcsi volume create: missing NAME$/m],
      [['volume', 'create', 'x', '--size', 'lots'], /--size "lots": expected a size/],
      [['volume', 'create', 'x', '--bogus'], /Unknown option '--bogus'/],
      [['volume', 'stage', 'vol-1'], /--staging-path is required/],
      [['volume', 'create', 'x', '--access-mode', 'everyone'], /--access-mode "everyone": expected one of/],
      [['volume', 'create', 'x', '--block', '--fs-type', 'xfs'], /--block volumes have no filesystem/],
      [['volume', 'frobnicate'], /unknown command "frobnicate"/],
      [['volume', 'list', '--timeout', 'soon'], /--timeout "soon": expected a number of seconds/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
    expect(plugin.jsonLogs().some((l) => l.method === 'CreateVolume' && l.volume === 'x')).toBe(false);
  });

  it('prints --help for every command with exit 0', async () => {
    for (const args of [['info'], ['volume', 'create'], ['snapshot', 'list']]) {
      const r = await runCli([...args, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: rexcsi ${args.join(' ')}`));
      expect(r.stdout).toContain('--endpoint');
      expect(r.stdout).toContain('Exit codes:');
    }
    const group = await runCli(['volume', '--help']);
    expect(group.code).toBe(0);
    expect(group.stdout).toMatch(/volume unstage\s+Undo "volume stage"/);
  });

  it('exits 3 when no plugin listens at the endpoint, naming the socket and the fix', async () => {
    const missing = join(plugin.dir, 'nobody.sock');
    const r = await runCli(['info', '--endpoint', missing]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`no plugin socket at ${missing}`);
    expect(r.stderr).toMatch(/hint: .*--endpoint \(or CSI_ENDPOINT\)/);
    // CSI_ENDPOINT is the default endpoint.
    const viaEnv = await runCli(['info', '--json'], { env: { CSI_ENDPOINT: plugin.endpoint } });
    expect(viaEnv.code).toBe(0);
  });

  it('creates, lists and deletes snapshots, restores one, and expands a volume', async () => {
    const created = json<{ volume: { volume_id: string; capacity_bytes: number } }>(
      await cli('volume', 'create', 'cli-snap-src', '--size', '16Mi', '--json'),
    );
    const id = created.volume.volume_id;
    const snap = json<{ snapshot: { snapshot_id: string; source_volume_id: string; ready_to_use: boolean } }>(
      await cli('snapshot', 'create', 'cli-snap', '--volume', id, '--json'),
    );
    expect(snap.snapshot).toMatchObject({ source_volume_id: id, ready_to_use: true });
    const listed = json<{ snapshot_id: string }[]>(await cli('snapshot', 'list', '--volume', id, '--json'));
    expect(listed.map((e) => e.snapshot_id)).toEqual([snap.snapshot.snapshot_id]);
    const restored = json<{ volume: { volume_id: string; capacity_bytes: number } }>(
      await cli('volume', 'create', 'cli-restored', '--size', '16Mi', '--from-snapshot', snap.snapshot.snapshot_id, '--json'),
    );
    const expanded = json<{ controller: { capacity_bytes: number; node_expansion_required: boolean } }>(
      await cli('volume', 'expand', id, '--size', '32Mi', '--json'),
    );
    expect(expanded.controller).toEqual({ capacity_bytes: 32 * 1024 * 1024, node_expansion_required: true });
    expect((await cli('snapshot', 'delete', snap.snapshot.snapshot_id)).code).toBe(0);
    expect(json<unknown[]>(await cli('snapshot', 'list', '--volume', id, '--json'))).toEqual([]);
    for (const v of [restored.volume.volume_id, id]) expect((await cli('volume', 'delete', v)).code).toBe(0);
  });

  it('reports an operation the plugin does not offer as UNIMPLEMENTED, naming the RPC (exit 1)', async () => {
    // The loop backend has nothing to attach, so it offers no ControllerPublishVolume: the client still
    // speaks that RPC (from the proto), and says precisely that the plugin lacks it.
    const r = await cli('volume', 'publish', 'vol-x', '--node', 'n1');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`UNIMPLEMENTED: the plugin at ${plugin.endpoint} does not implement ControllerPublishVolume`);
    expect(r.stderr).toContain('"rexcsi info" lists what it offers');
  });
});
