import { chmod, chown, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { CsiError } from '../errors.js';
import { sha256Of, writeStream } from '../os/blockcopy.js';
import {
  backup,
  dumpFile,
  listSnapshots,
  openRepository,
  removeStaleLocks,
  restoreTree,
  type ResticRepo,
  type ResticSnapshot,
} from '../os/restic.js';
import { digHoles } from '../os/sparse.js';
import { flag, keyValues, parseSize, required, str } from './args.js';
import { grpcTarget } from './client.js';
import { UsageError, type Command, type CommandContext, type OptionDef } from './command.js';
import {
  WORK_DIR_OPTION,
  Operation,
  ProgressLine,
  attachVolume,
  bestEffort,
  dataPath,
  detachAll,
  faultStep,
  guarded,
  inspectPlugin,
  inspectVolume,
  notice,
  timeoutOf,
  workDirOf,
} from './mobility.js';
import { formatBytes } from './output.js';
import { createDestination, pointInTimeSource, removeDestination, removeTemporaries } from './transfer.js';

// `rexcsi volume backup|backups|restore`: a volume to a restic repository and back, onto any plugin. Each
// backup carries, as restic tags, everything a restore needs (size, access type, filesystem, root owner).

const IMAGE_NAME = 'volume.img';
const TAG = 'rexcsi.';
/** lost+found belongs to the filesystem, not the data: mkfs makes its own on the other side */
const FILESYSTEM_OWN = ['lost+found'];

const REPO_OPTIONS: Record<string, OptionDef> = {
  repo: { type: 'string', value: 'REPO', description: 'restic repository: a local path, or s3:http://host:port/bucket/prefix (required)' },
  'password-file': {
    type: 'string',
    value: 'FILE',
    description: "file holding the repository's password (default: the RESTIC_PASSWORD environment variable)",
  },
};

export function repoOf(ctx: CommandContext): ResticRepo {
  const passwordFile = str(ctx, 'password-file');
  if (passwordFile === undefined && !process.env.RESTIC_PASSWORD)
    throw new UsageError('no repository password: pass --password-file FILE or set RESTIC_PASSWORD (never a flag value)');
  return { url: required(ctx, 'repo'), ...(passwordFile !== undefined ? { passwordFile } : {}) };
}

export interface BackupInfo {
  id: string;
  shortId: string;
  time: string;
  volumeId: string;
  volumeName: string;
  backend: string;
  sizeBytes: number;
  accessType: 'mount' | 'block';
  fsType: string;
  pointInTime: boolean;
  /** mode:uid:gid of the volume's root directory (mount volumes) */
  root?: string;
}

function tagsOf(values: Record<string, string>): string[] {
  return Object.entries(values).map(([k, v]) => `${TAG}${k}=${encodeURIComponent(v)}`);
}

function parseTags(tags: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags) {
    const eq = t.indexOf('=');
    if (t.startsWith(TAG) && eq > 0) out[t.slice(TAG.length, eq)] = decodeURIComponent(t.slice(eq + 1));
  }
  return out;
}

function backupInfo(s: ResticSnapshot): BackupInfo | undefined {
  const t = parseTags(s.tags);
  if (t['volume-id'] === undefined || t.size === undefined) return undefined;
  return {
    id: s.id,
    shortId: s.shortId,
    time: s.time,
    volumeId: t['volume-id'],
    volumeName: t['volume-name'] ?? t['volume-id'],
    backend: t.backend ?? '',
    sizeBytes: Number(t.size),
    accessType: t['access-type'] === 'block' ? 'block' : 'mount',
    fsType: t['fs-type'] ?? '',
    pointInTime: t['point-in-time'] === 'yes',
    ...(t.root !== undefined ? { root: t.root } : {}),
  };
}

async function rootOwnership(dir: string): Promise<string> {
  const st = await stat(dir);
  return `${(st.mode & 0o7777).toString(8)}:${st.uid}:${st.gid}`;
}

