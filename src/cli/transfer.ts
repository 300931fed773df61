import { status as Status } from '@grpc/grpc-js';
import { CallFailed } from './client.js';
import { CsiError } from '../errors.js';
import {
  capabilityFor,
  deleteQuietly,
  faultStep,
  inspectVolume,
  listVolumeIds,
  waitSnapshotReady,
  type MobilityStep,
  type Operation,
  type PluginView,
  type VolumeView,
} from './mobility.js';

// The two ends of a transfer: a source made point-in-time where the plugin can (snapshot, then a temporary
// volume from it; or a clone), and a destination this operation creates (and only this operation: one that
// was there before is refused, never written to).

export interface SourceView {
  volume: VolumeView;
  /** the data is a snapshot (or clone) of one instant, not the live volume */
  pointInTime: boolean;
  how: 'snapshot' | 'clone' | 'live';
}

/** A snapshot and a temporary volume from it, or a clone, or (without either) the live volume itself. */
export async function pointInTimeSource(
  op: Operation,
  p: PluginView,
  v: VolumeView,
  kind: 'backup' | 'migrate',
  timeoutMs: number,
): Promise<SourceView> {
  const cap = capabilityFor(v.accessType, v.fsType, false);
  const create = async (source: { snapshot: { snapshot_id: string } } | { volume: { volume_id: string } }): Promise<VolumeView> => {
    const res = await p.csi.controller.CreateVolume({
      name: op.objectName('clone'),
      capacity_range: { required_bytes: v.capacityBytes, limit_bytes: 0 },
      volume_capabilities: [cap],
      parameters: {},
      secrets: {},
      volume_content_source: source,
    });
    const id = res.volume?.volume_id ?? '';
    await op.update({ cloneId: id });
    faultStep(`${kind}.after-clone` as MobilityStep);
    return {
      ...v,
      id,
      capacityBytes: Number(res.volume?.capacity_bytes ?? v.capacityBytes),
      context: res.volume?.volume_context ?? {},
      publishedNodes: [],
    };
  };
  if (p.controller.has('CREATE_DELETE_SNAPSHOT')) {
    const res = await p.csi.controller.CreateSnapshot({ name: op.objectName('snap'), source_volume_id: v.id, parameters: {}, secrets: {} });
    const snapshotId = res.snapshot?.snapshot_id ?? '';
    await op.update({ snapshotId });
    faultStep(`${kind}.after-snapshot` as MobilityStep);
    await waitSnapshotReady(p, snapshotId, timeoutMs);
    return { volume: await create({ snapshot: { snapshot_id: snapshotId } }), pointInTime: true, how: 'snapshot' };
  }
  if (p.controller.has('CLONE_VOLUME')) return { volume: await create({ volume: { volume_id: v.id } }), pointInTime: true, how: 'clone' };
  return { volume: v, pointInTime: false, how: 'live' };
}

/** Deletes the temporary clone and (unless kept) the snapshot of this operation. */
export async function removeTemporaries(op: Operation, p: PluginView, keepSnapshot: boolean): Promise<void> {
  const { cloneId, snapshotId } = op.state;
  if (cloneId) {
    await deleteQuietly(() => p.csi.controller.DeleteVolume({ volume_id: cloneId, secrets: {} }));
    await op.update({ cloneId: undefined });
  }
  if (snapshotId && !keepSnapshot) {
    await deleteQuietly(() => p.csi.controller.DeleteSnapshot({ snapshot_id: snapshotId, secrets: {} }));
    await op.update({ snapshotId: undefined });
  }
}

export interface DestinationSpec {
  name: string;
  bytes: number;
  accessType: 'mount' | 'block';
  fsType: string;
  parameters: Record<string, string>;
}

/** Creates the destination volume; one of that name that existed before this operation is ALREADY_EXISTS. */
export async function createDestination(op: Operation, p: PluginView, spec: DestinationSpec): Promise<VolumeView> {
  // Listed before the first CreateVolume; the journal records the request first, so a re-run after a kill
  // knows the volume it finds is its own.
  const before = op.state.destinationRequested ? new Set<string>() : await listVolumeIds(p);
  if (!op.state.destinationRequested) await op.update({ destinationRequested: true });
  const res = await p.csi.controller
    .CreateVolume({
      name: spec.name,
      capacity_range: { required_bytes: spec.bytes, limit_bytes: 0 },
      volume_capabilities: [capabilityFor(spec.accessType, spec.fsType, false)],
      parameters: spec.parameters,
      secrets: {},
    })
    .catch(async (e: unknown) => {
      if (op.state.destinationId === undefined) await op.update({ destinationRequested: false });
      if (e instanceof CallFailed && e.code === Status.ALREADY_EXISTS)
        throw new CsiError(
          'ALREADY_EXISTS',
          `a volume named ${spec.name} already exists at ${p.endpoint} with other settings: ${e.details}`,
        );
      throw e;
    });
  const id = res.volume?.volume_id ?? '';
  if (before.has(id)) {
    await op.update({ destinationRequested: false });
    throw new CsiError(
      'ALREADY_EXISTS',
      `volume ${spec.name} (${id}) already exists at ${p.endpoint} and was not made by this operation; not writing to it`,
    );
  }
  await op.update({ destinationId: id });
  const view = await inspectVolume(p, id);
  if (view.capacityBytes < spec.bytes) {
    await removeDestination(op, p);
    throw new CsiError(
      'OUT_OF_RANGE',
      `the plugin at ${p.endpoint} made ${spec.name} ${view.capacityBytes} bytes, smaller than the ${spec.bytes} needed`,
    );
  }
  return { ...view, accessType: spec.accessType, fsType: view.fsType || spec.fsType };
}

/** Deletes the destination this operation created (after a failure: nothing partial is left). */
export async function removeDestination(op: Operation, p: PluginView): Promise<void> {
  const id = op.state.destinationId;
  if (id !== undefined) await deleteQuietly(() => p.csi.controller.DeleteVolume({ volume_id: id, secrets: {} }));
  await op.update({ destinationId: undefined, destinationRequested: false });
}
