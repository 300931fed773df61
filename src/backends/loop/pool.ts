import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccessType, VolumeSource } from '../backend.js';
import { failedPrecondition } from '../../errors.js';
import { atomicWriteFile } from '../../os/index.js';

// The loop pool on disk: `<pool>/volumes/<id>.img` (sparse backing file) and `<pool>/volumes/<id>.json`
// (metadata, written atomically). It is the only source of truth: nothing is kept in memory.
// Volume ids are derived from the CO's name, so the name lookup that makes CreateVolume idempotent is one
// file read, a retried create after a crash lands on the same files, and no request can name a path:
// an id that does not match ID_PATTERN is simply not a volume of this pool.

export const ID_PATTERN = /^vol-[0-9a-f]{24}$/;

export interface VolumeMeta {
  version: 1;
  id: string;
  name: string;
  capacityBytes: number;
  accessType: AccessType;
  fsType: string;
  parameters: Record<string, string>;
  source?: VolumeSource;
  createdAt: string;
}

export class Pool {
  readonly volumesDir: string;

  constructor(readonly root: string) {
    this.volumesDir = join(root, 'volumes');
  }

  async init(): Promise<void> {
    await mkdir(this.volumesDir, { recursive: true, mode: 0o700 });
  }

  static idForName(name: string): string {
    return `vol-${createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 24)}`;
  }

  static isId(id: string): boolean {
    return ID_PATTERN.test(id);
  }

  imagePath(id: string): string {
    return join(this.volumesDir, `${id}.img`);
  }

  metaPath(id: string): string {
    return join(this.volumesDir, `${id}.json`);
  }

  /** The metadata, undefined when the volume does not exist; FAILED_PRECONDITION when it is damaged. */
  async readMeta(id: string): Promise<VolumeMeta | undefined> {
    if (!Pool.isId(id)) return undefined;
    let text: string;
    try {
      text = await readFile(this.metaPath(id), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return parseMeta(id, text, this.metaPath(id));
  }

  async writeMeta(meta: VolumeMeta): Promise<void> {
    await atomicWriteFile(this.metaPath(meta.id), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  }

  async removeMeta(id: string): Promise<void> {
    await rm(this.metaPath(id), { force: true });
  }

  async removeImage(id: string): Promise<void> {
    await rm(this.imagePath(id), { force: true });
  }

  /** Every volume id with metadata, sorted. */
  async listIds(): Promise<string[]> {
    const names = await readdir(this.volumesDir);
    const ids: string[] = [];
    for (const n of names) {
      if (n.endsWith('.json')) {
        const id = n.slice(0, -5);
        if (Pool.isId(id)) ids.push(id);
      }
    }
    return ids.sort();
  }

  async freeBytes(): Promise<number> {
    const s = await statfs(this.root);
    return Number(s.bavail) * Number(s.bsize);
  }
}

export function parseMeta(id: string, text: string, path: string): VolumeMeta {
  let m: Partial<VolumeMeta>;
  try {
    m = JSON.parse(text) as Partial<VolumeMeta>;
  } catch (e) {
    throw failedPrecondition(
      `metadata of volume ${id} (${path}) is damaged (${(e as Error).message}); repair or remove it by hand, its data file is kept`,
    );
  }
  const ok =
    m !== null &&
    typeof m === 'object' &&
    m.version === 1 &&
    m.id === id &&
    typeof m.name === 'string' &&
    typeof m.capacityBytes === 'number' &&
    (m.accessType === 'mount' || m.accessType === 'block') &&
    typeof m.fsType === 'string' &&
    typeof m.parameters === 'object' &&
    m.parameters !== null;
  if (!ok)
    throw failedPrecondition(
      `metadata of volume ${id} (${path}) is damaged (missing or wrong fields); repair or remove it by hand, its data file is kept`,
    );
  return m as VolumeMeta;
}
