import { stat } from 'node:fs/promises';
import type { CreateGroupSnapshotArgs, CreateSnapshotArgs, GroupSnapshot, ListRange, Snapshot, SnapshotFilter } from '../backend.js';
import { failedPrecondition, notFound, resourceExhausted } from '../../errors.js';
import { faultPoint } from '../../faults.js';
import { copyFileSparse } from '../../os/index.js';
import { withFrozenImages } from './freeze.js';
import { Pool, type VolumeMeta } from './pool.js';
import { SnapshotStore, type GroupMeta, type SnapshotMeta } from './snapshot-store.js';

// Snapshots of loop volumes: each is a full, independent copy of the backing file (a reflink where the
// pool's filesystem shares extents, a sparse copy elsewhere), taken while the volume's filesystem is
// frozen. Deleting the source volume leaves its snapshots intact, and a snapshot restores into any
// number of new volumes.

export class LoopSnapshots {
  readonly store: SnapshotStore;

  constructor(private readonly pool: Pool) {
    this.store = new SnapshotStore(pool.root);
  }

  async init(): Promise<void> {
    await this.store.init();
  }

  async create(args: CreateSnapshotArgs): Promise<Snapshot> {
    const source = await this.requireVolume(args.sourceVolumeId);
    const id = SnapshotStore.snapshotIdForName(args.name);
    await this.ensureRoom([source]);
    await this.store.removeImage(id); // a leftover of a crashed create: never handed out, so redone
    const takenAt = new Date();
    await withFrozenImages([this.pool.imagePath(source.id)], async () => {
      await faultPoint('loop.snapshot.while-frozen');
      await copyFileSparse(this.pool.imagePath(source.id), this.store.imagePath(id));
    });
    await faultPoint('loop.snapshot.after-copy');
    const meta = snapshotMeta(id, args.name, source, takenAt);
    await this.store.writeSnapshot(meta);
    return toSnapshot(meta);
  }

  async findByName(name: string): Promise<Snapshot | undefined> {
    const meta = await this.store.readSnapshot(SnapshotStore.snapshotIdForName(name));
    if (!meta) return undefined;
    if (meta.name !== name)
      throw failedPrecondition(
        `snapshot id ${meta.id} for name ${JSON.stringify(name)} is held by ${JSON.stringify(meta.name)} (hash collision)`,
      );
    return toSnapshot(meta);
  }

  async get(id: string): Promise<Snapshot | undefined> {
    const meta = await this.visibleSnapshot(id);
    return meta ? toSnapshot(meta) : undefined;
  }

  /** The image to restore from, NOT_FOUND when there is no such snapshot. */
  async requireImage(id: string): Promise<{ image: string; meta: SnapshotMeta }> {
    const meta = await this.visibleSnapshot(id);
    if (!meta) throw notFound(`snapshot ${JSON.stringify(id)} does not exist`);
    return { image: this.store.imagePath(id), meta };
  }

  async delete(id: string): Promise<void> {
    const meta = await this.store.readSnapshot(id).catch(() => undefined);
    if (meta?.groupSnapshotId && (await this.store.readGroup(meta.groupSnapshotId))) {
      throw failedPrecondition(`snapshot ${id} belongs to group snapshot ${meta.groupSnapshotId}; delete the group snapshot instead`);
    }
    if (SnapshotStore.isSnapshotId(id)) await this.store.removeSnapshot(id);
  }

  /** Reads snapshot metadata in id order until the range is full, so a page costs its own reads. */
  async list(filter: SnapshotFilter, range: ListRange): Promise<Snapshot[]> {
    const candidates =
      filter.snapshotId !== undefined
        ? [filter.snapshotId].filter((id) => SnapshotStore.isSnapshotId(id))
        : await this.store.listSnapshotIds();
    const out: Snapshot[] = [];
    for (const id of candidates.filter((c) => c > range.afterId).sort()) {
      if (range.limit > 0 && out.length >= range.limit) break;
      const meta = await this.visibleSnapshot(id).catch(() => undefined); // a damaged file is not listed
      if (meta && (filter.sourceVolumeId === undefined || meta.sourceVolumeId === filter.sourceVolumeId)) out.push(toSnapshot(meta));
    }
    return out;
  }

  // ---- group snapshots

