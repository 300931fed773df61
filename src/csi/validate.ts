import { posix } from 'node:path';
import { invalidArgument, outOfRange } from '../errors.js';
import {
  ALL_ACCESS_MODES,
  type AccessMode,
  type BackendFeatures,
  type VolumeCapability,
  type TopologyRequirement,
  type VolumeSource,
} from '../backends/backend.js';
import type { VolumeCapability__Output } from './gen/csi/v1/VolumeCapability.js';
import type { CapacityRange__Output } from './gen/csi/v1/CapacityRange.js';
import type { TopologyRequirement__Output } from './gen/csi/v1/TopologyRequirement.js';
import type { VolumeContentSource__Output } from './gen/csi/v1/VolumeContentSource.js';

// Spec limits (CSI "Size Limits"): strings 128 bytes, maps 4 KiB; path fields are exempt but bounded
// by PATH_MAX here so a hostile request cannot make us allocate or log megabytes.
export const MAX_STRING_BYTES = 128;
export const MAX_MAP_BYTES = 4096;
export const MAX_PATH_BYTES = 4096;

const MiB = 1024 * 1024;
/** mkfs refuses smaller devices (xfsprogs >= 5.19 needs 300 MiB). */
export const MIN_FILESYSTEM_BYTES: Record<string, number> = { xfs: 300 * MiB, ext4: 1 * MiB };

const ACCESS_MODES = ALL_ACCESS_MODES;

