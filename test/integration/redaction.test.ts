// Secrets never reach a log: with --log-level debug (every request is logged), a secret is sent through every
// RPC whose request carries `secrets`, and the plugin's whole output is searched for the secret values. Also
// checks the log line every RPC gets, in JSON and in the readable text format. The loop backend answers
// ControllerPublish/Unpublish and ControllerModifyVolume UNIMPLEMENTED before any handler runs, so the same is
// done against the ebs backend (moto_server, the attach simulator of test/helpers/ebs-sim.ts), where those RPCs
// reach their handlers and the backend with the secrets.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTO_PATH } from '../../src/csi/proto.js';
import { unlessGone } from '../helpers/cli.js';
import { csiClients, isServiceError, type CsiClients } from '../helpers/client.js';
import { GiB, startEbsWorld, type EbsWorld } from '../helpers/ebs.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { Cleanup } from '../helpers/tmp.js';

let plugin: PluginProcess;
let csi: CsiClients;
const cleanup = new Cleanup();

beforeAll(async () => {
  plugin = await startPlugin({ name: 'redact', args: ['--log-level', 'debug'] });
  csi = csiClients(plugin.endpoint);
  cleanup.defer(() => plugin.cleanup());
  cleanup.defer(() => csi.close());
});

afterAll(() => cleanup.run());

const MOUNT_CAP = { mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' as const } };
const secretValues: string[] = [];

/** A fresh secret map whose value is unique and easy to search for. */
function secrets(method: string): Record<string, string> {
  const value = `s3cr3t-${method}-${randomBytes(6).toString('hex')}`;
  secretValues.push(value);
  return { password: value, token: `tok-${value}` };
}

/** The gRPC code name a call ended with ('OK' when it succeeded). */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (e) {
    if (!isServiceError(e)) throw e;
    return (
      [
        'OK',
        'CANCELLED',
        'UNKNOWN',
        'INVALID_ARGUMENT',
        'DEADLINE_EXCEEDED',
        'NOT_FOUND',
        'ALREADY_EXISTS',
        'PERMISSION_DENIED',
        'RESOURCE_EXHAUSTED',
        'FAILED_PRECONDITION',
        'ABORTED',
        'OUT_OF_RANGE',
        'UNIMPLEMENTED',
        'INTERNAL',
        'UNAVAILABLE',
        'DATA_LOSS',
        'UNAUTHENTICATED',
      ][e.code] ?? String(e.code)
    );
  }
}

