import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import type { VolumeCapability } from '../csi/gen/csi/v1/VolumeCapability.js';
import type { Volume__Output } from '../csi/gen/csi/v1/Volume.js';
import { CsiError, isCsiError, type ErrorCode } from '../errors.js';
import { atomicWriteFile, isExecError, killStreamingTools, readMountInfo, mountsAt } from '../os/index.js';
import { redact } from '../os/restic.js';
import { flag, str } from './args.js';
import { CallFailed, type CsiConnection } from './client.js';
import { EXIT, UsageError, describeFailure, exitCodeOf, type CommandContext, type OptionDef } from './command.js';
import { formatBytes } from './output.js';

// What backup, restore and migrate share: an operation journal in the work directory (so a killed run,
// re-run with the same arguments, finds its snapshot, clone, destination and staging directories), the
// CSI choreography around one volume (inspect, publish, stage read-only or not, and back), progress on a
// terminal, and errors printed as the other client commands print them.

export const DEFAULT_WORK_DIR = '/var/lib/rexcsi/mobility';

export const WORK_DIR_OPTION: Record<string, OptionDef> = {
  'work-dir': {
    type: 'string',
    value: 'DIR',
    description: `where operations keep their journal and staging directories (default ${DEFAULT_WORK_DIR})`,
  },
};

/** The steps at which REXCSI_MOBILITY_FAULT=<step> kills the command (SIGKILL), for the crash tests. */
export const MOBILITY_FAULT_STEPS = [
  'backup.after-journal',
  'backup.after-snapshot',
  'backup.after-clone',
  'backup.after-stage',
  'backup.during-restic',
  'backup.after-restic',
  'backup.after-unstage',
  'restore.after-create',
  'restore.after-stage',
  'restore.during-restore',
  'restore.after-restore',
  'migrate.after-snapshot',
  'migrate.after-clone',
  'migrate.after-create',
  'migrate.after-stage',
  'migrate.during-copy',
  'migrate.after-verify',
  'migrate.after-unstage',
] as const;
export type MobilityStep = (typeof MOBILITY_FAULT_STEPS)[number];

const armedFault = process.env.REXCSI_MOBILITY_FAULT ?? '';

/** Dies here (with the tools it runs, as a killed cgroup would) when REXCSI_MOBILITY_FAULT names this step. */
export function faultStep(name: MobilityStep): void {
  if (armedFault !== name) return;
  killStreamingTools();
  process.kill(process.pid, 'SIGKILL');
}

// ---- the journal

export interface AttachRecord {
  endpoint: string;
  volumeId: string;
  /** staging directory (always) and, for block volumes, the file the device is published at */
  stagingDir: string;
  devicePath?: string;
  readOnly: boolean;
  /** ControllerPublishVolume was called by this operation (to be undone), and its node */
  publishedTo?: string;
}

export interface JournalState {
  kind: 'backup' | 'restore' | 'migrate';
  opId: string;
  /** random per run, so objects of a finished run are never mistaken for this one's */
  runId: string;
  startedAt: string;
  args: Record<string, unknown>;
  snapshotId?: string;
  cloneId?: string;
  /** CreateVolume of the destination has been sent by this operation */
  destinationRequested?: boolean;
  destinationId?: string;
  attached: AttachRecord[];
  /** restic snapshot made (backup) or data copied and verified (restore, migrate) */
  result?: Record<string, unknown>;
  verified?: boolean;
  sourceDeleted?: boolean;
}

export class Operation {
  private constructor(
    readonly dir: string,
    readonly state: JournalState,
    readonly resumed: boolean,
  ) {}

