import { existsSync } from 'node:fs';
import { CsiError } from '../errors.js';
import { copyBlock, sha256Of } from '../os/blockcopy.js';
import { compareTrees, copyTree } from '../os/rsync.js';
import { flag, keyValues, parseSize, required, str } from './args.js';
import { connect, grpcTarget, socketPathOf, type CsiConnection } from './client.js';
import type { Command, CommandContext } from './command.js';
import {
  WORK_DIR_OPTION,
  Operation,
  ProgressLine,
  attachVolume,
  bestEffort,
  dataPath,
  deleteQuietly,
  detachAll,
  faultStep,
  guarded,
  inspectPlugin,
  inspectVolume,
  otherMountsOf,
  timeoutOf,
  workDirOf,
  type AttachRecord,
  type PluginView,
  type VolumeView,
} from './mobility.js';
import { formatBytes } from './output.js';
import { createDestination, pointInTimeSource, removeDestination, removeTemporaries, type SourceView } from './transfer.js';

// `rexcsi volume migrate VOLUME --from E1 --to E2`: copies a volume from one plugin to another on this node,
// from a point-in-time copy of the source where its plugin can make one, verifies, and cleans up.

const FILESYSTEM_OWN = ['lost+found'];

function open(endpoint: string, timeoutMs: number): CsiConnection {
  const socket = socketPathOf(grpcTarget(endpoint));
  if (socket !== undefined && !existsSync(socket)) throw new CsiError('UNAVAILABLE', `no plugin socket at ${socket}`);
  return connect(endpoint, timeoutMs);
}

/** A live source (no snapshot, no clone) must be used by nobody else while it is read. */
async function requireUnused(p: PluginView, v: VolumeView, attached: AttachRecord | undefined): Promise<void> {
  const elsewhere = v.publishedNodes.filter((n) => n !== p.nodeId);
  if (elsewhere.length > 0)
    throw new CsiError(
      'FAILED_PRECONDITION',
      `volume ${v.id} is published on node ${elsewhere.join(', ')}; ${p.backend} has no snapshots, so it must be unpublished to be migrated`,
    );
  const mounts = attached ? await otherMountsOf(attached.stagingDir) : [];
  if (mounts.length > 0)
    throw new CsiError(
      'FAILED_PRECONDITION',
      `volume ${v.id} is mounted at ${mounts.join(', ')} on this node; ${p.backend} has no snapshots, so it must be unmounted to be migrated`,
    );
}

interface Copied {
  accessType: 'mount' | 'block';
  files?: number;
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
  how: SourceView['how'];
}

async function copyAndVerify(src: AttachRecord, dst: AttachRecord, v: VolumeView, progress: ProgressLine): Promise<Omit<Copied, 'how'>> {
  const started = Date.now();
  let first = true;
  const tick = (done: number, total: number): void => {
    if (first) faultStep('migrate.during-copy');
    first = false;
    progress.update('copying', done, total);
  };
  if (v.accessType === 'block') {
    const copied = await copyBlock(dataPath(src), dataPath(dst), v.capacityBytes, (n) => tick(n, v.capacityBytes));
    const seconds = (Date.now() - started) / 1000;
    progress.clear();
    if ((await sha256Of(dataPath(dst), copied.bytes)) !== copied.sha256)
      throw new CsiError('INTERNAL', `verification failed: the destination does not read back the ${copied.bytes} bytes copied`);
    return { accessType: 'block', bytes: copied.bytes, seconds, bytesPerSecond: copied.bytes / Math.max(seconds, 0.001) };
  }
  const copied = await copyTree(dataPath(src), dataPath(dst), {
    exclude: FILESYSTEM_OWN,
    onProgress: (pr) => tick(pr.bytesDone, pr.fraction > 0 ? pr.bytesDone / pr.fraction : 0),
  });
  const seconds = (Date.now() - started) / 1000;
  progress.clear();
  const differences = await compareTrees(dataPath(src), dataPath(dst), FILESYSTEM_OWN);
  if (differences.length > 0)
    throw new CsiError('INTERNAL', `verification failed: ${differences.length} differences, e.g. ${differences.slice(0, 3).join('; ')}`);
  return {
    accessType: 'mount',
    files: copied.files,
    bytes: copied.bytes,
    seconds,
    bytesPerSecond: copied.bytes / Math.max(seconds, 0.001),
  };
}

