// The CSIDriver, StorageClass and sidecar fields each backend needs in Kubernetes, derived from what its
// plugin advertises over gRPC (GetPluginCapabilities, ControllerGetCapabilities, NodeGetCapabilities), then
// compared with packaging/kubernetes (loop) and with the table in docs/packaging.md (every backend). The
// advertised features are a table here; the second block checks that table against the running plugins
// (loop on real loop devices; ebs and efs against moto_server; glusterfs needs a glusterd, so its row is
// checked by test/integration/glusterfs.test.ts, which asserts the same capabilities but VOLUME_MOUNT_GROUP).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { csiClients } from '../helpers/client.js';
import { startEbsWorld } from '../helpers/ebs.js';
import { REGION as EFS_REGION, startEfsWorld, ZONE_WITH_TARGET } from '../helpers/efs.js';
import { REPO_ROOT, startPlugin, type PluginProcess } from '../helpers/plugin.js';

interface Advertised {
  /** Controller PUBLISH_UNPUBLISH_VOLUME */
  publish: boolean;
  /** Controller EXPAND_VOLUME */
  expand: boolean;
  /** Controller GET_CAPACITY */
  capacity: boolean;
  /** Identity VOLUME_ACCESSIBILITY_CONSTRAINTS */
  topology: boolean;
  /** Controller CREATE_DELETE_SNAPSHOT */
  snapshots: boolean;
  /** Node VOLUME_MOUNT_GROUP (the driver applies fsGroup itself) */
  mountGroup: boolean;
}

export const ADVERTISED: Record<'loop' | 'ebs' | 'glusterfs' | 'efs', Advertised> = {
  loop: { publish: false, expand: true, capacity: true, topology: true, snapshots: true, mountGroup: false },
  ebs: { publish: true, expand: true, capacity: true, topology: true, snapshots: true, mountGroup: false },
  glusterfs: { publish: false, expand: true, capacity: true, topology: false, snapshots: false, mountGroup: false },
  efs: { publish: false, expand: false, capacity: true, topology: false, snapshots: false, mountGroup: false },
};

/** Volumes rexcsi formats for one node (ext4/xfs) vs shared network filesystems. */
const SHARED_FILESYSTEM = new Set(['glusterfs', 'efs']);

export interface KubernetesFields {
  attachRequired: boolean;
  storageCapacity: boolean;
  fsGroupPolicy: 'File' | 'None';
  allowVolumeExpansion: boolean;
  volumeBindingMode: 'WaitForFirstConsumer' | 'Immediate';
  controllerSidecars: string[];
}

/** What Kubernetes needs, from what the plugin advertises. */
export function kubernetesFields(backend: keyof typeof ADVERTISED): KubernetesFields {
  const a = ADVERTISED[backend];
  return {
    // The kubelet waits for a VolumeAttachment only when asked: true exactly when ControllerPublish exists.
    attachRequired: a.publish,
    // Capacity only guides the scheduler where a volume's topology limits the nodes that can use it.
    storageCapacity: a.capacity && a.topology,
    // The kubelet applies fsGroup to a filesystem rexcsi made for one node; never to a shared one, where a
    // recursive chown would rewrite every other pod's files (unless the driver does it: VOLUME_MOUNT_GROUP).
    fsGroupPolicy: SHARED_FILESYSTEM.has(backend) || a.mountGroup ? 'None' : 'File',
    allowVolumeExpansion: a.expand,
    volumeBindingMode: a.topology ? 'WaitForFirstConsumer' : 'Immediate',
    controllerSidecars: [
      'csi-provisioner',
      ...(a.publish ? ['csi-attacher'] : []),
      ...(a.expand ? ['csi-resizer'] : []),
      ...(a.snapshots ? ['csi-snapshotter'] : []),
    ],
  };
}

type Obj = {
  kind: string;
  spec?: Record<string, unknown> & { template?: { spec: { containers: { name: string; args?: string[]; env?: { name: string }[] }[] } } };
  allowVolumeExpansion?: boolean;
  volumeBindingMode?: string;
};
const read = (rel: string): string => readFileSync(join(REPO_ROOT, rel), 'utf8');
const manifests = ['csidriver.yaml', 'plugin.yaml'].flatMap((f) =>
  parseAllDocuments(read(`packaging/kubernetes/${f}`)).map((d) => d.toJS() as Obj),
);