  /** The operation of these arguments: the unfinished one a killed run left, or a new one. */
  static async open(workDir: string, kind: JournalState['kind'], args: Record<string, unknown>): Promise<Operation> {
    const opId = createHash('sha256').update(JSON.stringify({ kind, args })).digest('hex').slice(0, 12);
    const dir = join(workDir, `${kind}-${opId}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, 'journal.json');
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return new Operation(dir, JSON.parse(text) as JournalState, true);
    const state: JournalState = {
      kind,
      opId,
      runId: randomBytes(4).toString('hex'),
      startedAt: new Date().toISOString(),
      args,
      attached: [],
    };
    const op = new Operation(dir, state, false);
    await op.save();
    return op;
  }

  /** A name for a temporary object of this run, e.g. rexcsi-3f2a9c01d4e5-8b1c-snap. */
  objectName(suffix: string): string {
    return `rexcsi-${this.state.opId}-${this.state.runId}-${suffix}`;
  }

  async save(): Promise<void> {
    await atomicWriteFile(join(this.dir, 'journal.json'), `${JSON.stringify(this.state, null, 2)}\n`, { mode: 0o600 });
  }

  async update(change: Partial<JournalState>): Promise<void> {
    Object.assign(this.state, change);
    await this.save();
  }

  /** The operation is over: its journal and directory go (staging directories are empty by now). */
  async finish(): Promise<void> {
    const mounted = (await readMountInfo()).filter((m) => m.mountPoint.startsWith(`${this.dir}/`));
    if (mounted.length > 0)
      throw new CsiError('INTERNAL', `still mounted under ${this.dir}: ${mounted.map((m) => m.mountPoint).join(', ')}`);
    await rm(this.dir, { recursive: true, force: true });
  }
}

export function workDirOf(ctx: CommandContext): string {
  return str(ctx, 'work-dir') ?? DEFAULT_WORK_DIR;
}

export function timeoutOf(ctx: CommandContext): number {
  const t = str(ctx, 'timeout');
  return t === undefined ? 300_000 : Number(t) * 1000;
}

// ---- plugins and volumes

export interface PluginView {
  csi: CsiConnection;
  endpoint: string;
  /** the backend (GetPluginInfo manifest "backend", else the plugin's name) */
  backend: string;
  pluginName: string;
  nodeId: string;
  controller: Set<string>;
  node: Set<string>;
}

export async function inspectPlugin(csi: CsiConnection, endpoint: string): Promise<PluginView> {
  const [info, ctrl, node, nodeInfo] = await Promise.all([
    csi.identity.GetPluginInfo({}),
    csi.controller.ControllerGetCapabilities({}),
    csi.node.NodeGetCapabilities({}),
    csi.node.NodeGetInfo({}),
  ]);
  return {
    csi,
    endpoint,
    backend: info.manifest.backend ?? info.name,
    pluginName: info.name,
    nodeId: nodeInfo.node_id,
    controller: new Set(ctrl.capabilities.map((c) => c.rpc?.type ?? '').filter(Boolean)),
    node: new Set(node.capabilities.map((c) => c.rpc?.type ?? '').filter(Boolean)),
  };
}

export interface VolumeView {
  id: string;
  capacityBytes: number;
  context: Record<string, string>;
  accessType: 'mount' | 'block';
  /** the filesystem of a mount volume as its plugin reports it ('' when it does not) */
  fsType: string;
  publishedNodes: string[];
}

async function findVolume(p: PluginView, id: string): Promise<{ volume: Volume__Output; published: string[] }> {
  if (p.controller.has('GET_VOLUME')) {
    try {
      const res = await p.csi.controller.ControllerGetVolume({ volume_id: id });
      if (res.volume) return { volume: res.volume, published: res.status?.published_node_ids ?? [] };
    } catch (e) {
      if (e instanceof CallFailed && e.code === Status.NOT_FOUND)
        throw new CsiError('NOT_FOUND', `volume ${id} does not exist at ${p.endpoint}`);
      throw e;
    }
  }
  let token = '';
  do {
    const page = await p.csi.controller.ListVolumes({ max_entries: 0, starting_token: token });
    const hit = page.entries.find((e) => e.volume?.volume_id === id);
    if (hit?.volume) return { volume: hit.volume, published: hit.status?.published_node_ids ?? [] };
    token = page.next_token;
  } while (token !== '');
  throw new CsiError('NOT_FOUND', `volume ${id} does not exist at ${p.endpoint}`);
}

export function capabilityFor(accessType: 'mount' | 'block', fsType: string, readOnly: boolean): VolumeCapability {
  const access_mode = { mode: readOnly ? ('SINGLE_NODE_READER_ONLY' as const) : ('SINGLE_NODE_WRITER' as const) };
  return accessType === 'block' ? { block: {}, access_mode } : { mount: { fs_type: fsType, mount_flags: [] }, access_mode };
}

async function confirms(p: PluginView, v: Volume__Output, cap: VolumeCapability): Promise<boolean> {
  const res = await p.csi.controller.ValidateVolumeCapabilities({
    volume_id: v.volume_id,
    volume_capabilities: [cap],
    volume_context: v.volume_context,
    parameters: {},
    secrets: {},
  });
  return res.confirmed != null;
}

/** The volume, with its access type asked of the plugin (CSI volumes do not say): mount if it confirms that. */
export async function inspectVolume(p: PluginView, id: string): Promise<VolumeView> {
  const { volume, published } = await findVolume(p, id);
  const fsType = volume.volume_context.fsType ?? '';
  let accessType: 'mount' | 'block';
  if (await confirms(p, volume, capabilityFor('mount', fsType, false))) accessType = 'mount';
  else if (await confirms(p, volume, capabilityFor('block', '', false))) accessType = 'block';
  else throw new CsiError('FAILED_PRECONDITION', `the plugin at ${p.endpoint} confirms neither mount nor block access for volume ${id}`);
  return {
    id,
    capacityBytes: Number(volume.capacity_bytes),
    context: volume.volume_context,
    accessType,
    fsType,
    publishedNodes: published,
  };
}

/** Publishes (where the plugin needs it) and stages the volume on this node; idempotent, as the RPCs are. */
export async function attachVolume(op: Operation, p: PluginView, v: VolumeView, role: string, readOnly: boolean): Promise<AttachRecord> {
  const stagingDir = join(op.dir, `${role}-staging`);
  const known = op.state.attached.find((a) => a.stagingDir === stagingDir);
  const record: AttachRecord = known ?? { endpoint: p.endpoint, volumeId: v.id, stagingDir, readOnly };
  const cap = capabilityFor(v.accessType, v.fsType, readOnly);
  let publishContext: Record<string, string> = {};
  const mustPublish = p.controller.has('PUBLISH_UNPUBLISH_VOLUME');
  if (mustPublish && (record.publishedTo !== undefined || !v.publishedNodes.includes(p.nodeId))) {
    // Recorded before the call: a run killed right after it still undoes the attach.
    if (!known) op.state.attached.push(record);
    record.publishedTo = p.nodeId;
    await op.save();
    const res = await p.csi.controller.ControllerPublishVolume({
      volume_id: v.id,
      node_id: p.nodeId,
      readonly: readOnly,
      volume_capability: cap,
      volume_context: v.context,
      secrets: {},
    });
    publishContext = res.publish_context;
  } else if (!known) {
    op.state.attached.push(record);
    await op.save();
  }
  await mkdir(stagingDir, { recursive: true, mode: 0o700 });
  if (p.node.has('STAGE_UNSTAGE_VOLUME')) {
    await p.csi.node.NodeStageVolume({
      volume_id: v.id,
      staging_target_path: stagingDir,
      volume_capability: cap,
      publish_context: publishContext,
      volume_context: v.context,
      secrets: {},
    });
  }
  if (v.accessType === 'block' || !p.node.has('STAGE_UNSTAGE_VOLUME')) {
    const target = join(op.dir, v.accessType === 'block' ? `${role}-device` : `${role}-mount`);
    if (v.accessType !== 'block') await mkdir(target, { recursive: true, mode: 0o700 });
    await p.csi.node.NodePublishVolume({
      volume_id: v.id,
      target_path: target,
      staging_target_path: p.node.has('STAGE_UNSTAGE_VOLUME') ? stagingDir : '',
      readonly: readOnly,
      volume_capability: cap,
      publish_context: publishContext,
      volume_context: v.context,
      secrets: {},
    });
    record.devicePath = target;
    await op.save();
  }
  return record;
}

/** The path the data is at: the staging mount, the published mount, or the published device. */
export function dataPath(a: AttachRecord): string {
  return a.devicePath ?? a.stagingDir;
}

/** Undoes attachVolume: unpublish, unstage, ControllerUnpublish (if this operation published), directories. */
export async function detachVolume(op: Operation, p: PluginView, a: AttachRecord): Promise<void> {
  if (a.devicePath !== undefined) {
    await p.csi.node.NodeUnpublishVolume({ volume_id: a.volumeId, target_path: a.devicePath });
    await rm(a.devicePath, { force: true, recursive: false }).catch(() => rmdir(a.devicePath!).catch(() => undefined));
  }
  if (p.node.has('STAGE_UNSTAGE_VOLUME')) await p.csi.node.NodeUnstageVolume({ volume_id: a.volumeId, staging_target_path: a.stagingDir });
  if (a.publishedTo !== undefined)
    await p.csi.controller.ControllerUnpublishVolume({ volume_id: a.volumeId, node_id: a.publishedTo, secrets: {} });
  if ((await mountsAt(a.stagingDir).catch(() => [])).length === 0) await rmdir(a.stagingDir).catch(() => undefined);
  op.state.attached = op.state.attached.filter((x) => x !== a);
  await op.save();
}

/** Detaches every volume this operation attached at this endpoint (in reverse order). */
export async function detachAll(op: Operation, plugins: PluginView[]): Promise<void> {
  for (const a of [...op.state.attached].reverse()) {
    const p = plugins.find((x) => x.endpoint === a.endpoint);
    if (p) await detachVolume(op, p, a);
  }
}

/** Mounts of the same filesystem as the one at our staging dir, elsewhere on this node (other users of it). */
export async function otherMountsOf(stagingDir: string): Promise<string[]> {
  const ours = (await mountsAt(stagingDir)).at(-1);
  if (!ours) return [];
  const all = await readMountInfo();
  return all
    .filter((m) => m.source === ours.source && m.root === ours.root && m.fsType === ours.fsType && m.mountPoint !== ours.mountPoint)
    .filter((m) => !m.mountPoint.startsWith(`${stagingDir}/`))
    .map((m) => m.mountPoint);
}

/** Waits until a snapshot is ready to use (EBS snapshots take a while). */
export async function waitSnapshotReady(p: PluginView, snapshotId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await p.csi.controller.ListSnapshots({
      snapshot_id: snapshotId,
      max_entries: 0,
      starting_token: '',
      source_volume_id: '',
      secrets: {},
    });
    if (res.entries.some((e) => e.snapshot?.ready_to_use)) return;
    if (Date.now() > deadline) throw new CsiError('DEADLINE_EXCEEDED', `snapshot ${snapshotId} was not ready within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Every volume id the plugin lists now (to tell a destination we create from one that was there). */
export async function listVolumeIds(p: PluginView): Promise<Set<string>> {
  const ids = new Set<string>();
  if (!p.controller.has('LIST_VOLUMES')) return ids;
  let token = '';
  do {
    const page = await p.csi.controller.ListVolumes({ max_entries: 0, starting_token: token });
    for (const e of page.entries) if (e.volume) ids.add(e.volume.volume_id);
    token = page.next_token;
  } while (token !== '');
  return ids;
}

/** NOT_FOUND from a Delete* call is success (already gone). */
export async function deleteQuietly(call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (e) {
    if (!(e instanceof CallFailed && e.code === Status.NOT_FOUND)) throw e;
  }
}

// ---- progress and errors

/** One progress line on a terminal (stderr), rewritten in place; nothing when not a terminal or with --json. */
export class ProgressLine {
  private shown = false;
  private readonly started = Date.now();
  private last = 0;

  constructor(private readonly enabled: boolean) {}

  static for(ctx: CommandContext): ProgressLine {
    return new ProgressLine(!flag(ctx, 'json') && process.stderr.isTTY === true);
  }

  update(label: string, done: number, total: number, etaSeconds?: number): void {
    if (!this.enabled || Date.now() - this.last < 200) return;
    this.last = Date.now();
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rate = done / seconds;
    const eta = etaSeconds ?? (rate > 0 && total > done ? (total - done) / rate : undefined);
    const pct = total > 0 ? ` ${Math.min(100, Math.floor((done / total) * 100))}%` : '';
    const text = `${label}${pct} ${formatBytes(done) || '0'}${total ? ` / ${formatBytes(total)}` : ''}, ${formatBytes(rate) || '0 B'}/s${eta !== undefined ? `, ${Math.ceil(eta)}s left` : ''}`;
    process.stderr.write(`\r\x1b[2K${text}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[2K');
    this.shown = false;
  }
}

/** A notice for people (stderr), never mixed into --json output. */
export function notice(text: string): void {
  process.stderr.write(`${text}\n`);
}

const EXIT_OF: Partial<Record<ErrorCode, number>> = {
  NOT_FOUND: EXIT.NOT_FOUND,
  UNAVAILABLE: EXIT.UNREACHABLE,
  DEADLINE_EXCEEDED: EXIT.UNREACHABLE,
  INVALID_ARGUMENT: EXIT.USAGE,
};

const HINTS: Partial<Record<ErrorCode, string>> = {
  PERMISSION_DENIED: 'check --password-file or RESTIC_PASSWORD (the repository password), and the AWS credentials',
  UNAVAILABLE: 'check that the repository (or plugin) address is right and reachable from this node',
  ALREADY_EXISTS: 'choose another --name, or delete that volume first if it is not needed',
  FAILED_PRECONDITION: 'stop what uses the volume first (unpublish it), then run the command again',
  OUT_OF_RANGE: 'give a larger --size',
  INTERNAL: 'run the same command again: it resumes where it stopped, or cleans up',
};

/** Runs a mobility command body; its own failures print as `rexcsi CMD: CODE: message` and map to exit codes. */
export async function guarded(ctx: CommandContext, name: string, body: () => Promise<number | void>): Promise<number> {
  try {
    return (await body()) ?? EXIT.OK;
  } catch (e) {
    if (e instanceof UsageError) throw e; // runCommand prints it, exit code 2
    if (e instanceof CallFailed) {
      process.stderr.write(redact(describeFailure(name, e, ctx.endpoint)));
      return exitCodeOf(e.code);
    }
    const err = isCsiError(e) ? e : new CsiError('INTERNAL', isExecError(e) ? e.message : e instanceof Error ? e.message : String(e));
    const hint = HINTS[err.code];
    process.stderr.write(redact(`rexcsi ${name}: ${err.code}: ${err.message}\n${hint ? `  hint: ${hint}\n` : ''}`));
    return EXIT_OF[err.code] ?? EXIT.RPC_FAILED;
  }
}

/** Runs cleanup steps after a failure; their own errors are reported, not thrown over the first one. */
export async function bestEffort(steps: (() => Promise<unknown>)[]): Promise<void> {
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      notice(`cleanup step failed (run the command again to retry it): ${redact(e instanceof Error ? e.message : String(e))}`);
    }
  }
}
