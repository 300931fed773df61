import type { Volume__Output } from '../csi/gen/csi/v1/Volume.js';
import type { VolumeCondition__Output } from '../csi/gen/csi/v1/VolumeCondition.js';
import type { _csi_v1_ListVolumesResponse_Entry__Output as ListEntry } from '../csi/gen/csi/v1/ListVolumesResponse.js';
import {
  CAPABILITY_OPTIONS,
  SECRET_OPTION,
  capability,
  capabilityIfGiven,
  flag,
  keyValues,
  parseSize,
  required,
  str,
  topologyRequirement,
} from './args.js';
import { EXIT, UsageError, type Command, type CommandContext, type OptionDef } from './command.js';
import { formatBytes, formatMap, type Output } from './output.js';

// `rexcsi volume ...`: the controller calls (list, get, create, delete, expand, validate, publish, unpublish)
// and the node calls (stage, unstage, mount, unmount, stats), one subcommand per RPC.

const CONTEXT_OPTION: Record<string, OptionDef> = {
  context: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'volume context, as "volume create" printed it' },
};
const PUBLISH_CONTEXT_OPTION: Record<string, OptionDef> = {
  'publish-context': { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'publish context, as "volume publish" printed it' },
};
const STAGING_OPTION: Record<string, OptionDef> = {
  'staging-path': { type: 'string', value: 'DIR', description: "the volume's staging directory on this node" },
};

function conditionText(c: VolumeCondition__Output | null | undefined): string {
  if (!c) return '';
  return c.abnormal ? `abnormal: ${c.message}` : 'ok';
}

function printVolume(out: Output, v: Volume__Output | null, extra: [string, string | undefined][] = []): void {
  if (!v) return;
  const source = v.content_source?.snapshot
    ? `snapshot ${v.content_source.snapshot.snapshot_id}`
    : v.content_source?.volume
      ? `volume ${v.content_source.volume.volume_id}`
      : undefined;
  out.fields([
    ['id', v.volume_id],
    ['capacity', v.capacity_bytes ? `${formatBytes(Number(v.capacity_bytes))} (${v.capacity_bytes} bytes)` : 'unknown'],
    ['context', formatMap(v.volume_context)],
    ['source', source],
    ['topology', v.accessible_topology.map((t) => formatMap(t.segments)).join(' | ')],
    ...extra,
  ]);
}

function contextFlags(v: Volume__Output | null): string {
  return Object.entries(v?.volume_context ?? {})
    .map(([k, val]) => ` --context ${k}=${val}`)
    .join('');
}

async function listAll(ctx: CommandContext): Promise<ListEntry[]> {
  const pageSize = str(ctx, 'page-size');
  const maxEntries = pageSize === undefined ? 0 : Number(pageSize);
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 0)
    throw new UsageError(`--page-size ${JSON.stringify(pageSize)}: expected a whole number`);
  const entries: ListEntry[] = [];
  let token = '';
  do {
    const page = await ctx.csi.controller.ListVolumes({ max_entries: maxEntries, starting_token: token });
    entries.push(...page.entries);
    token = page.next_token;
  } while (token !== '');
  return entries;
}