describe('secret redaction in the logs', () => {
  it('every field the proto marks csi_secret is a "secrets" map, which redactSecrets covers', () => {
    const proto = readFileSync(PROTO_PATH, 'utf8');
    const secretFields = [...proto.matchAll(/^\s*(?:map<[^>]+>|\S+)\s+(\w+)\s*=\s*\d+\s*\[\s*\(csi_secret\)\s*=\s*true\s*\]/gm)].map(
      (m) => m[1],
    );
    expect(secretFields.length).toBeGreaterThanOrEqual(15);
    for (const name of secretFields) expect(name).toMatch(/secrets$/);
  });

  it('keeps every secret value out of the whole output, with every request logged at debug', async () => {
    const staging = join(plugin.dir, 'staging');
    const target = join(plugin.dir, 'target');
    await mkdir(staging);

    const created = await csi.controller.CreateVolume({
      name: 'redact-1',
      volume_capabilities: [MOUNT_CAP],
      capacity_range: { required_bytes: 8 << 20 },
      secrets: secrets('CreateVolume'),
    });
    const id = created.volume!.volume_id;
    cleanup.defer(unlessGone(() => csi.controller.DeleteVolume({ volume_id: id })));
    cleanup.defer(unlessGone(() => csi.node.NodeUnstageVolume({ volume_id: id, staging_target_path: staging })));
    cleanup.defer(unlessGone(() => csi.node.NodeUnpublishVolume({ volume_id: id, target_path: target })));

    const c = csi.controller;
    const g = csi.groupController;
    const n = csi.node;
    const calls: [string, () => Promise<unknown>][] = [
      [
        'ValidateVolumeCapabilities',
        () =>
          c.ValidateVolumeCapabilities({ volume_id: id, volume_capabilities: [MOUNT_CAP], secrets: secrets('ValidateVolumeCapabilities') }),
      ],
      [
        'ControllerPublishVolume',
        () =>
          c.ControllerPublishVolume({
            volume_id: id,
            node_id: plugin.nodeId,
            volume_capability: MOUNT_CAP,
            secrets: secrets('ControllerPublishVolume'),
          }),
      ],
      [
        'NodeStageVolume',
        () =>
          n.NodeStageVolume({
            volume_id: id,
            staging_target_path: staging,
            volume_capability: MOUNT_CAP,
            secrets: secrets('NodeStageVolume'),
          }),
      ],
      [
        'NodePublishVolume',
        () =>
          n.NodePublishVolume({
            volume_id: id,
            staging_target_path: staging,
            target_path: target,
            volume_capability: MOUNT_CAP,
            secrets: secrets('NodePublishVolume'),
          }),
      ],
      [
        'NodeExpandVolume',
        () =>
          n.NodeExpandVolume({
            volume_id: id,
            volume_path: target,
            capacity_range: { required_bytes: 16 << 20 },
            secrets: secrets('NodeExpandVolume'),
          }),
      ],
      [
        'ControllerExpandVolume',
        () =>
          c.ControllerExpandVolume({
            volume_id: id,
            capacity_range: { required_bytes: 16 << 20 },
            secrets: secrets('ControllerExpandVolume'),
          }),
      ],
      [
        'ControllerModifyVolume',
        () => c.ControllerModifyVolume({ volume_id: id, mutable_parameters: { iops: '3000' }, secrets: secrets('ControllerModifyVolume') }),
      ],
      ['CreateSnapshot', () => c.CreateSnapshot({ name: 'redact-snap', source_volume_id: id, secrets: secrets('CreateSnapshot') })],
      ['ListSnapshots', () => c.ListSnapshots({ source_volume_id: id, secrets: secrets('ListSnapshots') })],
      ['DeleteSnapshot', () => c.DeleteSnapshot({ snapshot_id: 'snap-none', secrets: secrets('DeleteSnapshot') })],
      [
        'CreateVolumeGroupSnapshot',
        () => g.CreateVolumeGroupSnapshot({ name: 'redact-group', source_volume_ids: [id], secrets: secrets('CreateVolumeGroupSnapshot') }),
      ],
      [
        'GetVolumeGroupSnapshot',
        () => g.GetVolumeGroupSnapshot({ group_snapshot_id: 'group-none', secrets: secrets('GetVolumeGroupSnapshot') }),
      ],
      [
        'DeleteVolumeGroupSnapshot',
        () =>
          g.DeleteVolumeGroupSnapshot({ group_snapshot_id: 'group-none', snapshot_ids: [], secrets: secrets('DeleteVolumeGroupSnapshot') }),
      ],
      ['NodeUnpublishVolume', () => n.NodeUnpublishVolume({ volume_id: id, target_path: target })],
      ['NodeUnstageVolume', () => n.NodeUnstageVolume({ volume_id: id, staging_target_path: staging })],
      [
        'ControllerUnpublishVolume',
        () => c.ControllerUnpublishVolume({ volume_id: id, node_id: plugin.nodeId, secrets: secrets('ControllerUnpublishVolume') }),
      ],
      ['DeleteVolume', () => c.DeleteVolume({ volume_id: id, secrets: secrets('DeleteVolume') })],
      // A request the plugin rejects is logged too (at debug, before validation): still redacted.
      ['CreateVolume', () => c.CreateVolume({ name: '', secrets: secrets('CreateVolume-invalid') })],
    ];
    const outcomes: Record<string, string> = {};
    for (const [method, call] of calls) outcomes[method] = await outcome(call());
    // The volume went through its whole life, so the secrets reached the backend calls, not just validation.
    expect(outcomes).toMatchObject({
      NodeStageVolume: 'OK',
      NodePublishVolume: 'OK',
      NodeUnpublishVolume: 'OK',
      NodeUnstageVolume: 'OK',
      DeleteVolume: 'OK',
      CreateVolume: 'INVALID_ARGUMENT',
    });
    console.log(`RPCs with secrets and their outcome on this branch: ${JSON.stringify(outcomes)}`);

    const output = plugin.logs();
    for (const value of secretValues) expect(output).not.toContain(value);
    expect(output).not.toContain('s3cr3t-');

    // Each RPC the plugin implements logged its request at debug, with the secret keys and no values.
    const requests = plugin.jsonLogs().filter((l) => l.msg === 'request');
    for (const [method] of calls) {
      if (outcomes[method] === 'UNIMPLEMENTED') continue; // grpc-js answered; no handler saw the request
      const logged = requests.filter((l) => l.method === method);
      expect(logged.length, `debug request line for ${method}`).toBeGreaterThan(0);
      for (const l of logged) {
        const s = (l.request as { secrets?: Record<string, string> }).secrets;
        if (s && Object.keys(s).length) expect(s).toEqual({ password: '***redacted***', token: '***redacted***' });
      }
    }
  });

  it('logs one line per RPC with method, volume, code, duration and request id', async () => {
    await outcome(csi.controller.ControllerGetVolume({ volume_id: 'vol-redact-missing' }));
    // The line is written as the answer is sent: give the pipe from the plugin a moment to deliver it.
    const logged = () => plugin.jsonLogs().filter((l) => l.method === 'ControllerGetVolume' && l.msg === 'ControllerGetVolume');
    for (let i = 0; i < 50 && logged().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const lines = logged();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, volume: 'vol-redact-missing', code: 'NOT_FOUND' });
    expect(typeof lines[0]!.ms).toBe('number');
    expect(typeof lines[0]!.req).toBe('number');
  });
});

