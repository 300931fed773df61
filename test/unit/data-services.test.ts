// The protocol layer's rules for data services (expansion sizes, snapshot parameters) and the loop pool's
// snapshot metadata: ids derived from names, and damaged files refused rather than trusted.
import { describe, expect, it } from 'vitest';
import type { BackendFeatures } from '../../src/backends/backend.js';
import { SnapshotStore, parseGroupMeta, parseSnapshotMeta } from '../../src/backends/loop/snapshot-store.js';
import { toWireSnapshot, toWireTimestamp } from '../../src/csi/convert.js';
import { checkSnapshotParameters, resolveExpansion } from '../../src/csi/validate.js';
import { CsiError } from '../../src/errors.js';

const MiB = 1024 * 1024;
const features = {
  allocationUnitBytes: MiB,
  maxVolumeBytes: 1024 * MiB,
} as BackendFeatures;
const snapshotParameterKeys = ['tier'];

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CsiError) return e.code;
    throw e;
  }
  return 'OK';
}

describe('resolveExpansion', () => {
  it('rounds required_bytes up to the allocation unit', () => {
    expect(resolveExpansion({ requiredBytes: 100 * MiB + 1, limitBytes: 0 }, features, 64 * MiB)).toBe(101 * MiB);
  });

  it('keeps the current size when it already satisfies the range (a retried expansion)', () => {
    expect(resolveExpansion({ requiredBytes: 32 * MiB, limitBytes: 0 }, features, 64 * MiB)).toBe(64 * MiB);
    expect(resolveExpansion({ requiredBytes: 64 * MiB, limitBytes: 64 * MiB }, features, 64 * MiB)).toBe(64 * MiB);
  });

  it('is OUT_OF_RANGE for a shrink, a range that misses the unit grid, or more than the maximum', () => {
    expect(codeOf(() => resolveExpansion({ requiredBytes: 32 * MiB, limitBytes: 32 * MiB }, features, 64 * MiB))).toBe('OUT_OF_RANGE');
    expect(codeOf(() => resolveExpansion({ requiredBytes: 100 * MiB + 1, limitBytes: 100 * MiB + 2 }, features, 64 * MiB))).toBe(
      'OUT_OF_RANGE',
    );
    expect(codeOf(() => resolveExpansion({ requiredBytes: 2048 * MiB, limitBytes: 0 }, features, 64 * MiB))).toBe('OUT_OF_RANGE');
  });

  it('is INVALID_ARGUMENT for an empty range', () => {
    expect(codeOf(() => resolveExpansion({ requiredBytes: 0, limitBytes: 0 }, features, 64 * MiB))).toBe('INVALID_ARGUMENT');
  });
});

describe('checkSnapshotParameters', () => {
  it('accepts declared keys and the CO its own, and names the first unknown key', () => {
    expect(checkSnapshotParameters({ tier: 'cold', 'csi.storage.k8s.io/volumesnapshot/name': 'x' }, snapshotParameterKeys)).toEqual({
      tier: 'cold',
      'csi.storage.k8s.io/volumesnapshot/name': 'x',
    });
    expect(() => checkSnapshotParameters({ speed: 'fast' }, snapshotParameterKeys)).toThrow(/unknown snapshot parameter "speed"/);
  });
});

describe('loop snapshot metadata', () => {
  it('derives distinct, stable ids: a named snapshot never collides with a group member', () => {
    const id = SnapshotStore.snapshotIdForName('daily');
    expect(id).toBe(SnapshotStore.snapshotIdForName('daily'));
    expect(SnapshotStore.isSnapshotId(id)).toBe(true);
    const group = SnapshotStore.groupIdForName('daily');
    expect(SnapshotStore.isGroupId(group)).toBe(true);
    expect(SnapshotStore.memberSnapshotId(group, 'vol-1')).not.toBe(id);
    expect(SnapshotStore.isSnapshotId('../volumes/vol-000000000000000000000000')).toBe(false);
  });

  it('refuses damaged or foreign metadata with FAILED_PRECONDITION', () => {
    const id = SnapshotStore.snapshotIdForName('s');
    const good = {
      version: 1,
      id,
      name: 's',
      sourceVolumeId: 'vol-x',
      sizeBytes: 1,
      accessType: 'mount',
      fsType: 'ext4',
      createdAt: '2026-01-01T00:00:00Z',
    };
    expect(parseSnapshotMeta(id, JSON.stringify(good), 'p')).toEqual(good);
    expect(codeOf(() => parseSnapshotMeta(id, '{"version":1', 'p'))).toBe('FAILED_PRECONDITION');
    expect(codeOf(() => parseSnapshotMeta(id, JSON.stringify({ ...good, id: 'snap-other' }), 'p'))).toBe('FAILED_PRECONDITION');
    expect(
      codeOf(() =>
        parseGroupMeta(
          'group-x',
          JSON.stringify({ version: 1, id: 'group-x', name: 'g', sourceVolumeIds: [1], snapshotIds: [], createdAt: '' }),
          'p',
        ),
      ),
    ).toBe('FAILED_PRECONDITION');
  });
});

describe('snapshot wire form', () => {
  it('carries the creation time to the millisecond and an empty group id outside groups', () => {
    expect(toWireTimestamp(new Date(1_700_000_000_123))).toEqual({ seconds: 1_700_000_000, nanos: 123_000_000 });
    const wire = toWireSnapshot({ id: 's', name: 'n', sourceVolumeId: 'v', sizeBytes: 5, creationTime: new Date(0), readyToUse: true });
    expect(wire).toMatchObject({ snapshot_id: 's', source_volume_id: 'v', size_bytes: 5, ready_to_use: true, group_snapshot_id: '' });
  });
});