export const VOLUME_COMMANDS: Command[] = [
  {
    name: 'volume list',
    summary: "List the plugin's volumes (ListVolumes, every page).",
    options: { 'page-size': { type: 'string', value: 'N', description: "entries per ListVolumes call (default: the plugin's choice)" } },
    async run(ctx) {
      const entries = await listAll(ctx);
      ctx.out.result(entries, () =>
        ctx.out.table(
          [
            ['id', 'ID'],
            ['capacity', 'CAPACITY'],
            ['nodes', 'PUBLISHED ON'],
            ['condition', 'CONDITION'],
          ],
          entries.map((e) => ({
            id: e.volume?.volume_id ?? '',
            capacity: e.volume?.capacity_bytes ? formatBytes(Number(e.volume.capacity_bytes)) : '',
            nodes: e.status?.published_node_ids.join(',') ?? '',
            condition: conditionText(e.status?.volume_condition),
          })),
        ),
      );
    },
  },
  {
    name: 'volume get',
    summary: 'Show one volume (ControllerGetVolume).',
    args: ['VOLUME_ID'],
    async run(ctx) {
      const res = await ctx.csi.controller.ControllerGetVolume({ volume_id: ctx.args[0] });
      ctx.out.result(res, () =>
        printVolume(ctx.out, res.volume, [
          ['published on', res.status?.published_node_ids.join(', ')],
          ['condition', conditionText(res.status?.volume_condition)],
        ]),
      );
    },
  },
  {
    name: 'volume create',
    summary: 'Create a volume, or return the existing one of that name with the same settings (CreateVolume).',
    args: ['NAME'],
    options: {
      size: { type: 'string', value: 'SIZE', description: "capacity wanted: bytes, or 512Mi, 1Gi, 10G (default: the plugin's)" },
      'limit-size': { type: 'string', value: 'SIZE', description: 'largest capacity acceptable' },
      ...CAPABILITY_OPTIONS,
      param: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'plugin parameter (e.g. fsType=xfs)' },
      'from-snapshot': { type: 'string', value: 'SNAPSHOT_ID', description: 'fill the volume from this snapshot' },
      'from-volume': { type: 'string', value: 'VOLUME_ID', description: 'clone this volume' },
      topology: { type: 'string', multiple: true, value: 'K=V[,K=V]', description: 'where the volume must be accessible' },
      ...SECRET_OPTION,
    },
    async run(ctx) {
      const size = str(ctx, 'size');
      const limit = str(ctx, 'limit-size');
      const fromSnapshot = str(ctx, 'from-snapshot');
      const fromVolume = str(ctx, 'from-volume');
      if (fromSnapshot && fromVolume) throw new UsageError('--from-snapshot and --from-volume exclude each other');
      const topology = topologyRequirement(ctx, 'topology');
      const res = await ctx.out.progress(
        `creating volume ${ctx.args[0]}`,
        ctx.csi.controller.CreateVolume({
          name: ctx.args[0],
          volume_capabilities: [capability(ctx)],
          ...(size || limit
            ? {
                capacity_range: {
                  required_bytes: size ? parseSize('size', size) : 0,
                  limit_bytes: limit ? parseSize('limit-size', limit) : 0,
                },
              }
            : {}),
          parameters: keyValues(ctx, 'param'),
          secrets: keyValues(ctx, 'secret'),
          ...(fromSnapshot ? { volume_content_source: { snapshot: { snapshot_id: fromSnapshot } } } : {}),
          ...(fromVolume ? { volume_content_source: { volume: { volume_id: fromVolume } } } : {}),
          ...(topology ? { accessibility_requirements: topology } : {}),
        }),
      );
      ctx.out.result(res, () => {
        printVolume(ctx.out, res.volume);
        ctx.out.line(`stage it with: rexcsi volume stage ${res.volume?.volume_id ?? ''} --staging-path DIR${contextFlags(res.volume)}`);
      });
    },
  },
  {
    name: 'volume delete',
    summary: 'Delete a volume; succeeds when it is already gone (DeleteVolume).',
    args: ['VOLUME_ID'],
    options: { ...SECRET_OPTION },
    async run(ctx) {
      const res = await ctx.out.progress(
        `deleting volume ${ctx.args[0]}`,
        ctx.csi.controller.DeleteVolume({ volume_id: ctx.args[0], secrets: keyValues(ctx, 'secret') }),
      );
      ctx.out.result(res, () => ctx.out.line(`deleted ${ctx.args[0]}`));
    },
  },
  {
    name: 'volume expand',
    summary: 'Grow a volume (ControllerExpandVolume); with --path, also grow its filesystem on this node (NodeExpandVolume).',
    args: ['VOLUME_ID'],
    options: {
      size: { type: 'string', value: 'SIZE', description: 'new capacity: bytes, or 512Mi, 2Gi, 20G (required)' },
      path: {
        type: 'string',
        value: 'DIR',
        description: 'where the volume is mounted (or staged) on this node: grow the filesystem there too',
      },
      ...STAGING_OPTION,
      ...CAPABILITY_OPTIONS,
      ...SECRET_OPTION,
    },
    async run(ctx) {
      const bytes = parseSize('size', required(ctx, 'size'));
      const cap = capabilityIfGiven(ctx);
      const res = await ctx.out.progress(
        `expanding volume ${ctx.args[0]}`,
        ctx.csi.controller.ControllerExpandVolume({
          volume_id: ctx.args[0],
          capacity_range: { required_bytes: bytes },
          secrets: keyValues(ctx, 'secret'),
          ...(cap ? { volume_capability: cap } : {}),
        }),
      );
      const path = str(ctx, 'path');
      const node = path
        ? await ctx.out.progress(
            `growing the filesystem at ${path}`,
            ctx.csi.node.NodeExpandVolume({
              volume_id: ctx.args[0],
              volume_path: path,
              staging_target_path: str(ctx, 'staging-path') ?? '',
              capacity_range: { required_bytes: bytes },
              ...(cap ? { volume_capability: cap } : {}),
              secrets: keyValues(ctx, 'secret'),
            }),
          )
        : undefined;
      ctx.out.result({ controller: res, node: node ?? null }, () => {
        ctx.out.line(`volume ${ctx.args[0]} is now ${formatBytes(Number(res.capacity_bytes))}`);
        if (res.node_expansion_required && !node)
          ctx.out.line(`its filesystem grows on the node: rexcsi volume expand ${ctx.args[0]} --size ${bytes} --path DIR (on that node)`);
        if (node)
          ctx.out.line(`filesystem at ${path} grown${node.capacity_bytes ? ` to ${formatBytes(Number(node.capacity_bytes))}` : ''}`);
      });
    },
  },
  {
    name: 'volume validate',
    summary: 'Ask whether a volume supports a capability (ValidateVolumeCapabilities). Exit code 5 when not confirmed.',
    args: ['VOLUME_ID'],
    options: {
      ...CAPABILITY_OPTIONS,
      param: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'parameters the volume was created with' },
      ...CONTEXT_OPTION,
      ...SECRET_OPTION,
    },
    async run(ctx) {
      const res = await ctx.csi.controller.ValidateVolumeCapabilities({
        volume_id: ctx.args[0],
        volume_capabilities: [capability(ctx)],
        parameters: keyValues(ctx, 'param'),
        volume_context: keyValues(ctx, 'context'),
        secrets: keyValues(ctx, 'secret'),
      });
      const confirmed = res.confirmed != null;
      ctx.out.result(res, () => ctx.out.line(confirmed ? 'confirmed' : `not confirmed${res.message ? `: ${res.message}` : ''}`));
      return confirmed ? EXIT.OK : EXIT.DECLINED;
    },
  },
  {
    name: 'volume publish',
    summary: 'Make a volume available to a node, e.g. attach it (ControllerPublishVolume). Prints the publish context for "volume stage".',
    args: ['VOLUME_ID'],
    options: {
      node: { type: 'string', value: 'NODE_ID', description: 'the node (as "rexcsi info" on that node shows it; required)' },
      readonly: { type: 'boolean', description: 'publish read-only' },
      ...CAPABILITY_OPTIONS,
      ...CONTEXT_OPTION,
      ...SECRET_OPTION,
    },
    async run(ctx) {
      const node = required(ctx, 'node');
      const res = await ctx.out.progress(
        `publishing ${ctx.args[0]} to ${node}`,
        ctx.csi.controller.ControllerPublishVolume({
          volume_id: ctx.args[0],
          node_id: node,
          readonly: flag(ctx, 'readonly'),
          volume_capability: capability(ctx),
          volume_context: keyValues(ctx, 'context'),
          secrets: keyValues(ctx, 'secret'),
        }),
      );
      ctx.out.result(res, () => {
        ctx.out.line(`published ${ctx.args[0]} to ${node}`);
        const flags = Object.entries(res.publish_context)
          .map(([k, v]) => ` --publish-context ${k}=${v}`)
          .join('');
        if (flags) ctx.out.line(`stage it on ${node} with: rexcsi volume stage ${ctx.args[0]} --staging-path DIR${flags}`);
      });
    },
  },
  {
    name: 'volume unpublish',
    summary: 'Undo "volume publish", e.g. detach (ControllerUnpublishVolume); without --node, from every node.',
    args: ['VOLUME_ID'],
    options: { node: { type: 'string', value: 'NODE_ID', description: 'the node (default: all nodes)' }, ...SECRET_OPTION },
    async run(ctx) {
      const node = str(ctx, 'node') ?? '';
      const res = await ctx.out.progress(
        `unpublishing ${ctx.args[0]}`,
        ctx.csi.controller.ControllerUnpublishVolume({ volume_id: ctx.args[0], node_id: node, secrets: keyValues(ctx, 'secret') }),
      );
      ctx.out.result(res, () => ctx.out.line(`unpublished ${ctx.args[0]}${node ? ` from ${node}` : ''}`));
    },
  },
  {
    name: 'volume stage',
    summary: 'Prepare a volume on this node: attach, format if blank, mount at the staging directory (NodeStageVolume).',
    args: ['VOLUME_ID'],
    options: { ...STAGING_OPTION, ...CAPABILITY_OPTIONS, ...PUBLISH_CONTEXT_OPTION, ...CONTEXT_OPTION, ...SECRET_OPTION },
    notes: ['--staging-path is required; the directory must exist.'],
    async run(ctx) {
      const staging = required(ctx, 'staging-path');
      const res = await ctx.out.progress(
        `staging ${ctx.args[0]} at ${staging}`,
        ctx.csi.node.NodeStageVolume({
          volume_id: ctx.args[0],
          staging_target_path: staging,
          volume_capability: capability(ctx),
          publish_context: keyValues(ctx, 'publish-context'),
          volume_context: keyValues(ctx, 'context'),
          secrets: keyValues(ctx, 'secret'),
        }),
      );
      ctx.out.result(res, () => ctx.out.line(`staged ${ctx.args[0]} at ${staging}`));
    },
  },
  {
    name: 'volume unstage',
    summary: 'Undo "volume stage": unmount the staging directory and release the volume on this node (NodeUnstageVolume).',
    args: ['VOLUME_ID'],
    options: { ...STAGING_OPTION },
    async run(ctx) {
      const staging = required(ctx, 'staging-path');
      const res = await ctx.out.progress(
        `unstaging ${ctx.args[0]}`,
        ctx.csi.node.NodeUnstageVolume({ volume_id: ctx.args[0], staging_target_path: staging }),
      );
      ctx.out.result(res, () => ctx.out.line(`unstaged ${ctx.args[0]} from ${staging}`));
    },
  },
  {
    name: 'volume mount',
    summary: 'Make a staged volume appear at a target path for a workload (NodePublishVolume).',
    args: ['VOLUME_ID'],
    options: {
      target: { type: 'string', value: 'PATH', description: 'where the workload sees the volume (required)' },
      ...STAGING_OPTION,
      readonly: { type: 'boolean', description: 'mount read-only' },
      ...CAPABILITY_OPTIONS,
      ...PUBLISH_CONTEXT_OPTION,
      ...CONTEXT_OPTION,
      ...SECRET_OPTION,
    },
    async run(ctx) {
      const target = required(ctx, 'target');
      const res = await ctx.out.progress(
        `mounting ${ctx.args[0]} at ${target}`,
        ctx.csi.node.NodePublishVolume({
          volume_id: ctx.args[0],
          target_path: target,
          staging_target_path: str(ctx, 'staging-path') ?? '',
          readonly: flag(ctx, 'readonly'),
          volume_capability: capability(ctx),
          publish_context: keyValues(ctx, 'publish-context'),
          volume_context: keyValues(ctx, 'context'),
          secrets: keyValues(ctx, 'secret'),
        }),
      );
      ctx.out.result(res, () => ctx.out.line(`mounted ${ctx.args[0]} at ${target}`));
    },
  },
  {
    name: 'volume unmount',
    summary: 'Undo "volume mount" (NodeUnpublishVolume).',
    args: ['VOLUME_ID'],
    options: { target: { type: 'string', value: 'PATH', description: 'the target path (required)' } },
    async run(ctx) {
      const target = required(ctx, 'target');
      const res = await ctx.out.progress(
        `unmounting ${ctx.args[0]}`,
        ctx.csi.node.NodeUnpublishVolume({ volume_id: ctx.args[0], target_path: target }),
      );
      ctx.out.result(res, () => ctx.out.line(`unmounted ${ctx.args[0]} from ${target}`));
    },
  },
  {
    name: 'volume stats',
    summary: 'Space and inodes used by a volume where it is mounted or staged on this node, and its condition (NodeGetVolumeStats).',
    args: ['VOLUME_ID'],
    options: {
      path: { type: 'string', value: 'PATH', description: 'a target or staging path of the volume (required)' },
      ...STAGING_OPTION,
    },
    async run(ctx) {
      const res = await ctx.csi.node.NodeGetVolumeStats({
        volume_id: ctx.args[0],
        volume_path: required(ctx, 'path'),
        staging_target_path: str(ctx, 'staging-path') ?? '',
      });
      ctx.out.result(res, () => {
        const show = (unit: string, n: number): string => (unit === 'BYTES' ? formatBytes(n) : String(n));
        ctx.out.table(
          [
            ['unit', 'UNIT'],
            ['total', 'TOTAL'],
            ['used', 'USED'],
            ['available', 'AVAILABLE'],
          ],
          res.usage.map((u) => ({
            unit: u.unit,
            total: show(u.unit, Number(u.total)),
            used: show(u.unit, Number(u.used)),
            available: show(u.unit, Number(u.available)),
          })),
        );
        if (res.volume_condition) ctx.out.line(`condition: ${conditionText(res.volume_condition)}`);
      });
    },
  },
];
