// CreateVolume and ControllerModifyVolume parameters of the ebs backend, checked before any API call so a
// bad combination is INVALID_ARGUMENT naming the parameter, never an EC2 error halfway through.
import { invalidArgument, outOfRange } from '../../errors.js';

export const VOLUME_TYPES = ['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;
export type VolumeType = (typeof VOLUME_TYPES)[number];

export const DEFAULT_TYPE: VolumeType = 'gp3';

/** EBS size limits per type, in GiB. */
export const SIZE_LIMITS_GIB: Record<VolumeType, { min: number; max: number }> = {
  gp2: { min: 1, max: 16384 },
  gp3: { min: 1, max: 16384 },
  io1: { min: 4, max: 16384 },
  io2: { min: 4, max: 65536 },
  st1: { min: 125, max: 16384 },
  sc1: { min: 125, max: 16384 },
  standard: { min: 1, max: 1024 },
};

/** Provisioned IOPS bounds and the IOPS-per-GiB ratio cap, for the types that take `iops`. */
const IOPS_LIMITS: Partial<Record<VolumeType, { min: number; max: number; perGiB: number }>> = {
  gp3: { min: 3000, max: 80000, perGiB: 500 },
  io1: { min: 100, max: 64000, perGiB: 50 },
  io2: { min: 100, max: 256000, perGiB: 1000 },
};
const GP3_THROUGHPUT = { min: 125, max: 2000 };

export const TAG_PARAMETER_PREFIX = 'tagSpecification_';

export const CREATE_PARAMETER_KEYS = [
  'type',
  'iops',
  'iopsPerGB',
  'throughput',
  'encrypted',
  'kmsKeyId',
  'fsType',
  'allowAutoIOPSPerGBIncrease',
  `${TAG_PARAMETER_PREFIX}*`,
];
export const MUTABLE_PARAMETER_KEYS = ['type', 'iops', 'throughput'];

/** Tag keys the plugin itself sets; a user tag may not override them. */
export const RESERVED_TAG_PREFIXES = ['rexcsi.io/', 'CSIVolumeName', 'CSIVolumeSnapshotName', 'aws:'];

export interface VolumeSpec {
  type: VolumeType;
  iops?: number | undefined;
  iopsPerGB?: number | undefined;
  allowAutoIops: boolean;
  throughput?: number | undefined;
  encrypted: boolean;
  kmsKeyId?: string | undefined;
  tags: Record<string, string>;
}

function positiveInt(key: string, value: string): number {
  if (!/^[1-9]\d{0,8}$/.test(value)) throw invalidArgument(`parameter ${key}=${JSON.stringify(value)}: expected a positive whole number`);
  return Number(value);
}

function bool(key: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalidArgument(`parameter ${key}=${JSON.stringify(value)}: expected true or false`);
}

export function parseType(key: string, value: string): VolumeType {
  if (!(VOLUME_TYPES as readonly string[]).includes(value)) {
    throw invalidArgument(`parameter ${key}=${JSON.stringify(value)}: expected one of ${VOLUME_TYPES.join(', ')}`);
  }
  return value as VolumeType;
}

/** Parses `key=value` user tags from tagSpecification_N parameters. */
export function parseTag(key: string, value: string): [string, string] {
  if (!/^tagSpecification_\d{1,3}$/.test(key)) throw invalidArgument(`parameter ${key}: expected tagSpecification_<number>`);
  const eq = value.indexOf('=');
  if (eq <= 0) throw invalidArgument(`parameter ${key}=${JSON.stringify(value)}: expected key=value`);
  const tagKey = value.slice(0, eq);
  const tagValue = value.slice(eq + 1);
  if (tagKey.length > 128 || tagValue.length > 256)
    throw invalidArgument(`parameter ${key}: a tag key is at most 128 and a value 256 characters`);
  if (RESERVED_TAG_PREFIXES.some((p) => tagKey.startsWith(p)))
    throw invalidArgument(`parameter ${key}: tag key ${JSON.stringify(tagKey)} is reserved`);
  return [tagKey, tagValue];
}

/** Checks CreateVolume parameters (keys were checked by the protocol layer) and their combinations. */
export function parseVolumeSpec(params: Record<string, string>): VolumeSpec {
  const type = params.type !== undefined ? parseType('type', params.type) : DEFAULT_TYPE;
  const spec: VolumeSpec = { type, allowAutoIops: false, encrypted: false, tags: {} };
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith(TAG_PARAMETER_PREFIX)) {
      const [k, v] = parseTag(key, value);
      spec.tags[k] = v;
    }
  }
  if (params.iops !== undefined) spec.iops = positiveInt('iops', params.iops);
  if (params.iopsPerGB !== undefined) spec.iopsPerGB = positiveInt('iopsPerGB', params.iopsPerGB);
  if (params.allowAutoIOPSPerGBIncrease !== undefined)
    spec.allowAutoIops = bool('allowAutoIOPSPerGBIncrease', params.allowAutoIOPSPerGBIncrease);
  if (params.throughput !== undefined) spec.throughput = positiveInt('throughput', params.throughput);
  if (params.encrypted !== undefined) spec.encrypted = bool('encrypted', params.encrypted);
  if (params.kmsKeyId !== undefined) {
    if (!spec.encrypted) throw invalidArgument('parameter kmsKeyId needs encrypted=true');
    if (params.kmsKeyId === '') throw invalidArgument('parameter kmsKeyId must not be empty');
    spec.kmsKeyId = params.kmsKeyId;
  }
  if (spec.iops !== undefined && spec.iopsPerGB !== undefined)
    throw invalidArgument('parameters iops and iopsPerGB exclude each other: give one');
  const takesIops = IOPS_LIMITS[type] !== undefined;
  if (spec.iops !== undefined && !takesIops) throw invalidArgument(`parameter iops is not allowed for type ${type} (only gp3, io1, io2)`);
  if (spec.iopsPerGB !== undefined && !takesIops)
    throw invalidArgument(`parameter iopsPerGB is not allowed for type ${type} (only gp3, io1, io2)`);
  if ((type === 'io1' || type === 'io2') && spec.iops === undefined && spec.iopsPerGB === undefined) {
    throw invalidArgument(`type ${type} needs parameter iops or iopsPerGB`);
  }
  if (spec.throughput !== undefined && type !== 'gp3')
    throw invalidArgument(`parameter throughput is only allowed for type gp3, not ${type}`);
  if (spec.throughput !== undefined && (spec.throughput < GP3_THROUGHPUT.min || spec.throughput > GP3_THROUGHPUT.max)) {
    throw invalidArgument(`parameter throughput=${spec.throughput}: gp3 allows ${GP3_THROUGHPUT.min} to ${GP3_THROUGHPUT.max} MiB/s`);
  }
  return spec;
}