async function runBackup(ctx: CommandContext): Promise<number | void> {
  const volumeId = ctx.args[0]!;
  const repo = repoOf(ctx);
  const keep = flag(ctx, 'keep-snapshot');
  const p = await inspectPlugin(ctx.csi, ctx.endpoint);
  const v = await inspectVolume(p, volumeId);
  await openRepository(repo, true);
  const op = await Operation.open(workDirOf(ctx), 'backup', { endpoint: grpcTarget(ctx.endpoint), volumeId, repo: repo.url, keep });
  faultStep('backup.after-journal');
  const progress = ProgressLine.for(ctx);
  try {
    if (op.resumed) await removeStaleLocks(repo);
    // A run killed after restic finished has its snapshot already: find it by the run's tag.
    const done = op.state.result ?? (await findRun(repo, op.state.runId));
    const result = done ?? (await backUp(ctx, op, p, v, repo, progress));
    progress.clear();
    await detachAll(op, [p]);
    faultStep('backup.after-unstage');
    await removeTemporaries(op, p, keep);
    await op.finish();
    if (result.pointInTime !== true)
      notice(`note: ${p.backend} has no snapshots: this backup copied the live volume, it is not point-in-time`);
    ctx.out.result(result, () =>
      ctx.out.fields([
        ['backup', String(result.backupId)],
        ['volume', volumeId],
        ['backend', p.backend],
        ['size', formatBytes(v.capacityBytes)],
        ['access type', v.accessType],
        ['point-in-time', result.pointInTime === true ? 'yes' : 'no'],
        ['processed', formatBytes(Number(result.bytesProcessed))],
        ['added to repository', formatBytes(Number(result.bytesAdded)) || '0 B'],
        ['kept snapshot', keep ? op.state.snapshotId : undefined],
        ['took', `${Number(result.seconds).toFixed(1)} s`],
      ]),
    );
  } catch (e) {
    progress.clear();
    await bestEffort([() => detachAll(op, [p]), () => removeTemporaries(op, p, keep), () => op.finish()]);
    throw e;
  }
}

async function findRun(repo: ResticRepo, runId: string): Promise<Record<string, unknown> | undefined> {
  const [s] = await listSnapshots(repo, [`${TAG}run=${runId}`]);
  const info = s ? backupInfo(s) : undefined;
  return info
    ? { backupId: info.shortId, pointInTime: info.pointInTime, bytesProcessed: info.sizeBytes, bytesAdded: 0, seconds: 0 }
    : undefined;
}

async function backUp(
  ctx: CommandContext,
  op: Operation,
  p: Awaited<ReturnType<typeof inspectPlugin>>,
  v: Awaited<ReturnType<typeof inspectVolume>>,
  repo: ResticRepo,
  progress: ProgressLine,
): Promise<Record<string, unknown>> {
  const source = await pointInTimeSource(op, p, v, 'backup', timeoutOf(ctx));
  const attached = await attachVolume(op, p, source.volume, 'source', true);
  faultStep('backup.after-stage');
  const path = dataPath(attached);
  const tags = tagsOf({
    'volume-id': v.id,
    'volume-name': str(ctx, 'volume-name') ?? v.id,
    backend: p.backend,
    size: String(v.capacityBytes),
    'access-type': v.accessType,
    'fs-type': v.fsType,
    'point-in-time': source.pointInTime ? 'yes' : 'no',
    run: op.state.runId,
    ...(v.accessType === 'mount' ? { root: await rootOwnership(path) } : {}),
  });
  let first = true;
  const summary = await backup(
    repo,
    v.accessType === 'block' ? { stream: { path, name: IMAGE_NAME } } : { dir: path, exclude: FILESYSTEM_OWN },
    tags,
    (pr) => {
      if (first) faultStep('backup.during-restic');
      first = false;
      progress.update('backing up', pr.bytesDone, pr.bytesTotal || v.capacityBytes, pr.secondsRemaining);
    },
  );
  const result = {
    backupId: summary.snapshotId,
    volumeId: v.id,
    backend: p.backend,
    host: hostname(),
    pointInTime: source.pointInTime,
    bytesProcessed: summary.bytesProcessed,
    bytesAdded: summary.bytesAdded,
    files: summary.files,
    seconds: summary.seconds,
  };
  await op.update({ result });
  faultStep('backup.after-restic');
  return result;
}