describe('Kubernetes fields derived from the advertised features', () => {
  it('the loop manifests carry exactly the fields loop needs', () => {
    const want = kubernetesFields('loop');
    const driver = manifests.find((o) => o.kind === 'CSIDriver')!.spec!;
    expect({
      attachRequired: driver['attachRequired'],
      storageCapacity: driver['storageCapacity'],
      fsGroupPolicy: driver['fsGroupPolicy'],
    }).toEqual({
      attachRequired: want.attachRequired,
      storageCapacity: want.storageCapacity,
      fsGroupPolicy: want.fsGroupPolicy,
    });
    const sc = manifests.find((o) => o.kind === 'StorageClass')!;
    expect({ allowVolumeExpansion: sc.allowVolumeExpansion, volumeBindingMode: sc.volumeBindingMode }).toEqual({
      allowVolumeExpansion: want.allowVolumeExpansion,
      volumeBindingMode: want.volumeBindingMode,
    });
    expect(sc['spec' as keyof Obj]).toBeUndefined();
    expect(read('packaging/kubernetes/csidriver.yaml')).toContain('csi.storage.k8s.io/fstype:'); // not the deprecated fsType
    const containers = manifests.find((o) => o.kind === 'DaemonSet')!.spec!.template!.spec.containers;
    expect(containers.map((c) => c.name).filter((n) => !['rexcsi', 'node-driver-registrar', 'liveness-probe'].includes(n))).toEqual(
      want.controllerSidecars,
    );
    const provisioner = containers.find((c) => c.name === 'csi-provisioner')!;
    expect(provisioner.args!.includes('--enable-capacity')).toBe(want.storageCapacity);
    // Capacity objects are owned by the workload: the provisioner needs to know its pod.
    if (want.storageCapacity) expect(provisioner.env!.map((e) => e.name)).toEqual(expect.arrayContaining(['POD_NAME', 'NAMESPACE']));
  });

  it("docs/packaging.md's table gives every backend's derived fields", () => {
    const rows = new Map(
      [...read('docs/packaging.md').matchAll(/^\| `(loop|ebs|glusterfs|efs)` \| (.+) \|$/gm)].map((m) => [m[1]!, m[2]!.split(' | ')]),
    );
    for (const backend of Object.keys(ADVERTISED) as (keyof typeof ADVERTISED)[]) {
      const f = kubernetesFields(backend);
      expect(rows.get(backend), backend).toEqual([
        String(f.attachRequired),
        String(f.storageCapacity),
        f.fsGroupPolicy,
        String(f.allowVolumeExpansion),
        f.volumeBindingMode,
        f.controllerSidecars.join(', '),
      ]);
    }
  });
});

/** What a running plugin advertises, in the table's terms. */
async function advertisedBy(plugin: PluginProcess): Promise<Advertised> {
  const csi = csiClients(plugin.endpoint);
  try {
    const identity = (await csi.identity.GetPluginCapabilities({})).capabilities.map((c) => c.service?.type);
    const controller = (await csi.controller.ControllerGetCapabilities({})).capabilities.map((c) => c.rpc?.type);
    const node = (await csi.node.NodeGetCapabilities({})).capabilities.map((c) => c.rpc?.type);
    return {
      publish: controller.includes('PUBLISH_UNPUBLISH_VOLUME'),
      expand: controller.includes('EXPAND_VOLUME'),
      capacity: controller.includes('GET_CAPACITY'),
      topology: identity.includes('VOLUME_ACCESSIBILITY_CONSTRAINTS'),
      snapshots: controller.includes('CREATE_DELETE_SNAPSHOT'),
      mountGroup: node.includes('VOLUME_MOUNT_GROUP'),
    };
  } finally {
    csi.close();
  }
}

describe('the table agrees with the running plugins', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('loop, on real loop devices', async () => {
    const plugin = await startPlugin({ name: 'k8s-features-loop' });
    cleanups.push(() => plugin.cleanup());
    expect(await advertisedBy(plugin)).toEqual(ADVERTISED.loop);
  });

  it('ebs, against moto_server', async () => {
    const world = await startEbsWorld('k8s-features-ebs');
    cleanups.push(() => world.stop());
    const plugin = await world.startPlugin({ name: 'k8s-features-ebs' });
    cleanups.push(() => plugin.cleanup());
    expect(await advertisedBy(plugin)).toEqual(ADVERTISED.ebs);
  });

  it('efs, against moto_server', async () => {
    const world = await startEfsWorld();
    cleanups.push(() => world.stop());
    const plugin = await startPlugin({
      backend: 'efs',
      name: 'k8s-features-efs',
      args: ['--region', EFS_REGION, '--zone', ZONE_WITH_TARGET, '--endpoint-url', world.moto.endpoint],
    });
    cleanups.push(() => plugin.cleanup());
    expect(await advertisedBy(plugin)).toEqual(ADVERTISED.efs);
  });
});
