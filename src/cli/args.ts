import type { VolumeCapability } from '../csi/gen/csi/v1/VolumeCapability.js';
import type { TopologyRequirement } from '../csi/gen/csi/v1/TopologyRequirement.js';
import { UsageError, type CommandContext, type OptionDef } from './command.js';

// Reading typed values out of command-line options: sizes, key=value maps, volume capabilities.

export function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.opts[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(ctx: CommandContext, name: string): boolean {
  return ctx.opts[name] === true;
}

export function required(ctx: CommandContext, name: string): string {
  const v = str(ctx, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** Repeated `--name k=v` options -> { k: v }. */
export function keyValues(ctx: CommandContext, name: string): Record<string, string> {
  const raw = ctx.opts[name];
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${name} ${JSON.stringify(item)}: expected KEY=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function list(ctx: CommandContext, name: string): string[] {
  const raw = ctx.opts[name];
  return Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 2 ** 10,
  kib: 2 ** 10,
  mi: 2 ** 20,
  mib: 2 ** 20,
  gi: 2 ** 30,
  gib: 2 ** 30,
  ti: 2 ** 40,
  tib: 2 ** 40,
};

/** "1073741824", "512Mi", "1GiB", "10G" (decimal, as Kubernetes reads it) -> bytes. */
export function parseSize(name: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(`--${name} ${JSON.stringify(value)}: expected a size such as 1073741824, 512Mi, 1Gi or 10G`);
  }
  return bytes;
}

type AccessMode = NonNullable<NonNullable<VolumeCapability['access_mode']>['mode']>;

const ACCESS_MODES: Record<string, AccessMode> = {
  'single-node-writer': 'SINGLE_NODE_WRITER',
  rwo: 'SINGLE_NODE_WRITER',
  'single-node-reader-only': 'SINGLE_NODE_READER_ONLY',
  'multi-node-reader-only': 'MULTI_NODE_READER_ONLY',
  rox: 'MULTI_NODE_READER_ONLY',
  'multi-node-single-writer': 'MULTI_NODE_SINGLE_WRITER',
  'multi-node-multi-writer': 'MULTI_NODE_MULTI_WRITER',
  rwx: 'MULTI_NODE_MULTI_WRITER',
  'single-node-single-writer': 'SINGLE_NODE_SINGLE_WRITER',
  rwop: 'SINGLE_NODE_SINGLE_WRITER',
  'single-node-multi-writer': 'SINGLE_NODE_MULTI_WRITER',
};

export const CAPABILITY_OPTIONS: Record<string, OptionDef> = {
  block: { type: 'boolean', description: 'a raw block volume (default: a mounted filesystem)' },
  'fs-type': { type: 'string', value: 'FS', description: "filesystem of a mount volume, e.g. ext4, xfs (default: the plugin's)" },
  'mount-flag': { type: 'string', multiple: true, value: 'FLAG', description: 'mount option for a mount volume' },
  'access-mode': {
    type: 'string',
    value: 'MODE',
    description:
      'single-node-writer (rwo, default), single-node-reader-only, single-node-single-writer (rwop), single-node-multi-writer, multi-node-reader-only (rox), multi-node-single-writer, multi-node-multi-writer (rwx)',
  },
};

export function capability(ctx: CommandContext): VolumeCapability {
  const modeName = (str(ctx, 'access-mode') ?? 'single-node-writer').toLowerCase().replace(/_/g, '-');
  const mode = ACCESS_MODES[modeName];
  if (!mode)
    throw new UsageError(
      `--access-mode ${JSON.stringify(str(ctx, 'access-mode'))}: expected one of ${Object.keys(ACCESS_MODES).join(', ')}`,
    );
  if (flag(ctx, 'block')) {
    if (str(ctx, 'fs-type') !== undefined || list(ctx, 'mount-flag').length > 0)
      throw new UsageError('--block volumes have no filesystem: drop --fs-type and --mount-flag');
    return { block: {}, access_mode: { mode } };
  }
  return { mount: { fs_type: str(ctx, 'fs-type') ?? '', mount_flags: list(ctx, 'mount-flag') }, access_mode: { mode } };
}

/** The capability the options describe, or undefined when none of them was given (for RPCs where it is optional). */
export function capabilityIfGiven(ctx: CommandContext): VolumeCapability | undefined {
  const given = Object.keys(CAPABILITY_OPTIONS).some((name) => ctx.opts[name] !== undefined);
  return given ? capability(ctx) : undefined;
}

/** `--topology k=v,k2=v2` (repeatable; each one segment set) -> requisite and preferred topologies. */
export function topologyRequirement(ctx: CommandContext, name: string): TopologyRequirement | undefined {
  const sets = list(ctx, name).map((item) => {
    const segments: Record<string, string> = {};
    for (const part of item.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new UsageError(`--${name} ${JSON.stringify(item)}: expected KEY=VALUE[,KEY=VALUE...]`);
      segments[part.slice(0, eq)] = part.slice(eq + 1);
    }
    return { segments };
  });
  return sets.length ? { requisite: sets, preferred: sets } : undefined;
}

export const SECRET_OPTION: Record<string, OptionDef> = {
  secret: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'secret passed to the plugin (never logged by rexcsi)' },
};
