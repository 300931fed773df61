import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccessType } from '../backend.js';
import { failedPrecondition } from '../../errors.js';
import { atomicWriteFile } from '../../os/index.js';

// Snapshots and group snapshots in the loop pool:
//   <pool>/snapshots/<snap-id>.img   a full copy of the volume's backing file (reflink or sparse copy)
//   <pool>/snapshots/<snap-id>.json  its metadata, written atomically after the copy is on disk
//   <pool>/groups/<group-id>.json    a group snapshot: written after every member snapshot's metadata
// The metadata file is what makes a snapshot exist: an image without it is a leftover of a create that
// crashed part-way and is removed, never handed out. Ids derive from the CO's names, like volume ids, so a
// retried create lands on the same files and no request can name a path outside the pool.

export const SNAPSHOT_ID_PATTERN = /^snap-[0-9a-f]{24}$/;
export const GROUP_ID_PATTERN = /^group-[0-9a-f]{24}$/;

export interface SnapshotMeta {
  version: 1;
  id: string;
  name: string;
  sourceVolumeId: string;
  sizeBytes: number;
  /** what the source volume was: a clone of a mount snapshot inherits its filesystem */
  accessType: AccessType;
  fsType: string;
  createdAt: string;
  groupSnapshotId?: string;
}

export interface GroupMeta {
  version: 1;
  id: string;
  name: string;
  sourceVolumeIds: string[];
  snapshotIds: string[];
  createdAt: string;
}

const hash = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 24);

export class SnapshotStore {
  readonly snapshotsDir: string;
  readonly groupsDir: string;

  constructor(root: string) {
    this.snapshotsDir = join(root, 'snapshots');
    this.groupsDir = join(root, 'groups');
  }

  async init(): Promise<void> {
    await mkdir(this.snapshotsDir, { recursive: true, mode: 0o700 });
    await mkdir(this.groupsDir, { recursive: true, mode: 0o700 });
  }

  static snapshotIdForName(name: string): string {
    return `snap-${hash(`snapshot\0${name}`)}`;
  }

  /** A member of a group snapshot: one per (group, volume), never equal to a named snapshot's id. */
  static memberSnapshotId(groupId: string, volumeId: string): string {
    return `snap-${hash(`member\0${groupId}\0${volumeId}`)}`;
  }

  static groupIdForName(name: string): string {
    return `group-${hash(`group\0${name}`)}`;
  }

  static isSnapshotId(id: string): boolean {
    return SNAPSHOT_ID_PATTERN.test(id);
  }

  static isGroupId(id: string): boolean {
    return GROUP_ID_PATTERN.test(id);
  }

  imagePath(id: string): string {
    return join(this.snapshotsDir, `${id}.img`);
  }

  private snapshotMetaPath(id: string): string {
    return join(this.snapshotsDir, `${id}.json`);
  }

  private groupMetaPath(id: string): string {
    return join(this.groupsDir, `${id}.json`);
  }

  async readSnapshot(id: string): Promise<SnapshotMeta | undefined> {
    if (!SnapshotStore.isSnapshotId(id)) return undefined;
    const text = await readIfExists(this.snapshotMetaPath(id));
    return text === undefined ? undefined : parseSnapshotMeta(id, text, this.snapshotMetaPath(id));
  }

  async writeSnapshot(meta: SnapshotMeta): Promise<void> {
    await atomicWriteFile(this.snapshotMetaPath(meta.id), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  }

  /** Metadata first, so a crash in between leaves an image without metadata: a leftover, not a snapshot. */
  async removeSnapshot(id: string): Promise<void> {
    await rm(this.snapshotMetaPath(id), { force: true });
    await this.removeImage(id);
  }

  async removeImage(id: string): Promise<void> {
    await rm(this.imagePath(id), { force: true });
  }

  async listSnapshotIds(): Promise<string[]> {
    return idsIn(this.snapshotsDir, (id) => SnapshotStore.isSnapshotId(id));
  }

  async readGroup(id: string): Promise<GroupMeta | undefined> {
    if (!SnapshotStore.isGroupId(id)) return undefined;
    const text = await readIfExists(this.groupMetaPath(id));
    return text === undefined ? undefined : parseGroupMeta(id, text, this.groupMetaPath(id));
  }

  async writeGroup(meta: GroupMeta): Promise<void> {
    await atomicWriteFile(this.groupMetaPath(meta.id), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  }

  async removeGroup(id: string): Promise<void> {
    await rm(this.groupMetaPath(id), { force: true });
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function idsIn(dir: string, valid: (id: string) => boolean): Promise<string[]> {
  const ids: string[] = [];
  for (const n of await readdir(dir)) {
    if (!n.endsWith('.json')) continue;
    const id = n.slice(0, -5);
    if (valid(id)) ids.push(id);
  }
  return ids.sort();
}

function parseJson<T>(what: string, text: string, path: string): Partial<T> {
  try {
    const v = JSON.parse(text) as unknown;
    if (v !== null && typeof v === 'object') return v;
  } catch {
    // reported below
  }
  throw damaged(what, path);
}

const damaged = (what: string, path: string) =>
  failedPrecondition(`metadata of ${what} (${path}) is damaged; repair or remove it by hand, its data file is kept`);

export function parseSnapshotMeta(id: string, text: string, path: string): SnapshotMeta {
  const m = parseJson<SnapshotMeta>(`snapshot ${id}`, text, path);
  const ok =
    m.version === 1 &&
    m.id === id &&
    typeof m.name === 'string' &&
    typeof m.sourceVolumeId === 'string' &&
    typeof m.sizeBytes === 'number' &&
    (m.accessType === 'mount' || m.accessType === 'block') &&
    typeof m.fsType === 'string' &&
    typeof m.createdAt === 'string' &&
    (m.groupSnapshotId === undefined || typeof m.groupSnapshotId === 'string');
  if (!ok) throw damaged(`snapshot ${id}`, path);
  return m as SnapshotMeta;
}

export function parseGroupMeta(id: string, text: string, path: string): GroupMeta {
  const m = parseJson<GroupMeta>(`group snapshot ${id}`, text, path);
  const strings = (a: unknown) => Array.isArray(a) && a.every((s) => typeof s === 'string');
  const ok =
    m.version === 1 &&
    m.id === id &&
    typeof m.name === 'string' &&
    strings(m.sourceVolumeIds) &&
    strings(m.snapshotIds) &&
    typeof m.createdAt === 'string';
  if (!ok) throw damaged(`group snapshot ${id}`, path);
  return m as GroupMeta;
}