/** The volume's size for a requested capacity: whole GiB, at least the type's minimum; OUT_OF_RANGE beyond. */
export function sizeForType(type: VolumeType, capacityBytes: number, limitBytes: number): number {
  const GiB = 1024 ** 3;
  const { min, max } = SIZE_LIMITS_GIB[type];
  const size = Math.max(Math.ceil(capacityBytes / GiB), min);
  if (limitBytes > 0 && size * GiB > limitBytes) {
    throw outOfRange(`a ${type} volume is at least ${min} GiB, above limit_bytes ${limitBytes}`);
  }
  if (size > max) throw outOfRange(`a ${type} volume is at most ${max} GiB; ${size} GiB was asked for`);
  return size;
}

/** The IOPS to provision for a volume of sizeGiB, from iops or iopsPerGB, checked against the type's bounds. */
export function iopsFor(spec: VolumeSpec, sizeGiB: number): number | undefined {
  const limits = IOPS_LIMITS[spec.type];
  if (!limits) return undefined;
  let iops = spec.iops ?? (spec.iopsPerGB !== undefined ? spec.iopsPerGB * sizeGiB : undefined);
  if (iops === undefined) return undefined;
  const param = spec.iops !== undefined ? 'iops' : 'iopsPerGB';
  if (spec.iopsPerGB !== undefined && spec.allowAutoIops && iops < limits.min) iops = limits.min;
  iops = Math.min(iops, limits.max);
  if (iops < limits.min)
    throw invalidArgument(
      `parameter ${param} gives ${iops} IOPS; ${spec.type} needs at least ${limits.min} (or set allowAutoIOPSPerGBIncrease=true)`,
    );
  // gp3's baseline (3000) comes with any size; beyond it, and for io1/io2, IOPS are capped per GiB.
  const cap = Math.max(spec.type === 'gp3' ? limits.min : 0, limits.perGiB * sizeGiB);
  if (iops > cap) {
    throw invalidArgument(
      `parameter ${param} gives ${iops} IOPS; ${spec.type} allows at most ${limits.perGiB} IOPS per GiB (${cap} for ${sizeGiB} GiB)`,
    );
  }
  return iops;
}

export interface ModifySpec {
  type?: VolumeType | undefined;
  iops?: number | undefined;
  throughput?: number | undefined;
}

/** ControllerModifyVolume's mutable_parameters (keys were checked by the protocol layer). */
export function parseModifySpec(params: Record<string, string>): ModifySpec {
  const spec: ModifySpec = {};
  if (params.type !== undefined) spec.type = parseType('type', params.type);
  if (params.iops !== undefined) spec.iops = positiveInt('iops', params.iops);
  if (params.throughput !== undefined) spec.throughput = positiveInt('throughput', params.throughput);
  if (spec.throughput !== undefined && spec.type !== undefined && spec.type !== 'gp3') {
    throw invalidArgument(`mutable parameter throughput is only allowed for type gp3, not ${spec.type}`);
  }
  if (spec.iops !== undefined && spec.type !== undefined && IOPS_LIMITS[spec.type] === undefined) {
    throw invalidArgument(`mutable parameter iops is not allowed for type ${spec.type} (only gp3, io1, io2)`);
  }
  return spec;
}
