import type { Snapshot__Output } from '../csi/gen/csi/v1/Snapshot.js';
import { SECRET_OPTION, keyValues, required, str } from './args.js';
import { UsageError, type Command } from './command.js';
import { formatBytes } from './output.js';

// `rexcsi snapshot list|create|delete` (ListSnapshots, CreateSnapshot, DeleteSnapshot).

function createdAt(s: Snapshot__Output): string {
  const t = s.creation_time;
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)).toISOString() : '';
}

export const SNAPSHOT_COMMANDS: Command[] = [
  {
    name: 'snapshot list',
    summary: 'List snapshots, all or of one volume (ListSnapshots, every page).',
    options: {
      volume: { type: 'string', value: 'VOLUME_ID', description: 'only snapshots of this volume' },
      snapshot: { type: 'string', value: 'SNAPSHOT_ID', description: 'only this snapshot' },
      'page-size': { type: 'string', value: 'N', description: "entries per ListSnapshots call (default: the plugin's choice)" },
      ...SECRET_OPTION,
    },
    async run(ctx) {
      const pageSize = Number(str(ctx, 'page-size') ?? '0');
      if (!Number.isSafeInteger(pageSize) || pageSize < 0)
        throw new UsageError(`--page-size ${JSON.stringify(str(ctx, 'page-size'))}: expected a whole number`);
      const snapshots: Snapshot__Output[] = [];
      let token = '';
      do {
        const page = await ctx.csi.controller.ListSnapshots({
          max_entries: pageSize,
          starting_token: token,
          source_volume_id: str(ctx, 'volume') ?? '',
          snapshot_id: str(ctx, 'snapshot') ?? '',
          secrets: keyValues(ctx, 'secret'),
        });
        for (const e of page.entries) if (e.snapshot) snapshots.push(e.snapshot);
        token = page.next_token;
      } while (token !== '');
      ctx.out.result(snapshots, () =>
        ctx.out.table(
          [
            ['id', 'ID'],
            ['volume', 'SOURCE VOLUME'],
            ['size', 'SIZE'],
            ['created', 'CREATED'],
            ['ready', 'READY'],
          ],
          snapshots.map((s) => ({
            id: s.snapshot_id,
            volume: s.source_volume_id,
            size: s.size_bytes ? formatBytes(Number(s.size_bytes)) : '',
            created: createdAt(s),
            ready: s.ready_to_use ? 'yes' : 'no',
          })),
        ),
      );
    },
  },
  {
    name: 'snapshot create',
    summary: 'Snapshot a volume, or return the existing snapshot of that name (CreateSnapshot).',
    args: ['NAME'],
    options: {
      volume: { type: 'string', value: 'VOLUME_ID', description: 'the volume to snapshot (required)' },
      param: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'plugin parameter' },
      ...SECRET_OPTION,
    },
    async run(ctx) {
      const volume = required(ctx, 'volume');
      const res = await ctx.out.progress(
        `snapshotting ${volume}`,
        ctx.csi.controller.CreateSnapshot({
          name: ctx.args[0],
          source_volume_id: volume,
          parameters: keyValues(ctx, 'param'),
          secrets: keyValues(ctx, 'secret'),
        }),
      );
      ctx.out.result(res, () => {
        const s = res.snapshot;
        if (!s) return;
        ctx.out.fields([
          ['id', s.snapshot_id],
          ['source volume', s.source_volume_id],
          ['size', s.size_bytes ? formatBytes(Number(s.size_bytes)) : undefined],
          ['created', createdAt(s)],
          ['ready', s.ready_to_use ? 'yes' : 'no (still being cut; "rexcsi snapshot list --snapshot ID" shows when it is)'],
        ]);
      });
    },
  },
  {
    name: 'snapshot delete',
    summary: 'Delete a snapshot; succeeds when it is already gone (DeleteSnapshot).',
    args: ['SNAPSHOT_ID'],
    options: { ...SECRET_OPTION },
    async run(ctx) {
      const res = await ctx.out.progress(
        `deleting snapshot ${ctx.args[0]}`,
        ctx.csi.controller.DeleteSnapshot({ snapshot_id: ctx.args[0], secrets: keyValues(ctx, 'secret') }),
      );
      ctx.out.result(res, () => ctx.out.line(`deleted ${ctx.args[0]}`));
    },
  },
];