describe('readable log lines', () => {
  it('prints "time LEVEL message key=value" lines with --log-format text', async () => {
    const p = await startPlugin({ name: 'textlog', args: ['--log-format', 'text'] });
    try {
      const c = csiClients(p.endpoint);
      await outcome(c.controller.ControllerGetVolume({ volume_id: 'vol-text-missing' }));
      c.close();
      const line = p
        .logs()
        .split('\n')
        .find((l) => l.includes('ControllerGetVolume'));
      expect(line).toMatch(
        /^\d\d:\d\d:\d\d\.\d{3} WARN {2}ControllerGetVolume method=ControllerGetVolume volume=vol-text-missing code=NOT_FOUND ms=[\d.]+ req=\d+ error=/,
      );
      expect(p.logs()).not.toMatch(/^\{/m);
    } finally {
      await p.cleanup();
    }
  });
});

describe('secret redaction in the logs (ebs backend, moto_server)', () => {
  let world: EbsWorld | undefined;
  let ebs: PluginProcess | undefined;
  let c: CsiClients | undefined;
  const local = new Cleanup();

  beforeAll(async () => {
    world = await startEbsWorld('redact-ebs');
    local.defer(() => world!.stop());
    ebs = await world.startPlugin({ name: 'redact-ebs', args: ['--log-level', 'debug'] });
    local.defer(() => ebs!.cleanup());
    c = csiClients(ebs.endpoint);
    local.defer(() => c!.close());
  }, 60_000);

  afterAll(() => local.run());

  it('keeps every secret value out of the whole output while publish, unpublish and modify run with secrets', async () => {
    const w = world!;
    const p = ebs!;
    const { controller: ctl, node: n } = c!;
    const staging = join(p.dir, 'staging');
    const target = join(p.dir, 'target');
    await mkdir(staging);
    const before = secretValues.length;

    const created = await ctl.CreateVolume({
      name: 'redact-ebs-1',
      volume_capabilities: [MOUNT_CAP],
      capacity_range: { required_bytes: GiB },
      secrets: secrets('ebs-CreateVolume'),
    });
    const id = created.volume!.volume_id;
    const volume_context = created.volume!.volume_context ?? {}; // fsType: the node formats only what was created for mount
    local.defer(unlessGone(() => ctl.DeleteVolume({ volume_id: id })));
    local.defer(() => ctl.ControllerUnpublishVolume({ volume_id: id, node_id: w.instanceId }));
    local.defer(unlessGone(() => n.NodeUnstageVolume({ volume_id: id, staging_target_path: staging })));
    local.defer(unlessGone(() => n.NodeUnpublishVolume({ volume_id: id, target_path: target })));

    let devicePath = '';
    let snapshotId = 'snap-00000000';
    let modified: unknown[] = [];
    const calls: [string, () => Promise<unknown>][] = [
      [
        'ValidateVolumeCapabilities',
        () =>
          ctl.ValidateVolumeCapabilities({
            volume_id: id,
            volume_capabilities: [MOUNT_CAP],
            secrets: secrets('ebs-ValidateVolumeCapabilities'),
          }),
      ],
      [
        'ControllerPublishVolume',
        async () => {
          const res = await ctl.ControllerPublishVolume({
            volume_id: id,
            node_id: w.instanceId,
            volume_capability: MOUNT_CAP,
            secrets: secrets('ebs-ControllerPublishVolume'),
          });
          devicePath = res.publish_context?.['devicePath'] ?? '';
        },
      ],
      [
        'NodeStageVolume',
        () =>
          n.NodeStageVolume({
            volume_id: id,
            staging_target_path: staging,
            volume_capability: MOUNT_CAP,
            publish_context: { devicePath },
            volume_context,
            secrets: secrets('ebs-NodeStageVolume'),
          }),
      ],
      [
        'NodePublishVolume',
        () =>
          n.NodePublishVolume({
            volume_id: id,
            staging_target_path: staging,
            target_path: target,
            volume_capability: MOUNT_CAP,
            publish_context: { devicePath },
            volume_context,
            secrets: secrets('ebs-NodePublishVolume'),
          }),
      ],
      [
        'ControllerModifyVolume',
        async () => {
          await ctl.ControllerModifyVolume({
            volume_id: id,
            mutable_parameters: { type: 'io2', iops: '200' },
            secrets: secrets('ebs-ControllerModifyVolume'),
          });
          const v = await w.describe(id);
          modified = [v?.VolumeType, v?.Iops];
        },
      ],
      [
        'ControllerExpandVolume',
        () =>
          ctl.ControllerExpandVolume({
            volume_id: id,
            capacity_range: { required_bytes: 2 * GiB },
            secrets: secrets('ebs-ControllerExpandVolume'),
          }),
      ],
      [
        'CreateSnapshot',
        async () => {
          const res = await ctl.CreateSnapshot({ name: 'redact-ebs-snap', source_volume_id: id, secrets: secrets('ebs-CreateSnapshot') });
          snapshotId = res.snapshot!.snapshot_id;
        },
      ],
      ['ListSnapshots', () => ctl.ListSnapshots({ source_volume_id: id, secrets: secrets('ebs-ListSnapshots') })],
      ['DeleteSnapshot', () => ctl.DeleteSnapshot({ snapshot_id: snapshotId, secrets: secrets('ebs-DeleteSnapshot') })],
      ['NodeUnpublishVolume', () => n.NodeUnpublishVolume({ volume_id: id, target_path: target })],
      ['NodeUnstageVolume', () => n.NodeUnstageVolume({ volume_id: id, staging_target_path: staging })],
      [
        'ControllerUnpublishVolume',
        () => ctl.ControllerUnpublishVolume({ volume_id: id, node_id: w.instanceId, secrets: secrets('ebs-ControllerUnpublishVolume') }),
      ],
      ['DeleteVolume', () => ctl.DeleteVolume({ volume_id: id, secrets: secrets('ebs-DeleteVolume') })],
    ];
    const outcomes: Record<string, string> = {};
    for (const [method, call] of calls) outcomes[method] = await outcome(call());
    // Every one of them ran its handler and the backend to the end, secrets in hand.
    expect(outcomes).toEqual(Object.fromEntries(calls.map(([m]) => [m, 'OK'])));
    expect(devicePath).not.toBe('');
    expect(snapshotId).toMatch(/^snap-/);
    expect(modified).toEqual(['io2', 200]); // the modification reached EC2

    const output = p.logs();
    const mine = secretValues.slice(before);
    expect(mine.length).toBeGreaterThanOrEqual(12);
    for (const value of mine) expect(output).not.toContain(value);
    expect(output).not.toContain('s3cr3t-');

    // The handlers saw the secrets: each request was logged at debug with the keys and redacted values.
    const requests = p.jsonLogs().filter((l) => l.msg === 'request');
    for (const method of ['ControllerPublishVolume', 'ControllerUnpublishVolume', 'ControllerModifyVolume']) {
      const logged = requests.filter((l) => l.method === method);
      expect(logged.length, `debug request line for ${method}`).toBeGreaterThan(0);
      for (const l of logged)
        expect((l.request as { secrets?: Record<string, string> }).secrets).toEqual({
          password: '***redacted***',
          token: '***redacted***',
        });
    }
  });
});
