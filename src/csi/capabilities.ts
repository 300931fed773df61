import type { Backend } from '../backends/backend.js';
import { CsiError } from '../errors.js';
import type { _csi_v1_ControllerServiceCapability_RPC_Type as ControllerCapability } from './gen/csi/v1/ControllerServiceCapability.js';
import type { _csi_v1_NodeServiceCapability_RPC_Type as NodeCapability } from './gen/csi/v1/NodeServiceCapability.js';
import type { PluginCapability } from './gen/csi/v1/PluginCapability.js';

// The one place that says what the plugin advertises and serves. Everything follows from which optional
// groups the backend has (and its volume shape), so a capability is advertised exactly when the code that
// serves it exists: identity, controller, node and server all read the answer from here.

/** Controller RPCs that are registered only when the backend has the group serving them. */
export type OptionalControllerRpc =
  | 'GetCapacity'
  | 'ControllerPublishVolume'
  | 'ControllerUnpublishVolume'
  | 'CreateSnapshot'
  | 'DeleteSnapshot'
  | 'ListSnapshots'
  | 'GetSnapshot'
  | 'ControllerExpandVolume'
  | 'ControllerModifyVolume';

export type OptionalNodeRpc = 'NodeExpandVolume';

export interface Capabilities {
  /** ControllerGetCapabilities */
  controller: ControllerCapability[];
  /** the optional Controller RPCs registered; the others answer UNIMPLEMENTED */
  controllerRpcs: OptionalControllerRpc[];
  /** NodeGetCapabilities */
  node: NodeCapability[];
  nodeRpcs: OptionalNodeRpc[];
  /** GetPluginCapabilities */
  plugin: PluginCapability[];
  /** the GroupController service is registered (and GROUP_CONTROLLER_SERVICE advertised) */
  groupController: boolean;
}

/** Which services this process serves: plugin capabilities name only what is served. */
export interface Served {
  controller: boolean;
  node: boolean;
}

export function deriveCapabilities(backend: Backend, served: Served = { controller: true, node: true }): Capabilities {
  const f = backend.features;
  const controller: ControllerCapability[] = ['CREATE_DELETE_VOLUME', 'LIST_VOLUMES', 'GET_VOLUME'];
  const controllerRpcs: OptionalControllerRpc[] = [];
  if (backend.publish) {
    controller.push('PUBLISH_UNPUBLISH_VOLUME', 'PUBLISH_READONLY');
    controllerRpcs.push('ControllerPublishVolume', 'ControllerUnpublishVolume');
  }
  if (backend.capacity) {
    controller.push('GET_CAPACITY');
    controllerRpcs.push('GetCapacity');
  }
  if (f.listVolumesPublishedNodes) controller.push('LIST_VOLUMES_PUBLISHED_NODES');
  if (f.volumeCondition) controller.push('VOLUME_CONDITION');
  if (f.accessModes.includes('SINGLE_NODE_MULTI_WRITER')) controller.push('SINGLE_NODE_MULTI_WRITER');
  if (backend.snapshots) {
    // GetSnapshot (alpha) is served but not advertised: csi-sanity v5.4.0 fails any plugin that lists
    // GET_SNAPSHOT ("Unknown capability"), and COs find a snapshot by ListSnapshots(snapshot_id) anyway.
    controller.push('CREATE_DELETE_SNAPSHOT', 'LIST_SNAPSHOTS');
    controllerRpcs.push('CreateSnapshot', 'DeleteSnapshot', 'ListSnapshots', 'GetSnapshot');
  }
  if (f.cloneFromVolume) controller.push('CLONE_VOLUME');
  if (backend.expand) {
    controller.push('EXPAND_VOLUME');
    controllerRpcs.push('ControllerExpandVolume');
  }
  if (backend.modify) {
    controller.push('MODIFY_VOLUME');
    controllerRpcs.push('ControllerModifyVolume');
  }

  const node: NodeCapability[] = ['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'VOLUME_CONDITION'];
  if (f.accessModes.includes('SINGLE_NODE_MULTI_WRITER')) node.push('SINGLE_NODE_MULTI_WRITER');
  // A network filesystem grows on its server: only a block device needs the node to grow its filesystem.
  const nodeExpands = backend.expand !== undefined && f.nodeSource === 'block';
  if (nodeExpands) node.push('EXPAND_VOLUME');

  const groupController = served.controller && backend.groupSnapshots !== undefined;
  const plugin: PluginCapability[] = [];
  if (served.controller) plugin.push({ service: { type: 'CONTROLLER_SERVICE' } });
  if (f.topologyKeys.length > 0) plugin.push({ service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } });
  if (groupController) plugin.push({ service: { type: 'GROUP_CONTROLLER_SERVICE' } });
  if (served.controller && backend.expand) {
    plugin.push({ volume_expansion: { type: backend.expand.mode === 'online' ? 'ONLINE' : 'OFFLINE' } });
  }
  return { controller, controllerRpcs, node, nodeRpcs: nodeExpands ? ['NodeExpandVolume'] : [], plugin, groupController };
}

/**
 * The group an RPC needs, or UNIMPLEMENTED. Handlers are registered only for groups that exist, so this
 * answers only a caller that reached a handler some other way (the csi.v0 translation, a test).
 */
export function requireGroup<T>(group: T | undefined, rpc: string, backend: Backend): T {
  if (group === undefined) throw new CsiError('UNIMPLEMENTED', `${rpc} is not served by the ${backend.name} backend`);
  return group;
}
