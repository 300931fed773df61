import type { Backend, GroupSnapshot, GroupSnapshotOps } from '../backends/backend.js';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from '../errors.js';
import { toWireGroupSnapshot } from '../csi/convert.js';
import { fingerprint, type Inflight } from '../csi/inflight.js';
import { requireGroup } from '../csi/capabilities.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import { checkMap, checkSnapshotParameters, requireString } from '../csi/validate.js';
import type { GroupControllerHandlers } from '../csi/gen/csi/v1/GroupController.js';
import type { GroupControllerGetCapabilitiesResponse } from '../csi/gen/csi/v1/GroupControllerGetCapabilitiesResponse.js';
import type { CreateVolumeGroupSnapshotRequest__Output } from '../csi/gen/csi/v1/CreateVolumeGroupSnapshotRequest.js';
import type { CreateVolumeGroupSnapshotResponse } from '../csi/gen/csi/v1/CreateVolumeGroupSnapshotResponse.js';
import type { DeleteVolumeGroupSnapshotRequest__Output } from '../csi/gen/csi/v1/DeleteVolumeGroupSnapshotRequest.js';
import type { DeleteVolumeGroupSnapshotResponse } from '../csi/gen/csi/v1/DeleteVolumeGroupSnapshotResponse.js';
import type { GetVolumeGroupSnapshotRequest__Output } from '../csi/gen/csi/v1/GetVolumeGroupSnapshotRequest.js';
import type { GetVolumeGroupSnapshotResponse } from '../csi/gen/csi/v1/GetVolumeGroupSnapshotResponse.js';

// The GroupController service: snapshots of several volumes taken at one consistent moment, for backends
// that have the groupSnapshots group (server.ts registers the service only then). Idempotent by name like CreateSnapshot; the spec rules live here.

export class GroupControllerService {
  constructor(
    private readonly backend: Backend,
    private readonly inflight: Inflight,
  ) {}

  handlers(ctx: RpcContext): GroupControllerHandlers {
    return {
      GroupControllerGetCapabilities: unary(
        ctx,
        'GroupControllerGetCapabilities',
        async (): Promise<GroupControllerGetCapabilitiesResponse> => ({
          capabilities: [{ rpc: { type: 'CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT' } }],
        }),
        { quiet: true },
      ),
      CreateVolumeGroupSnapshot: unary(ctx, 'CreateVolumeGroupSnapshot', (r: CreateVolumeGroupSnapshotRequest__Output) => this.create(r)),
      DeleteVolumeGroupSnapshot: unary(ctx, 'DeleteVolumeGroupSnapshot', (r: DeleteVolumeGroupSnapshotRequest__Output) => this.delete(r)),
      GetVolumeGroupSnapshot: unary(ctx, 'GetVolumeGroupSnapshot', (r: GetVolumeGroupSnapshotRequest__Output) => this.get(r)),
    };
  }

  private groups(rpc: string): GroupSnapshotOps {
    return requireGroup(this.backend.groupSnapshots, rpc, this.backend);
  }

  async create(req: CreateVolumeGroupSnapshotRequest__Output): Promise<CreateVolumeGroupSnapshotResponse> {
    const name = requireString(req.name, 'name');
    const sourceVolumeIds = (req.source_volume_ids ?? []).map((id, i) => requireString(id, `source_volume_ids[${i}]`));
    if (sourceVolumeIds.length === 0) throw invalidArgument('source_volume_ids must name at least one volume');
    if (new Set(sourceVolumeIds).size !== sourceVolumeIds.length) throw invalidArgument('source_volume_ids names a volume twice');
    const groups = this.groups('CreateVolumeGroupSnapshot');
    const parameters = checkSnapshotParameters(req.parameters, groups.parameterKeys);
    const secrets = checkMap(req.secrets, 'secrets');
    const keys = [`group-snapshot-name:${name}`, ...sourceVolumeIds.map((id) => `vol:${id}`)];
    return this.inflight.run('CreateVolumeGroupSnapshot', keys, fingerprint('CreateVolumeGroupSnapshot', req), async () => {
      const existing = await groups.findByName(name);
      if (existing) {
        const had = sourcesOf(existing);
        if (had.join(',') !== [...sourceVolumeIds].sort().join(',')) {
          throw alreadyExists(
            `a group snapshot named ${JSON.stringify(name)} already exists (${existing.id}) of volumes ${had.join(', ')}`,
          );
        }
        return { group_snapshot: toWireGroupSnapshot(existing) };
      }
      for (const id of sourceVolumeIds) {
        if (!(await this.backend.getVolume(id))) throw notFound(`source volume ${JSON.stringify(id)} does not exist`);
      }
      const group = await groups.create({ name, sourceVolumeIds, parameters, secrets });
      return { group_snapshot: toWireGroupSnapshot(group) };
    });
  }

  async delete(req: DeleteVolumeGroupSnapshotRequest__Output): Promise<DeleteVolumeGroupSnapshotResponse> {
    const id = requireString(req.group_snapshot_id, 'group_snapshot_id');
    checkMap(req.secrets, 'secrets');
    const groups = this.groups('DeleteVolumeGroupSnapshot');
    await this.inflight.run(
      'DeleteVolumeGroupSnapshot',
      [`group-snapshot:${id}`],
      fingerprint('DeleteVolumeGroupSnapshot', req),
      async () => {
        const group = await groups.get(id);
        if (!group) return;
        checkSnapshotIds(group, req.snapshot_ids ?? []);
        await groups.delete(id);
      },
    );
    return {};
  }

  async get(req: GetVolumeGroupSnapshotRequest__Output): Promise<GetVolumeGroupSnapshotResponse> {
    const id = requireString(req.group_snapshot_id, 'group_snapshot_id');
    checkMap(req.secrets, 'secrets');
    const group = await this.groups('GetVolumeGroupSnapshot').get(id);
    if (!group) throw notFound(`group snapshot ${JSON.stringify(id)} does not exist`);
    checkSnapshotIds(group, req.snapshot_ids ?? []);
    return { group_snapshot: toWireGroupSnapshot(group) };
  }
}

function sourcesOf(group: GroupSnapshot): string[] {
  return group.snapshots.map((s) => s.sourceVolumeId).sort();
}

/**
 * The CO names the group's snapshots so a plugin can tell a stale request from a current one: a list that
 * does not match the group is FAILED_PRECONDITION. An empty list is taken as "whatever the group holds".
 */
function checkSnapshotIds(group: GroupSnapshot, snapshotIds: string[]): void {
  if (snapshotIds.length === 0) return;
  const have = group.snapshots
    .map((s) => s.id)
    .sort()
    .join(',');
  if ([...snapshotIds].sort().join(',') !== have) {
    throw failedPrecondition(
      `snapshot_ids ${snapshotIds.join(', ')} do not match group snapshot ${group.id}, which holds ${have || 'no snapshots'}`,
    );
  }
}