async function resolveBackup(repo: ResticRepo, id: string): Promise<BackupInfo> {
  const matches = (await listSnapshots(repo)).filter((s) => s.id.startsWith(id) && id.length >= 4);
  if (matches.length === 0)
    throw new CsiError('NOT_FOUND', `no backup ${id} in ${repo.url} ("rexcsi volume backups --repo ..." lists them)`);
  if (matches.length > 1)
    throw new CsiError('INVALID_ARGUMENT', `${id} names ${matches.length} backups in ${repo.url}: give more of the id`);
  const info = backupInfo(matches[0]!);
  if (!info)
    throw new CsiError(
      'FAILED_PRECONDITION',
      `snapshot ${id} in ${repo.url} was not made by "rexcsi volume backup" (it has no rexcsi tags)`,
    );
  return info;
}

async function runRestore(ctx: CommandContext): Promise<number | void> {
  const repo = repoOf(ctx);
  const name = required(ctx, 'name');
  const size = str(ctx, 'size');
  const parameters = keyValues(ctx, 'parameters');
  await openRepository(repo, false);
  const info = await resolveBackup(repo, ctx.args[0]!);
  const bytes = size === undefined ? info.sizeBytes : parseSize('size', size);
  if (bytes < info.sizeBytes)
    throw new CsiError(
      'OUT_OF_RANGE',
      `destination too small: backup ${info.shortId} is of a ${info.sizeBytes}-byte volume, --size ${size} is ${bytes} bytes`,
    );
  const p = await inspectPlugin(ctx.csi, ctx.endpoint);
  const fsType = str(ctx, 'fs-type') ?? (p.backend === info.backend ? info.fsType : '');
  const op = await Operation.open(workDirOf(ctx), 'restore', {
    endpoint: grpcTarget(ctx.endpoint),
    repo: repo.url,
    backup: info.id,
    name,
    bytes,
    parameters,
    fsType,
  });
  const progress = ProgressLine.for(ctx);
  try {
    const dest = await createDestination(op, p, { name, bytes, accessType: info.accessType, fsType, parameters });
    faultStep('restore.after-create');
    const attached = await attachVolume(op, p, dest, 'destination', false);
    faultStep('restore.after-stage');
    const started = Date.now();
    if (!op.state.verified) {
      const result =
        info.accessType === 'block'
          ? await restoreImage(repo, info, dataPath(attached), dest.capacityBytes, progress)
          : await restoreFiles(repo, info, dataPath(attached));
      await op.update({ verified: true, result: { ...result, seconds: (Date.now() - started) / 1000 } });
      faultStep('restore.after-restore');
    }
    progress.clear();
    await detachAll(op, [p]);
    const result = {
      volumeId: dest.id,
      capacityBytes: dest.capacityBytes,
      backup: info.shortId,
      source: info.volumeId,
      ...op.state.result,
    };
    await op.finish();
    ctx.out.result(result, () =>
      ctx.out.fields([
        ['volume', dest.id],
        ['capacity', formatBytes(dest.capacityBytes)],
        ['restored from', `backup ${info.shortId} of ${info.volumeId} (${info.backend}, ${info.time})`],
        ['verified', 'yes'],
      ]),
    );
  } catch (e) {
    progress.clear();
    await bestEffort([() => detachAll(op, [p]), () => removeDestination(op, p), () => op.finish()]);
    throw e;
  }
}

async function restoreFiles(repo: ResticRepo, info: BackupInfo, dir: string): Promise<Record<string, unknown>> {
  let first = true;
  await restoreTree(repo, info.id, dir, () => {
    if (first) faultStep('restore.during-restore');
    first = false;
  });
  const holed = await digHoles(dir);
  if (info.root !== undefined) {
    const [mode, uid, gid] = info.root.split(':').map((x, i) => (i === 0 ? parseInt(x, 8) : Number(x)));
    await chown(dir, uid!, gid!);
    await chmod(dir, mode!);
  }
  return { sparseFiles: holed };
}

