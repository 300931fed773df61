import type { VolumeCapability__Output as V1Capability } from '../csi/gen/csi/v1/VolumeCapability.js';
import type { Volume as V1Volume } from '../csi/gen/csi/v1/Volume.js';
import type { Topology__Output as V1Topology } from '../csi/gen/csi/v1/Topology.js';
import type { TopologyRequirement__Output as V1TopologyRequirement } from '../csi/gen/csi/v1/TopologyRequirement.js';
import type { VolumeContentSource__Output as V1ContentSource } from '../csi/gen/csi/v1/VolumeContentSource.js';
import type { VolumeCapability__Output as V0Capability } from './gen/csi/v0/VolumeCapability.js';
import type { Volume as V0Volume } from './gen/csi/v0/Volume.js';
import type { Topology__Output as V0Topology } from './gen/csi/v0/Topology.js';
import type { TopologyRequirement__Output as V0TopologyRequirement } from './gen/csi/v0/TopologyRequirement.js';
import type { VolumeContentSource__Output as V0ContentSource } from './gen/csi/v0/VolumeContentSource.js';

// The messages csi.v0 and csi.v1 share in meaning but not in shape, converted in one place. v0's access
// modes are v1's first five under the same names; v1's mount `volume_mount_group` does not exist in v0.

export function capabilityToV1(c: V0Capability | null): V1Capability | null {
  if (!c) return null;
  return {
    ...(c.block ? { block: {} } : {}),
    ...(c.mount ? { mount: { fs_type: c.mount.fs_type, mount_flags: c.mount.mount_flags, volume_mount_group: '' } } : {}),
    ...(c.access_type ? { access_type: c.access_type } : {}),
    access_mode: c.access_mode ? { mode: c.access_mode.mode } : null,
  };
}

export function capabilitiesToV1(caps: V0Capability[]): V1Capability[] {
  return caps.map((c) => capabilityToV1(c)).filter((c): c is V1Capability => c !== null);
}

export function topologyToV1(t: V0Topology | null): V1Topology | null {
  return t ? { segments: t.segments } : null;
}

export function topologyRequirementToV1(t: V0TopologyRequirement | null): V1TopologyRequirement | null {
  if (!t) return null;
  return { requisite: t.requisite.map((s) => ({ segments: s.segments })), preferred: t.preferred.map((s) => ({ segments: s.segments })) };
}

export function contentSourceToV1(s: V0ContentSource | null): V1ContentSource | null {
  return s?.snapshot ? { type: 'snapshot', snapshot: { snapshot_id: s.snapshot.id } } : null;
}

/** v1 Volume -> v0 Volume: `volume_id` is `id`, `volume_context` is `attributes`; v0 has no volume source. */
export function volumeToV0(v: V1Volume | null | undefined): V0Volume | null {
  if (!v) return null;
  const snapshot = v.content_source?.snapshot;
  return {
    capacity_bytes: v.capacity_bytes ?? 0,
    id: v.volume_id ?? '',
    attributes: v.volume_context ?? {},
    content_source: snapshot ? { snapshot: { id: snapshot.snapshot_id ?? '' } } : null,
    accessible_topology: (v.accessible_topology ?? []).map((t) => ({ segments: t.segments ?? {} })),
  };
}