  async createGroup(args: CreateGroupSnapshotArgs): Promise<GroupSnapshot> {
    const volumes = await Promise.all(args.sourceVolumeIds.map((id) => this.requireVolume(id)));
    const groupId = SnapshotStore.groupIdForName(args.name);
    const memberIds = volumes.map((v) => SnapshotStore.memberSnapshotId(groupId, v.id));
    await this.ensureRoom(volumes);
    // No group metadata means no group: members of an earlier attempt that crashed are redone, so every
    // member is from the same frozen moment.
    for (const id of memberIds) await this.store.removeSnapshot(id);
    const takenAt = new Date();
    await withFrozenImages(
      volumes.map((v) => this.pool.imagePath(v.id)),
      async () => {
        for (const [i, v] of volumes.entries()) await copyFileSparse(this.pool.imagePath(v.id), this.store.imagePath(memberIds[i]!));
      },
    );
    await faultPoint('loop.group.after-copy');
    for (const [i, v] of volumes.entries()) {
      await this.store.writeSnapshot({ ...snapshotMeta(memberIds[i]!, `${args.name}/${v.id}`, v, takenAt), groupSnapshotId: groupId });
    }
    const group: GroupMeta = {
      version: 1,
      id: groupId,
      name: args.name,
      sourceVolumeIds: volumes.map((v) => v.id),
      snapshotIds: memberIds,
      createdAt: takenAt.toISOString(),
    };
    await this.store.writeGroup(group);
    return this.toGroup(group);
  }

  async findGroupByName(name: string): Promise<GroupSnapshot | undefined> {
    const meta = await this.store.readGroup(SnapshotStore.groupIdForName(name));
    if (!meta) return undefined;
    if (meta.name !== name)
      throw failedPrecondition(
        `group snapshot id ${meta.id} for name ${JSON.stringify(name)} is held by ${JSON.stringify(meta.name)} (hash collision)`,
      );
    return this.toGroup(meta);
  }

  async getGroup(id: string): Promise<GroupSnapshot | undefined> {
    const meta = await this.store.readGroup(id);
    return meta ? this.toGroup(meta) : undefined;
  }

  /** Members first, the group last: a crash in between leaves a group a retried delete finishes. */
  async deleteGroup(id: string): Promise<void> {
    const meta = await this.store.readGroup(id);
    if (!meta) return;
    for (const snapshotId of meta.snapshotIds) await this.store.removeSnapshot(snapshotId);
    await faultPoint('loop.group.delete.after-members');
    await this.store.removeGroup(id);
  }

  // ---- helpers

  /** A snapshot that exists: its metadata is there, and a group member's group is complete. */
  private async visibleSnapshot(id: string): Promise<SnapshotMeta | undefined> {
    const meta = await this.store.readSnapshot(id);
    if (!meta) return undefined;
    if (meta.groupSnapshotId && !(await this.store.readGroup(meta.groupSnapshotId))) return undefined;
    return meta;
  }

  private async requireVolume(id: string): Promise<VolumeMeta> {
    const meta = await this.pool.readMeta(id);
    if (!meta) throw notFound(`source volume ${JSON.stringify(id)} does not exist`);
    return meta;
  }

  /** A copy takes at most the source's allocated blocks (less with reflinks). */
  private async ensureRoom(volumes: VolumeMeta[]): Promise<void> {
    let needed = 0;
    for (const v of volumes) {
      const s = await stat(this.pool.imagePath(v.id)).catch(() => undefined);
      if (!s) throw failedPrecondition(`the backing file of volume ${v.id} is missing; there is nothing to copy`);
      needed += s.blocks * 512;
    }
    const free = await this.pool.freeBytes();
    if (needed > free) throw resourceExhausted(`the loop pool ${this.pool.root} has ${free} bytes free; the copy needs up to ${needed}`);
  }

  private async toGroup(meta: GroupMeta): Promise<GroupSnapshot> {
    const members = await Promise.all(meta.snapshotIds.map((id) => this.store.readSnapshot(id)));
    return {
      id: meta.id,
      name: meta.name,
      snapshots: members.filter((m): m is SnapshotMeta => m !== undefined).map(toSnapshot),
      creationTime: new Date(meta.createdAt),
      readyToUse: true,
    };
  }
}

function snapshotMeta(id: string, name: string, source: VolumeMeta, takenAt: Date): SnapshotMeta {
  return {
    version: 1,
    id,
    name,
    sourceVolumeId: source.id,
    sizeBytes: source.capacityBytes,
    accessType: source.accessType,
    fsType: source.fsType,
    createdAt: takenAt.toISOString(),
  };
}

function toSnapshot(meta: SnapshotMeta): Snapshot {
  return {
    id: meta.id,
    name: meta.name,
    sourceVolumeId: meta.sourceVolumeId,
    sizeBytes: meta.sizeBytes,
    creationTime: new Date(meta.createdAt),
    readyToUse: true,
    ...(meta.groupSnapshotId ? { groupSnapshotId: meta.groupSnapshotId } : {}),
  };
}
