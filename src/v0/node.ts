import type { NodeService } from '../node/node.js';
import { unary, type RpcContext } from '../csi/rpc.js';
import { capabilityToV1 } from './convert.js';
import type { NodeHandlers } from './gen/csi/v0/Node.js';
import type { NodeStageVolumeRequest__Output } from './gen/csi/v0/NodeStageVolumeRequest.js';
import type { NodeStageVolumeResponse } from './gen/csi/v0/NodeStageVolumeResponse.js';
import type { NodeUnstageVolumeRequest__Output } from './gen/csi/v0/NodeUnstageVolumeRequest.js';
import type { NodeUnstageVolumeResponse } from './gen/csi/v0/NodeUnstageVolumeResponse.js';
import type { NodePublishVolumeRequest__Output } from './gen/csi/v0/NodePublishVolumeRequest.js';
import type { NodePublishVolumeResponse } from './gen/csi/v0/NodePublishVolumeResponse.js';
import type { NodeUnpublishVolumeRequest__Output } from './gen/csi/v0/NodeUnpublishVolumeRequest.js';
import type { NodeUnpublishVolumeResponse } from './gen/csi/v0/NodeUnpublishVolumeResponse.js';
import type { NodeGetIdResponse } from './gen/csi/v0/NodeGetIdResponse.js';
import type { NodeGetInfoResponse } from './gen/csi/v0/NodeGetInfoResponse.js';
import type { NodeGetCapabilitiesResponse } from './gen/csi/v0/NodeGetCapabilitiesResponse.js';

// csi.v0.Node on top of the one NodeService. What differs from v1 beyond field names:
// - NodeGetId (v0.2; v0.3 added NodeGetInfo) and no NodeGetVolumeStats;
// - the target path: in v0 the CO creates the target directory before NodePublishVolume (the v1 publish
//   accepts an existing empty directory) and owns it afterwards, so NodeUnpublishVolume unmounts but
//   leaves the directory. Mesos' v0 volume manager CHECK-fails (aborts the agent) when it retries an
//   unpublish and the target is gone, and removes the directory itself when it drops the volume.

export function v0NodeCapabilities(node: NodeService): 'STAGE_UNSTAGE_VOLUME'[] {
  return node.capabilities().includes('STAGE_UNSTAGE_VOLUME') ? ['STAGE_UNSTAGE_VOLUME'] : [];
}

export async function stageV0(node: NodeService, r: NodeStageVolumeRequest__Output): Promise<NodeStageVolumeResponse> {
  return node.stage({
    volume_id: r.volume_id,
    publish_context: r.publish_info,
    staging_target_path: r.staging_target_path,
    volume_capability: capabilityToV1(r.volume_capability),
    secrets: r.node_stage_secrets,
    volume_context: r.volume_attributes,
  });
}

export async function unstageV0(node: NodeService, r: NodeUnstageVolumeRequest__Output): Promise<NodeUnstageVolumeResponse> {
  return node.unstage({ volume_id: r.volume_id, staging_target_path: r.staging_target_path });
}

export async function publishV0(node: NodeService, r: NodePublishVolumeRequest__Output): Promise<NodePublishVolumeResponse> {
  return node.publish({
    volume_id: r.volume_id,
    publish_context: r.publish_info,
    staging_target_path: r.staging_target_path,
    target_path: r.target_path,
    volume_capability: capabilityToV1(r.volume_capability),
    readonly: r.readonly,
    secrets: r.node_publish_secrets,
    volume_context: r.volume_attributes,
  });
}

export async function unpublishV0(node: NodeService, r: NodeUnpublishVolumeRequest__Output): Promise<NodeUnpublishVolumeResponse> {
  return node.unpublish({ volume_id: r.volume_id, target_path: r.target_path }, { keepTarget: true });
}

export async function nodeInfoV0(node: NodeService): Promise<NodeGetInfoResponse> {
  const info = await node.info();
  const segments = info.accessible_topology?.segments;
  return {
    node_id: info.node_id ?? '',
    max_volumes_per_node: info.max_volumes_per_node ?? 0,
    accessible_topology: segments ? { segments } : null,
  };
}

export function v0NodeHandlers(node: NodeService, ctx: RpcContext): NodeHandlers {
  return {
    NodeStageVolume: unary(ctx, 'v0.NodeStageVolume', (r: NodeStageVolumeRequest__Output) => stageV0(node, r)),
    NodeUnstageVolume: unary(ctx, 'v0.NodeUnstageVolume', (r: NodeUnstageVolumeRequest__Output) => unstageV0(node, r)),
    NodePublishVolume: unary(ctx, 'v0.NodePublishVolume', (r: NodePublishVolumeRequest__Output) => publishV0(node, r)),
    NodeUnpublishVolume: unary(ctx, 'v0.NodeUnpublishVolume', (r: NodeUnpublishVolumeRequest__Output) => unpublishV0(node, r)),
    NodeGetId: unary(ctx, 'v0.NodeGetId', async (): Promise<NodeGetIdResponse> => ({ node_id: (await nodeInfoV0(node)).node_id ?? '' }), {
      quiet: true,
    }),
    NodeGetInfo: unary(ctx, 'v0.NodeGetInfo', () => nodeInfoV0(node), { quiet: true }),
    NodeGetCapabilities: unary(
      ctx,
      'v0.NodeGetCapabilities',
      async (): Promise<NodeGetCapabilitiesResponse> => ({ capabilities: v0NodeCapabilities(node).map((type) => ({ rpc: { type } })) }),
      { quiet: true },
    ),
  };
}