const READ_ONLY_MODES: ReadonlySet<AccessMode> = new Set(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY']);

export function isReadOnlyMode(mode: AccessMode): boolean {
  return READ_ONLY_MODES.has(mode);
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function hasControlChars(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(s);
}

/** A required identifier-like string (volume id, node id, name). */
export function requireString(value: string | undefined | null, field: string): string {
  if (value === undefined || value === null || value === '') throw invalidArgument(`${field} is required`);
  checkString(value, field);
  return value;
}

export function checkString(value: string, field: string): void {
  if (byteLength(value) > MAX_STRING_BYTES) {
    throw invalidArgument(`${field} is ${byteLength(value)} bytes long; the CSI limit is ${MAX_STRING_BYTES}`);
  }
  if (hasControlChars(value)) throw invalidArgument(`${field} must not contain control characters`);
}

/** A required absolute path (staging or target path). */
export function requirePath(value: string | undefined | null, field: string): string {
  if (value === undefined || value === null || value === '') throw invalidArgument(`${field} is required`);
  if (byteLength(value) > MAX_PATH_BYTES) throw invalidArgument(`${field} is longer than ${MAX_PATH_BYTES} bytes`);
  if (hasControlChars(value)) throw invalidArgument(`${field} must not contain control characters`);
  if (!value.startsWith('/')) throw invalidArgument(`${field} must be an absolute path, got ${JSON.stringify(value)}`);
  if (value.split('/').some((part) => part === '..')) throw invalidArgument(`${field} must not contain '..'`);
  // `/a/./b/` and `/a//b` name /a/b; rmdir and mount(8) treat the spelled forms differently (EINVAL on `.`).
  return posix.resolve(value);
}

export function checkMap(map: Record<string, string> | undefined | null, field: string): Record<string, string> {
  const m = map ?? {};
  let bytes = 0;
  for (const [k, v] of Object.entries(m)) bytes += byteLength(k) + byteLength(v);
  if (bytes > MAX_MAP_BYTES) throw invalidArgument(`${field} is ${bytes} bytes; the CSI limit is ${MAX_MAP_BYTES}`);
  return { ...m };
}

/** Turns a wire volume capability into a validated VolumeCapability, or says precisely what is wrong. */
export function parseCapability(cap: VolumeCapability__Output | null | undefined, field: string): VolumeCapability {
  if (!cap) throw invalidArgument(`${field} is required`);
  const mode = cap.access_mode?.mode;
  if (mode === undefined || !ACCESS_MODES.includes(mode as AccessMode)) {
    throw invalidArgument(`${field}.access_mode.mode must be one of ${ACCESS_MODES.join(', ')}`);
  }
  if (cap.access_type === 'block' && cap.block) {
    return { accessType: 'block', accessMode: mode as AccessMode, fsType: '', mountFlags: [] };
  }
  if (cap.access_type === 'mount' && cap.mount) {
    const fsType = cap.mount.fs_type ?? '';
    if (fsType !== '' && !/^[a-z0-9_.]{1,32}$/.test(fsType)) {
      throw invalidArgument(`${field}.mount.fs_type ${JSON.stringify(fsType)} is not a filesystem type name`);
    }
    return { accessType: 'mount', accessMode: mode as AccessMode, fsType, mountFlags: parseMountFlags(cap.mount.mount_flags ?? [], field) };
  }
  throw invalidArgument(`${field}.access_type must be set to block or mount`);
}

const MOUNT_FLAG = /^[A-Za-z0-9_][A-Za-z0-9_=.:+@/-]*$/;
/** Options that would turn a mount into something else than mounting this volume here. */
const FORBIDDEN_MOUNT_FLAGS = new Set(['bind', 'rbind', 'move', 'remount', 'loop', 'x-mount.mkdir']);

function parseMountFlags(flags: string[], field: string): string[] {
  const out: string[] = [];
  for (const raw of flags) {
    for (const flag of raw.split(',')) {
      if (flag === '') continue;
      if (!MOUNT_FLAG.test(flag) || byteLength(flag) > MAX_STRING_BYTES) {
        throw invalidArgument(`${field}.mount.mount_flags has an invalid flag ${JSON.stringify(flag)}`);
      }
      if (FORBIDDEN_MOUNT_FLAGS.has(flag.split('=')[0]!)) {
        throw invalidArgument(`${field}.mount.mount_flags may not contain ${JSON.stringify(flag)}`);
      }
      out.push(flag);
    }
  }
  return out;
}

export function parseCapabilities(caps: VolumeCapability__Output[] | undefined | null, field: string): VolumeCapability[] {
  if (!caps || caps.length === 0) throw invalidArgument(`${field} must name at least one capability`);
  return caps.map((c, i) => parseCapability(c, `${field}[${i}]`));
}

/** Why a backend cannot serve a capability, or undefined when it can. */
export function unsupportedReason(cap: VolumeCapability, features: BackendFeatures): string | undefined {
  if (!features.accessTypes.includes(cap.accessType)) return `access type ${cap.accessType} is not supported by this backend`;
  if (!features.accessModes.includes(cap.accessMode)) return `access mode ${cap.accessMode} is not supported by this backend`;
  if (cap.accessType === 'mount' && cap.fsType !== '' && features.fsTypes.length > 0 && !features.fsTypes.includes(cap.fsType)) {
    return `fs_type ${cap.fsType} is not supported (supported: ${features.fsTypes.join(', ')})`;
  }
  return undefined;
}

export function parseTopologyRequirement(t: TopologyRequirement__Output | null | undefined): TopologyRequirement | undefined {
  if (!t) return undefined;
  const segments = (list: { segments: Record<string, string> }[] | undefined, f: string) =>
    (list ?? []).map((s, i) => checkMap(s.segments, `accessibility_requirements.${f}[${i}].segments`));
  return { requisite: segments(t.requisite, 'requisite'), preferred: segments(t.preferred, 'preferred') };
}

export function parseContentSource(s: VolumeContentSource__Output | null | undefined): VolumeSource | undefined {
  if (!s) return undefined;
  if (s.type === 'snapshot')
    return { kind: 'snapshot', id: requireString(s.snapshot?.snapshot_id, 'volume_content_source.snapshot.snapshot_id') };
  if (s.type === 'volume') return { kind: 'volume', id: requireString(s.volume?.volume_id, 'volume_content_source.volume.volume_id') };
  throw invalidArgument('volume_content_source must name a snapshot or a volume');
}

export interface CapacityRequest {
  requiredBytes: number;
  limitBytes: number;
}

export function parseCapacityRange(range: CapacityRange__Output | null | undefined): CapacityRequest {
  const requiredBytes = Number(range?.required_bytes ?? 0);
  const limitBytes = Number(range?.limit_bytes ?? 0);
  if (!Number.isFinite(requiredBytes) || requiredBytes < 0) throw invalidArgument('capacity_range.required_bytes must not be negative');
  if (!Number.isFinite(limitBytes) || limitBytes < 0) throw invalidArgument('capacity_range.limit_bytes must not be negative');
  if (limitBytes > 0 && requiredBytes > limitBytes) {
    throw invalidArgument(`capacity_range.required_bytes (${requiredBytes}) is larger than limit_bytes (${limitBytes})`);
  }
  return { requiredBytes, limitBytes };
}

/**
 * The size to allocate for a capacity range: required rounded up to the backend's unit, the default when
 * nothing is required, never below what the filesystem needs; OUT_OF_RANGE when the range cannot be met.
 */
export function resolveCapacity(range: CapacityRequest, features: BackendFeatures, fsType: string): number {
  const unit = features.allocationUnitBytes;
  const floor = Math.max(features.minVolumeBytes, MIN_FILESYSTEM_BYTES[fsType] ?? 0);
  let size = range.requiredBytes > 0 ? roundUp(range.requiredBytes, unit) : features.defaultVolumeBytes;
  if (range.requiredBytes === 0 && range.limitBytes > 0 && size > range.limitBytes) size = roundDown(range.limitBytes, unit);
  size = Math.max(size, roundUp(floor, unit));
  if (range.limitBytes > 0 && size > range.limitBytes) {
    throw outOfRange(
      `no size between ${range.requiredBytes} and ${range.limitBytes} bytes can be allocated: sizes are multiples of ${unit} bytes` +
        ` and at least ${roundUp(floor, unit)} bytes${fsType ? ` for ${fsType}` : ''}`,
    );
  }
  if (size > features.maxVolumeBytes) {
    throw outOfRange(`${size} bytes is more than the largest volume this backend makes (${features.maxVolumeBytes} bytes)`);
  }
  return size;
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

export function roundDown(n: number, unit: number): number {
  return Math.floor(n / unit) * unit;
}

/** Every parameter key must be one the backend knows; the message names the first unknown one. */
export function checkParameters(params: Record<string, string>, features: BackendFeatures): Record<string, string> {
  const p = checkMap(params, 'parameters');
  for (const key of Object.keys(p)) {
    if (!acceptsKey(features.parameterKeys, key) && !key.startsWith('csi.storage.k8s.io/')) {
      const known = features.parameterKeys.length ? features.parameterKeys.join(', ') : 'none';
      throw invalidArgument(`unknown parameter ${JSON.stringify(key)} (this backend accepts: ${known})`);
    }
  }
  return p;
}

/** Snapshot (and group snapshot) parameters: only the keys the backend declares, plus the CO's own. */
export function checkSnapshotParameters(params: Record<string, string>, keys: string[]): Record<string, string> {
  const p = checkMap(params, 'parameters');
  for (const key of Object.keys(p)) {
    if (!keys.includes(key) && !key.startsWith('csi.storage.k8s.io/')) {
      const known = keys.length ? keys.join(', ') : 'none';
      throw invalidArgument(`unknown snapshot parameter ${JSON.stringify(key)} (this backend accepts: ${known})`);
    }
  }
  return p;
}

/**
 * The size to grow a volume to: required_bytes rounded up to the backend's unit, or the current size when
 * that is already enough. OUT_OF_RANGE for a shrink (limit_bytes below the current size) or a size the
 * backend cannot make.
 */
export function resolveExpansion(range: CapacityRequest, features: BackendFeatures, currentBytes: number): number {
  const { requiredBytes, limitBytes } = range;
  if (requiredBytes === 0 && limitBytes === 0) throw invalidArgument('capacity_range must set required_bytes or limit_bytes');
  if (limitBytes > 0 && limitBytes < currentBytes) {
    throw outOfRange(`volume is ${currentBytes} bytes and cannot shrink: limit_bytes ${limitBytes} is below its size`);
  }
  const size = Math.max(roundUp(requiredBytes, features.allocationUnitBytes), currentBytes);
  if (limitBytes > 0 && size > limitBytes) {
    throw outOfRange(
      `no size between ${requiredBytes} and ${limitBytes} bytes can be allocated: sizes are multiples of ${features.allocationUnitBytes} bytes`,
    );
  }
  if (size > features.maxVolumeBytes)
    throw outOfRange(`${size} bytes is more than the largest volume this backend makes (${features.maxVolumeBytes} bytes)`);
  return size;
}

/** Whether a key list names key; an entry ending in '*' accepts every key with that prefix (tagSpecification_*). */
export function acceptsKey(keys: string[], key: string): boolean {
  return keys.some((k) => (k.endsWith('*') ? key.startsWith(k.slice(0, -1)) : k === key));
}
