import type { GroupSnapshot, Snapshot, Volume } from '../backends/backend.js';
import type { Snapshot as WireSnapshot } from './gen/csi/v1/Snapshot.js';
import type { VolumeGroupSnapshot as WireGroupSnapshot } from './gen/csi/v1/VolumeGroupSnapshot.js';
import type { Timestamp } from './gen/google/protobuf/Timestamp.js';
import type { Volume as WireVolume } from './gen/csi/v1/Volume.js';
import type { VolumeCondition as WireCondition } from './gen/csi/v1/VolumeCondition.js';

// Storage-layer values to wire messages, in one place.

export function toWireVolume(v: Volume): WireVolume {
  return {
    volume_id: v.id,
    capacity_bytes: v.capacityBytes,
    volume_context: v.context,
    content_source: v.source
      ? v.source.kind === 'snapshot'
        ? { snapshot: { snapshot_id: v.source.id } }
        : { volume: { volume_id: v.source.id } }
      : null,
    accessible_topology: v.accessibleTopology.map((segments) => ({ segments })),
  };
}

export function toWireCondition(v: Volume): WireCondition {
  return v.condition ?? { abnormal: false, message: 'volume is healthy' };
}

export function toWireTimestamp(d: Date): Timestamp {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export function toWireSnapshot(s: Snapshot): WireSnapshot {
  return {
    snapshot_id: s.id,
    source_volume_id: s.sourceVolumeId,
    size_bytes: s.sizeBytes,
    creation_time: toWireTimestamp(s.creationTime),
    ready_to_use: s.readyToUse,
    group_snapshot_id: s.groupSnapshotId ?? '',
  };
}

export function toWireGroupSnapshot(g: GroupSnapshot): WireGroupSnapshot {
  return {
    group_snapshot_id: g.id,
    snapshots: g.snapshots.map(toWireSnapshot),
    creation_time: toWireTimestamp(g.creationTime),
    ready_to_use: g.readyToUse,
  };
}
