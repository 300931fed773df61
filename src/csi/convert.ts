import type { Volume } from '../backends/backend.js';
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
