// Mesos' URI disk profile adaptor (`org_apache_mesos_UriDiskProfileAdaptor`): a JSON document, fetched from
// a URI, mapping each profile name to a CSI plugin type, ONE volume capability and the CreateVolume
// parameters. Mesos calls GetCapacity once per profile that selects the plugin's type, and CreateVolume
// with the profile's capability and parameters. (uri_volume_profile.proto in the Mesos source.)

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export type AccessModeName =
  'SINGLE_NODE_WRITER' | 'SINGLE_NODE_READER_ONLY' | 'MULTI_NODE_READER_ONLY' | 'MULTI_NODE_SINGLE_WRITER' | 'MULTI_NODE_MULTI_WRITER';

/** CSIVolume.VolumeCapability as Mesos writes it in JSON (the csi.v0 and csi.v1 shapes agree on it). */
export interface ProfileCapability {
  mount?: { fs_type?: string; mount_flags?: string[] };
  block?: Record<string, never>;
  access_mode: { mode: AccessModeName };
}

export interface DiskProfile {
  csi_plugin_type_selector?: { plugin_type: string };
  resource_provider_selector?: { resource_providers: { type: string; name: string }[] };
  volume_capabilities: ProfileCapability;
  create_parameters?: Record<string, string>;
}

export interface DiskProfileDocument {
  profile_matrix: Record<string, DiskProfile>;
}

/** Fetches the document the way the adaptor does: file:// or http(s)://. */
export async function fetchProfileDocument(uri: string): Promise<DiskProfileDocument> {
  const text = uri.startsWith('file://') ? await readFile(fileURLToPath(uri), 'utf8') : await (await fetch(uri)).text();
  return JSON.parse(text) as DiskProfileDocument;
}

/** The profiles a plugin of this type serves (the adaptor's csi_plugin_type_selector). */
export function profilesForType(doc: DiskProfileDocument, pluginType: string): Record<string, DiskProfile> {
  return Object.fromEntries(Object.entries(doc.profile_matrix).filter(([, p]) => p.csi_plugin_type_selector?.plugin_type === pluginType));
}

/** A comparable form: Mesos compares capabilities as protobuf messages (devolve(confirmed) == asked). */
export function capabilityKey(c: {
  mount?: { fs_type?: string; mount_flags?: string[] } | null;
  block?: object | null;
  access_mode?: { mode?: string | number } | null;
}): string {
  const access = c.mount ? `mount:${c.mount.fs_type ?? ''}:${(c.mount.mount_flags ?? []).join(',')}` : c.block ? 'block' : 'none';
  return `${access}/${String(c.access_mode?.mode ?? 'UNKNOWN')}`;
}