async function migrate(ctx: CommandContext, ps: PluginView, pd: PluginView): Promise<void> {
  const volumeId = ctx.args[0]!;
  const v = await inspectVolume(ps, volumeId);
  const name = str(ctx, 'name') ?? volumeId;
  const size = str(ctx, 'size');
  const bytes = size === undefined ? v.capacityBytes : parseSize('size', size);
  if (bytes < v.capacityBytes)
    throw new CsiError('OUT_OF_RANGE', `destination too small: volume ${volumeId} is ${v.capacityBytes} bytes, --size ${size} is ${bytes}`);
  const fsType = str(ctx, 'fs-type') ?? (pd.backend === ps.backend ? v.fsType : '');
  const parameters = keyValues(ctx, 'parameters');
  const deleteSource = flag(ctx, 'delete-source');
  const op = await Operation.open(workDirOf(ctx), 'migrate', {
    from: grpcTarget(ps.endpoint),
    to: grpcTarget(pd.endpoint),
    volumeId,
    name,
    bytes,
    parameters,
    fsType,
    deleteSource,
  });
  const progress = ProgressLine.for(ctx);
  try {
    if (!op.state.verified) {
      const source = await pointInTimeSource(op, ps, v, 'migrate', timeoutOf(ctx));
      if (source.how === 'live') await requireUnused(ps, v, undefined);
      const src = await attachVolume(op, ps, source.volume, 'source', true);
      if (source.how === 'live') await requireUnused(ps, v, src);
      const dest = await createDestination(op, pd, { name, bytes, accessType: v.accessType, fsType, parameters });
      faultStep('migrate.after-create');
      const dst = await attachVolume(op, pd, dest, 'destination', false);
      faultStep('migrate.after-stage');
      const copied = await copyAndVerify(src, dst, v, progress);
      await op.update({ verified: true, result: { ...copied, how: source.how, destinationId: dest.id } });
      faultStep('migrate.after-verify');
    }
    await detachAll(op, [ps, pd]);
    faultStep('migrate.after-unstage');
    await removeTemporaries(op, ps, false);
    if (deleteSource && !op.state.sourceDeleted) {
      await deleteQuietly(() => ps.csi.controller.DeleteVolume({ volume_id: volumeId, secrets: {} }));
      await op.update({ sourceDeleted: true });
    }
    const result = { source: volumeId, ...(op.state.result as unknown as Copied & { destinationId: string }), sourceDeleted: deleteSource };
    await op.finish();
    ctx.out.result(result, () =>
      ctx.out.fields([
        ['migrated', `${volumeId} (${ps.backend}) -> ${result.destinationId} (${pd.backend})`],
        ['read from', result.how === 'live' ? 'the live volume (no snapshots)' : `a ${result.how} of the source (point-in-time)`],
        ['copied', `${formatBytes(result.bytes) || '0 B'}${result.files !== undefined ? ` in ${result.files} files` : ''}`],
        ['took', `${result.seconds.toFixed(1)} s (${formatBytes(result.bytesPerSecond) || '0 B'}/s)`],
        ['verified', 'yes (checksums of both sides)'],
        ['source', deleteSource ? 'deleted' : 'kept'],
      ]),
    );
  } catch (e) {
    progress.clear();
    await bestEffort([
      () => detachAll(op, [ps, pd]),
      () => removeTemporaries(op, ps, false),
      async () => {
        if (!op.state.verified) await removeDestination(op, pd);
      },
      () => op.finish(),
    ]);
    throw e;
  }
}

export const MIGRATE_COMMANDS: Command[] = [
  {
    name: 'volume migrate',
    summary: 'Copy a volume from one plugin to another on this node (snapshot + clone of the source where it can), verify, clean up.',
    args: ['VOLUME_ID'],
    ownConnections: true,
    options: {
      from: { type: 'string', value: 'ENDPOINT', description: "the source volume's plugin (required)" },
      to: { type: 'string', value: 'ENDPOINT', description: 'the plugin to create the new volume with (required)' },
      name: { type: 'string', value: 'NAME', description: 'name of the new volume (default: the source volume id)' },
      size: { type: 'string', value: 'SIZE', description: "capacity of the new volume, at least the source's (default: the source's)" },
      'fs-type': {
        type: 'string',
        value: 'FS',
        description: "filesystem of the new mount volume (default: the source's on the same backend, else the plugin's)",
      },
      parameters: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'CreateVolume parameter of the new volume' },
      'delete-source': { type: 'boolean', description: 'delete the source volume once the copy is verified' },
      ...WORK_DIR_OPTION,
    },
    notes: ['A run that was killed resumes when run again with the same arguments (docs/backup-and-migration.md).'],
    run: (ctx) =>
      guarded(ctx, 'volume migrate', async () => {
        const timeout = timeoutOf(ctx);
        const from = open(required(ctx, 'from'), timeout);
        let to: CsiConnection | undefined;
        try {
          to = open(required(ctx, 'to'), timeout);
          const [ps, pd] = await Promise.all([inspectPlugin(from, str(ctx, 'from')!), inspectPlugin(to, str(ctx, 'to')!)]);
          await migrate(ctx, ps, pd);
        } finally {
          from.close();
          to?.close();
        }
      }),
  },
];
