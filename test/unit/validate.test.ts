import { describe, expect, it } from 'vitest';
import type { BackendFeatures } from '../../src/backends/backend.js';
import { CsiError } from '../../src/errors.js';
import {
  checkMap,
  checkParameters,
  parseCapability,
  parseCapacityRange,
  requirePath,
  requireString,
  resolveCapacity,
} from '../../src/csi/validate.js';
import type { VolumeCapability__Output } from '../../src/csi/gen/csi/v1/VolumeCapability.js';

const MiB = 1024 * 1024;
const features: BackendFeatures = {
  accessTypes: ['mount', 'block'],
  accessModes: ['SINGLE_NODE_WRITER'],
  fsTypes: ['ext4', 'xfs'],
  defaultFsType: 'ext4',
  nodeSource: 'block',
  listVolumesPublishedNodes: true,
  volumeCondition: true,
  minVolumeBytes: MiB,
  maxVolumeBytes: 1024 * MiB,
  allocationUnitBytes: MiB,
  defaultVolumeBytes: 100 * MiB,
  parameterKeys: ['fsType'],
  topologyKeys: [],
  cloneFromVolume: false,
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof CsiError) return e.code;
    throw e;
  }
  return undefined;
}

const mountCap = (extra: Partial<VolumeCapability__Output['mount'] & object> = {}): VolumeCapability__Output => ({
  access_type: 'mount',
  mount: { fs_type: '', mount_flags: [], volume_mount_group: '', ...extra },
  block: null,
  access_mode: { mode: 'SINGLE_NODE_WRITER' },
});

describe('capacity rounding', () => {
  it('rounds required_bytes up to the allocation unit', () => {
    expect(resolveCapacity({ requiredBytes: 1, limitBytes: 0 }, features, 'ext4')).toBe(MiB);
    expect(resolveCapacity({ requiredBytes: MiB + 1, limitBytes: 0 }, features, 'ext4')).toBe(2 * MiB);
    expect(resolveCapacity({ requiredBytes: 5 * MiB, limitBytes: 5 * MiB }, features, 'ext4')).toBe(5 * MiB);
  });

  it('uses the default size when nothing is required, capped by the limit', () => {
    expect(resolveCapacity({ requiredBytes: 0, limitBytes: 0 }, features, 'ext4')).toBe(100 * MiB);
    expect(resolveCapacity({ requiredBytes: 0, limitBytes: 10 * MiB + 5 }, features, 'ext4')).toBe(10 * MiB);
  });

  it('is OUT_OF_RANGE when rounding passes the limit, or the size passes the maximum', () => {
    expect(codeOf(() => resolveCapacity({ requiredBytes: MiB + 1, limitBytes: MiB + 2 }, features, 'ext4'))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => resolveCapacity({ requiredBytes: 2048 * MiB, limitBytes: 0 }, features, 'ext4'))).toBe('OUT_OF_RANGE');
  });

  it('raises a small xfs volume to what mkfs.xfs needs, and refuses when the limit forbids it', () => {
    expect(resolveCapacity({ requiredBytes: 64 * MiB, limitBytes: 0 }, features, 'xfs')).toBe(300 * MiB);
    expect(codeOf(() => resolveCapacity({ requiredBytes: 64 * MiB, limitBytes: 64 * MiB }, features, 'xfs'))).toBe('OUT_OF_RANGE');
  });

  it('rejects negative sizes and required above limit as INVALID_ARGUMENT', () => {
    expect(codeOf(() => parseCapacityRange({ required_bytes: -1, limit_bytes: 0 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCapacityRange({ required_bytes: 10, limit_bytes: 5 }))).toBe('INVALID_ARGUMENT');
    expect(parseCapacityRange(null)).toEqual({ requiredBytes: 0, limitBytes: 0 });
  });
});

describe('field validation', () => {
  it('requires strings and enforces the 128-byte limit and no control characters', () => {
    expect(codeOf(() => requireString('', 'name'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => requireString('x'.repeat(129), 'name'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => requireString('a\nb', 'name'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => requireString('a\u0000b', 'name'))).toBe('INVALID_ARGUMENT');
    expect(requireString('é'.repeat(64), 'name')).toBe('é'.repeat(64)); // 128 bytes exactly
    expect(codeOf(() => requireString('é'.repeat(65), 'name'))).toBe('INVALID_ARGUMENT');
  });

  it('accepts only absolute paths without ..', () => {
    expect(requirePath('/var/lib/x', 'target_path')).toBe('/var/lib/x');
    expect(requirePath('/var/lib/./x//y/', 'target_path')).toBe('/var/lib/x/y'); // one spelling for rmdir and mount
    expect(codeOf(() => requirePath('relative/x', 'target_path'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => requirePath('/a/../../etc', 'target_path'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => requirePath('/a/\u0000', 'target_path'))).toBe('INVALID_ARGUMENT');
  });

  it('limits maps to 4 KiB', () => {
    expect(checkMap({ a: 'b' }, 'parameters')).toEqual({ a: 'b' });
    expect(codeOf(() => checkMap({ a: 'x'.repeat(4096) }, 'parameters'))).toBe('INVALID_ARGUMENT');
  });

  it('names an unknown parameter and accepts the CO-added csi.storage.k8s.io ones', () => {
    expect(() => checkParameters({ colour: 'blue' }, features)).toThrow(/"colour"/);
    expect(checkParameters({ fsType: 'xfs', 'csi.storage.k8s.io/pvc/name': 'x' }, features)).toHaveProperty('fsType', 'xfs');
  });
});

describe('volume capabilities', () => {
  it('parses a mount capability and splits comma-joined flags', () => {
    expect(parseCapability(mountCap({ fs_type: 'xfs', mount_flags: ['noatime,nodiratime', 'discard'] }), 'cap')).toEqual({
      accessType: 'mount',
      accessMode: 'SINGLE_NODE_WRITER',
      fsType: 'xfs',
      mountFlags: ['noatime', 'nodiratime', 'discard'],
    });
  });

  it('refuses a missing access type or mode, and flags that would change what is mounted', () => {
    expect(codeOf(() => parseCapability({ ...mountCap(), access_type: undefined, mount: null }, 'cap'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCapability({ ...mountCap(), access_mode: { mode: 'UNKNOWN' } }, 'cap'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCapability(mountCap({ mount_flags: ['bind'] }), 'cap'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCapability(mountCap({ mount_flags: ['a b'] }), 'cap'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => parseCapability(mountCap({ fs_type: '../../x' }), 'cap'))).toBe('INVALID_ARGUMENT');
  });
});
