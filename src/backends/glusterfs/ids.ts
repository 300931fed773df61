import { createHash } from 'node:crypto';

// Volume ids, strictly patterned so that no id can name a path outside its place: a subdir volume is
// `gs:<hosting volume>:<24 hex>` (directory /csi-<hex> on the hosting volume), a volume-layout volume is
// `gv-<24 hex>`, which is also its gluster volume name. The hex is derived from the CO's name, so
// CreateVolume finds an earlier attempt without any local state; the record on the gluster side holds
// the full name and settles a (96-bit) hash collision.

export type Layout = 'subdir' | 'volume';

export interface SubdirRef {
  layout: 'subdir';
  id: string;
  hosting: string;
  hex: string;
  /** the directory on the hosting volume, from its root */
  dir: string;
}

export interface GlusterVolumeRef {
  layout: 'volume';
  id: string;
  /** the gluster volume's name */
  volume: string;
  hex: string;
}

export type VolumeRef = SubdirRef | GlusterVolumeRef;

const GLUSTER_VOLUME_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const SUBDIR_ID = /^gs:([A-Za-z0-9_-]{1,64}):([0-9a-f]{24})$/;
const VOLUME_ID = /^gv-([0-9a-f]{24})$/;

export function isGlusterVolumeName(name: string): boolean {
  return GLUSTER_VOLUME_NAME.test(name);
}

export function hexForName(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 24);
}

export function subdirRef(hosting: string, hex: string): SubdirRef {
  return { layout: 'subdir', id: `gs:${hosting}:${hex}`, hosting, hex, dir: `/csi-${hex}` };
}

export function volumeRef(hex: string): GlusterVolumeRef {
  return { layout: 'volume', id: `gv-${hex}`, volume: `gv-${hex}`, hex };
}

/** undefined for anything this backend could not have issued */
export function parseVolumeId(id: string): VolumeRef | undefined {
  const s = SUBDIR_ID.exec(id);
  if (s) return subdirRef(s[1]!, s[2]!);
  const v = VOLUME_ID.exec(id);
  if (v) return volumeRef(v[1]!);
  return undefined;
}

/** The path a client mounts: /<hosting>/csi-<hex> (a subdirectory mount) or /gv-<hex>. */
export function mountPath(ref: VolumeRef): string {
  return ref.layout === 'subdir' ? `/${ref.hosting}${ref.dir}` : `/${ref.volume}`;
}

/** What is recorded on the gluster side (directory xattr or volume option), base64url JSON. */
export interface VolumeRecord {
  v: 1;
  name: string;
  layout: Layout;
  parameters: Record<string, string>;
  createdAt: string;
}

export function encodeRecord(r: VolumeRecord): string {
  return Buffer.from(JSON.stringify(r), 'utf8').toString('base64url');
}

/** undefined for a value that is not a record we wrote */
export function decodeRecord(value: string | undefined): VolumeRecord | undefined {
  if (value === undefined || !/^[A-Za-z0-9_-]+$/.test(value.trim())) return undefined;
  try {
    const r = JSON.parse(Buffer.from(value.trim(), 'base64url').toString('utf8')) as Partial<VolumeRecord>;
    if (r.v !== 1 || typeof r.name !== 'string' || (r.layout !== 'subdir' && r.layout !== 'volume')) return undefined;
    const parameters = typeof r.parameters === 'object' && r.parameters !== null ? r.parameters : {};
    return { v: 1, name: r.name, layout: r.layout, parameters, createdAt: typeof r.createdAt === 'string' ? r.createdAt : '' };
  } catch {
    return undefined;
  }
}
