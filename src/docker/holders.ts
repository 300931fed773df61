import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failedPrecondition } from '../errors.js';
import { atomicWriteFile } from '../os/index.js';

// Who holds each volume mounted through the Docker API on this node: Docker sends a random ID per
// container mount, dvdcli (Mesos) sends none, so '' is the one holder of all of Mesos' tasks. The record
// is on disk (written whole, atomically), so a plugin killed and restarted keeps every count.

export interface HeldVolume {
  volumeId: string;
  holders: string[];
}

interface HoldersFile {
  version: 1;
  volumes: Record<string, HeldVolume>;
}

/** The file's name starts with '.', which no volume name (and so no volume directory) can. */
export const HOLDERS_FILE = '.mounts.json';

export class HolderStore {
  private volumes = new Map<string, HeldVolume>();
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly root: string) {}

  get path(): string {
    return join(this.root, HOLDERS_FILE);
  }

  /** Reads the record; a missing file is no holders, a damaged one stops start-up rather than forget mounts. */
  async load(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o750 });
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    this.volumes = parseHolders(text, this.path);
  }

  holdersOf(name: string): string[] {
    return [...(this.volumes.get(name)?.holders ?? [])];
  }

  volumeIdOf(name: string): string | undefined {
    return this.volumes.get(name)?.volumeId;
  }

  /** The Docker name and holders of a volume id, when it is held. */
  findById(volumeId: string): { name: string; holders: string[] } | undefined {
    for (const [name, v] of this.volumes) if (v.volumeId === volumeId && v.holders.length > 0) return { name, holders: [...v.holders] };
    return undefined;
  }

  names(): string[] {
    return [...this.volumes.keys()];
  }

  /** Records a holder (idempotent) and waits until the record is on disk. */
  add(name: string, volumeId: string, holder: string): Promise<void> {
    return this.change((volumes) => {
      const v = volumes.get(name);
      if (v && v.volumeId === volumeId && v.holders.includes(holder)) return undefined;
      const next = new Map(volumes);
      const holders = v && v.volumeId === volumeId ? v.holders : [];
      next.set(name, { volumeId, holders: holders.includes(holder) ? holders : [...holders, holder] });
      return next;
    });
  }

  /** Forgets a holder (idempotent); the volume's entry goes with its last holder. */
  remove(name: string, holder: string): Promise<void> {
    return this.change((volumes) => {
      const v = volumes.get(name);
      if (!v || !v.holders.includes(holder)) return undefined;
      const next = new Map(volumes);
      const holders = v.holders.filter((h) => h !== holder);
      if (holders.length > 0) next.set(name, { ...v, holders });
      else next.delete(name);
      return next;
    });
  }

  /** One change at a time, each computed from the last one written; memory changes only once the file has. */
  private change(compute: (volumes: Map<string, HeldVolume>) => Map<string, HeldVolume> | undefined): Promise<void> {
    const write = this.writing.then(async () => {
      const next = compute(this.volumes);
      if (!next) return;
      const file: HoldersFile = { version: 1, volumes: Object.fromEntries(next) };
      await atomicWriteFile(this.path, `${JSON.stringify(file, null, 1)}\n`, { mode: 0o600 });
      this.volumes = next;
    });
    this.writing = write.catch(() => undefined);
    return write;
  }
}

export function parseHolders(text: string, path: string): Map<string, HeldVolume> {
  const damaged = (why: string) =>
    failedPrecondition(`${path} is damaged (${why}); it records which containers hold Docker volumes: repair or remove it`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw damaged((e as Error).message);
  }
  const file = data as Partial<HoldersFile> | null;
  if (!file || typeof file !== 'object' || file.version !== 1 || typeof file.volumes !== 'object' || file.volumes === null) {
    throw damaged('not a version 1 record');
  }
  const out = new Map<string, HeldVolume>();
  for (const [name, v] of Object.entries(file.volumes)) {
    const ok = v && typeof v.volumeId === 'string' && Array.isArray(v.holders) && v.holders.every((h) => typeof h === 'string');
    if (!ok) throw damaged(`the entry of ${JSON.stringify(name)} is malformed`);
    out.set(name, { volumeId: v.volumeId, holders: [...v.holders] });
  }
  return out;
}