async function restoreImage(
  repo: ResticRepo,
  info: BackupInfo,
  device: string,
  capacity: number,
  progress: ProgressLine,
): Promise<Record<string, unknown>> {
  const dump = dumpFile(repo, info.id, IMAGE_NAME);
  let first = true;
  try {
    const [written] = await Promise.all([
      writeStream(dump.data, device, capacity, (n) => {
        if (first) faultStep('restore.during-restore');
        first = false;
        progress.update('restoring', n, info.sizeBytes);
      }),
      dump.done,
    ]);
    const check = await sha256Of(device, written.bytes);
    if (check !== written.sha256) throw new CsiError('INTERNAL', `verification failed: ${device} does not read back what was restored`);
    return { bytes: written.bytes, bytesWritten: written.written, sha256: written.sha256 };
  } catch (e) {
    dump.kill();
    throw e;
  }
}

export const BACKUP_COMMANDS: Command[] = [
  {
    name: 'volume backup',
    summary: 'Back up a volume to a restic repository: from a snapshot where the plugin has them, else the live volume read-only.',
    args: ['VOLUME_ID'],
    options: {
      ...REPO_OPTIONS,
      'keep-snapshot': { type: 'boolean', description: 'keep the CSI snapshot the backup was read from (default: deleted)' },
      'volume-name': { type: 'string', value: 'NAME', description: 'a name to record with the backup (default: the volume id)' },
      ...WORK_DIR_OPTION,
    },
    notes: [
      'The repository password comes from --password-file or RESTIC_PASSWORD; S3 credentials from the AWS environment.',
      'A run that was killed resumes when run again with the same arguments (docs/backup-and-migration.md).',
    ],
    run: (ctx) => guarded(ctx, 'volume backup', () => runBackup(ctx)),
  },
  {
    name: 'volume backups',
    summary: 'List the volume backups in a restic repository.',
    ownConnections: true,
    options: { ...REPO_OPTIONS, volume: { type: 'string', value: 'VOLUME_ID', description: 'only backups of this volume' } },
    run: (ctx) =>
      guarded(ctx, 'volume backups', async () => {
        const repo = repoOf(ctx);
        await openRepository(repo, false);
        const volume = str(ctx, 'volume');
        const all = (await listSnapshots(repo)).map(backupInfo).filter((b): b is BackupInfo => b !== undefined);
        const shown = all.filter((b) => volume === undefined || b.volumeId === volume);
        ctx.out.result(shown, () =>
          ctx.out.table(
            [
              ['id', 'ID'],
              ['time', 'TIME'],
              ['volume', 'VOLUME'],
              ['backend', 'BACKEND'],
              ['size', 'SIZE'],
              ['type', 'TYPE'],
              ['pit', 'POINT-IN-TIME'],
            ],
            shown.map((b) => ({
              id: b.shortId,
              time: b.time.slice(0, 19).replace('T', ' '),
              volume: b.volumeId,
              backend: b.backend,
              size: formatBytes(b.sizeBytes),
              type: b.accessType === 'block' ? 'block' : `mount ${b.fsType}`.trim(),
              pit: b.pointInTime ? 'yes' : 'no',
            })),
          ),
        );
      }),
  },
  {
    name: 'volume restore',
    summary: 'Create a volume (on any plugin) from a backup: create, stage, restore, verify, unstage.',
    args: ['BACKUP_ID'],
    options: {
      ...REPO_OPTIONS,
      name: { type: 'string', value: 'NAME', description: 'name of the new volume (required)' },
      size: { type: 'string', value: 'SIZE', description: "capacity, at least the backed-up volume's (default: that size)" },
      'fs-type': {
        type: 'string',
        value: 'FS',
        description: "filesystem of the new mount volume (default: the backup's on the same backend, else the plugin's)",
      },
      parameters: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'CreateVolume parameter of the new volume' },
      ...WORK_DIR_OPTION,
    },
    run: (ctx) => guarded(ctx, 'volume restore', () => runRestore(ctx)),
  },
];
