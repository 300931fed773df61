// VolumeCapability derivation (src/csi/capabilities.ts): everything the plugin advertises and registers follows
// from which optional groups a backend has. Literal backend objects, no server: nothing here runs a volume.
import { describe, expect, it } from 'vitest';
import type { Backend, BackendFeatures, ExpandOps, GroupSnapshotOps, SnapshotOps } from '../../src/backends/backend.js';
import { BLOCK_NODE_REQUIREMENTS } from '../../src/backends/backend.js';
import { EbsBackend } from '../../src/backends/ebs/ebs.js';
import { EfsBackend } from '../../src/backends/efs/efs.js';
import { EfsApi } from '../../src/backends/efs/api.js';
import { LoopBackend } from '../../src/backends/loop/loop.js';
import { ControllerService } from '../../src/controller/controller.js';
import { deriveCapabilities } from '../../src/csi/capabilities.js';
import { Inflight } from '../../src/csi/inflight.js';
import type { RpcContext } from '../../src/csi/rpc.js';
import { IdentityService } from '../../src/identity/identity.js';
import { NodeService } from '../../src/node/node.js';
import { isCsiError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';

const features: BackendFeatures = {
  accessTypes: ['mount'],
  accessModes: ['SINGLE_NODE_WRITER'],
  fsTypes: ['ext4'],
  defaultFsType: 'ext4',
  nodeSource: 'block',
  listVolumesPublishedNodes: false,
  volumeCondition: false,
  minVolumeBytes: 1,
  maxVolumeBytes: 2 ** 40,
  allocationUnitBytes: 1,
  defaultVolumeBytes: 2 ** 30,
  parameterKeys: [],
  topologyKeys: [],
  cloneFromVolume: false,
};

const unused = (): never => {
  throw new Error('not called by capability derivation');
};

/** A backend with only the always-present methods, plus whatever groups and shape a test gives it. */
function backend(groups: Partial<Backend> = {}, shape: Partial<BackendFeatures> = {}): Backend {
  return {
    name: 'literal',
    features: { ...features, ...shape },
    node: BLOCK_NODE_REQUIREMENTS,
    probe: unused,
    createVolume: unused,
    deleteVolume: unused,
    getVolume: unused,
    findVolumeByName: unused,
    isVolumeId: () => true,
    listVolumes: unused,
    nodeInfo: unused,
    openVolume: unused,
    locateVolume: unused,
    closeVolume: unused,
    volumeExists: unused,
    ...groups,
  };
}

const expand = (mode: ExpandOps['mode']): ExpandOps => ({ mode, expandVolume: unused });
const snapshots: SnapshotOps = {
  parameterKeys: [],
  isId: () => true,
  create: unused,
  findByName: unused,
  get: unused,
  delete: unused,
  list: unused,
};
const groupSnapshots: GroupSnapshotOps = { parameterKeys: [], create: unused, findByName: unused, get: unused, delete: unused };
const BASE = ['CREATE_DELETE_VOLUME', 'LIST_VOLUMES', 'GET_VOLUME'];
const ctx: RpcContext = { log: createLogger({ level: 'silent', format: 'json', base: {} }) };

describe('capability derivation', () => {
  it('advertises only the base RPCs and registers no optional one for a backend without groups', () => {
    const caps = deriveCapabilities(backend());
    expect(caps.controller).toEqual(BASE);
    expect(caps.controllerRpcs).toEqual([]);
    expect(caps.node).toEqual(['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'VOLUME_CONDITION']);
    expect(caps.nodeRpcs).toEqual([]);
    expect(caps.plugin).toEqual([{ service: { type: 'CONTROLLER_SERVICE' } }]);
    expect(caps.groupController).toBe(false);
  });

  it('derives each controller capability and RPC from its group', () => {
    const publish = { controllerPublish: unused, controllerUnpublish: unused };
    const modify = { mutableParameterKeys: ['iops'], modifyVolume: unused };
    const cases: [Partial<Backend>, string[], string[]][] = [
      [{ capacity: { getCapacity: unused } }, ['GET_CAPACITY'], ['GetCapacity']],
      [{ publish }, ['PUBLISH_UNPUBLISH_VOLUME', 'PUBLISH_READONLY'], ['ControllerPublishVolume', 'ControllerUnpublishVolume']],
      [{ snapshots }, ['CREATE_DELETE_SNAPSHOT', 'LIST_SNAPSHOTS'], ['CreateSnapshot', 'DeleteSnapshot', 'ListSnapshots', 'GetSnapshot']],
      [{ expand: expand('online') }, ['EXPAND_VOLUME'], ['ControllerExpandVolume']],
      [{ modify }, ['MODIFY_VOLUME'], ['ControllerModifyVolume']],
    ];
    for (const [groups, advertised, rpcs] of cases) {
      const caps = deriveCapabilities(backend(groups));
      expect(caps.controller, Object.keys(groups)[0]).toEqual([...BASE, ...advertised]);
      expect(caps.controllerRpcs, Object.keys(groups)[0]).toEqual(rpcs);
    }
  });

  it('derives the shape capabilities from the features', () => {
    const caps = deriveCapabilities(
      backend(
        {},
        {
          listVolumesPublishedNodes: true,
          volumeCondition: true,
          cloneFromVolume: true,
          accessModes: ['SINGLE_NODE_MULTI_WRITER'],
          topologyKeys: ['zone'],
        },
      ),
    );
    expect(caps.controller).toEqual([
      ...BASE,
      'LIST_VOLUMES_PUBLISHED_NODES',
      'VOLUME_CONDITION',
      'SINGLE_NODE_MULTI_WRITER',
      'CLONE_VOLUME',
    ]);
    expect(caps.node).toContain('SINGLE_NODE_MULTI_WRITER');
    expect(caps.plugin).toContainEqual({ service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } });
  });

  it('says expansion in all three places from the one group: controller, plugin (with its mode) and, for block volumes, node', () => {
    for (const mode of ['online', 'offline'] as const) {
      const caps = deriveCapabilities(backend({ expand: expand(mode) }));
      expect(caps.controller).toContain('EXPAND_VOLUME');
      expect(caps.plugin).toContainEqual({ volume_expansion: { type: mode === 'online' ? 'ONLINE' : 'OFFLINE' } });
      expect([caps.node.includes('EXPAND_VOLUME'), caps.nodeRpcs]).toEqual([true, ['NodeExpandVolume']]);
    }
    // a network filesystem grows on its server: nothing for the node to do
    const fs = deriveCapabilities(backend({ expand: expand('online') }, { nodeSource: 'filesystem' }));
    expect([fs.controller.includes('EXPAND_VOLUME'), fs.node.includes('EXPAND_VOLUME'), fs.nodeRpcs]).toEqual([true, false, []]);
  });

  it('serves the GroupController exactly when the group exists and the controller is served', () => {
    const both = deriveCapabilities(backend({ groupSnapshots }));
    expect(both.groupController).toBe(true);
    expect(both.plugin).toContainEqual({ service: { type: 'GROUP_CONTROLLER_SERVICE' } });
    const nodeOnly = deriveCapabilities(backend({ groupSnapshots, expand: expand('online') }), { controller: false, node: true });
    expect(nodeOnly.groupController).toBe(false);
    expect(nodeOnly.plugin).toEqual([]); // no controller: no CONTROLLER_SERVICE, group service or volume expansion
  });

  it('registers exactly the handlers the capabilities name, in the controller, node and identity services', () => {
    for (const b of [backend(), backend({ expand: expand('offline'), snapshots, capacity: { getCapacity: unused } })]) {
      const caps = deriveCapabilities(b);
      const controller = new ControllerService(b, new Inflight());
      const registered = Object.keys(controller.handlers(ctx));
      expect(registered.sort()).toEqual(
        [
          'CreateVolume',
          'DeleteVolume',
          'ValidateVolumeCapabilities',
          'ListVolumes',
          'ControllerGetVolume',
          'ControllerGetCapabilities',
          ...caps.controllerRpcs,
        ].sort(),
      );
      expect(controller.capabilities()).toEqual(caps.controller);
      const node = new NodeService(b, new Inflight());
      expect(node.capabilities()).toEqual(caps.node);
      expect('NodeExpandVolume' in node.handlers(ctx)).toBe(caps.nodeRpcs.includes('NodeExpandVolume'));
      const identity = new IdentityService(b, { pluginName: 'x', serveController: true, serveNode: true });
      expect(identity.capabilities().capabilities).toEqual(caps.plugin);
    }
  });

  it('answers a call that reaches a handler of a missing group with UNIMPLEMENTED, not INTERNAL', async () => {
    const controller = new ControllerService(backend(), new Inflight());
    const err = await controller
      .expandVolume({ volume_id: 'v', capacity_range: { required_bytes: 1, limit_bytes: 0 }, secrets: {}, volume_capability: null })
      .catch((e: unknown) => e);
    expect(isCsiError(err, 'UNIMPLEMENTED')).toBe(true);
  });

  it('gives the real backends the capabilities they had before the groups', () => {
    const loop = new LoopBackend({ poolDir: '/nonexistent/pool', nodeId: 'n', maxVolumesPerNode: 0 });
    expect(deriveCapabilities(loop).controller).toEqual([
      ...BASE,
      'GET_CAPACITY',
      'LIST_VOLUMES_PUBLISHED_NODES',
      'VOLUME_CONDITION',
      'SINGLE_NODE_MULTI_WRITER',
      'CREATE_DELETE_SNAPSHOT',
      'LIST_SNAPSHOTS',
      'CLONE_VOLUME',
      'EXPAND_VOLUME',
    ]);
    expect(deriveCapabilities(loop).groupController).toBe(true);
    const ebs = new EbsBackend({
      region: 'us-east-1',
      clusterTag: 'c',
      nodeAttach: false,
      preempt: false,
      maxVolumesPerNode: 0,
      roots: { byIdDir: '/dev/disk/by-id', sysRoot: '/sys' },
      waitTimeoutMs: 1000,
      deviceTimeoutMs: 1000,
    });
    expect(deriveCapabilities(ebs).controller).toEqual([
      ...BASE,
      'PUBLISH_UNPUBLISH_VOLUME',
      'PUBLISH_READONLY',
      'GET_CAPACITY',
      'LIST_VOLUMES_PUBLISHED_NODES',
      'SINGLE_NODE_MULTI_WRITER',
      'CREATE_DELETE_SNAPSHOT',
      'LIST_SNAPSHOTS',
      'EXPAND_VOLUME',
      'MODIFY_VOLUME',
    ]);
    const efs = new EfsBackend({
      api: new EfsApi({ region: 'us-east-1' }),
      nodeId: 'n',
      maxVolumesPerNode: 0,
      region: 'us-east-1',
      efsUtils: false,
    });
    expect(deriveCapabilities(efs).controller).toEqual([...BASE, 'GET_CAPACITY', 'SINGLE_NODE_MULTI_WRITER']);
    expect(deriveCapabilities(efs).plugin).toEqual([{ service: { type: 'CONTROLLER_SERVICE' } }]);
  });
});
