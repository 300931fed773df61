import type { Backend } from './backend.js';

// The backend registry. Each backend names its own command-line options (with the environment variable
// that may set each), and is loaded only when chosen, so the loop backend never loads the AWS SDK.

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  env?: string;
  default?: string | boolean;
  description: string;
}

/** What every backend is given: the common settings and its own options' values. */
export interface BackendContext {
  nodeId: string;
  maxVolumesPerNode: number;
  options: Record<string, string | boolean | string[] | undefined>;
}

export interface BackendEntry {
  name: string;
  description: string;
  options: Record<string, OptionSpec>;
  create(ctx: BackendContext): Promise<Backend>;
}

export const BACKENDS: BackendEntry[] = [
  {
    name: 'loop',
    description: 'sparse files in a pool directory, attached as loop devices (one host)',
    options: {
      'pool-dir': {
        type: 'string',
        env: 'REXCSI_POOL_DIR',
        default: './var/pool',
        description: 'directory holding the volumes (backing files and metadata)',
      },
      'default-volume-size': {
        type: 'string',
        env: 'REXCSI_DEFAULT_VOLUME_SIZE',
        default: '1073741824',
        description: 'bytes given to a volume whose request names no size',
      },
    },
    async create(ctx) {
      const { LoopBackend } = await import('./loop/loop.js');
      const size = String(ctx.options['default-volume-size']);
      if (!/^[1-9]\d*$/.test(size)) throw new Error(`--default-volume-size=${JSON.stringify(size)}: expected a size in bytes`);
      const backend = new LoopBackend({
        poolDir: String(ctx.options['pool-dir']),
        nodeId: ctx.nodeId,
        maxVolumesPerNode: ctx.maxVolumesPerNode,
        defaultVolumeBytes: Number(size),
      });
      await backend.init();
      return backend;
    },
  },
  {
    name: 'ebs',
    description: 'Amazon EBS volumes through the EC2 API, attached by ControllerPublish (or by the node with --node-attach)',
    options: {
      region: { type: 'string', env: 'AWS_REGION', description: 'AWS region (default: from --zone or the instance metadata)' },
      'endpoint-url': {
        type: 'string',
        env: 'REXCSI_EC2_ENDPOINT_URL',
        description: "EC2 API endpoint (default: AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL, else AWS's own)",
      },
      'instance-id': { type: 'string', env: 'REXCSI_INSTANCE_ID', description: "this node's EC2 instance id (default: from IMDSv2)" },
      zone: {
        type: 'string',
        env: 'REXCSI_ZONE',
        description: "this node's availability zone, also the zone of volumes created without topology (default: from IMDSv2)",
      },
      'cluster-tag': {
        type: 'string',
        env: 'REXCSI_CLUSTER_TAG',
        default: 'default',
        description: 'value of the rexcsi.io/cluster tag that marks the volumes and snapshots this plugin manages',
      },
      'node-attach': {
        type: 'boolean',
        env: 'REXCSI_NODE_ATTACH',
        default: false,
        description:
          'NodeStage without publish_context attaches the volume to this node itself, NodeUnstage detaches it (Mesos external volumes)',
      },
      preempt: {
        type: 'boolean',
        env: 'REXCSI_PREEMPT',
        default: false,
        description: 'with --node-attach: force-detach a volume from a stopped or terminated instance first',
      },
      'attach-limit': {
        type: 'string',
        env: 'REXCSI_ATTACH_LIMIT',
        description: 'volume attachments per instance, root included (default: by instance type)',
      },
      'by-id-dir': {
        type: 'string',
        env: 'REXCSI_BY_ID_DIR',
        default: '/dev/disk/by-id',
        description: 'where udev links NVMe devices by volume id',
      },
      'sys-root': { type: 'string', env: 'REXCSI_SYS_ROOT', default: '/sys', description: 'sysfs root used to read device serials' },
      'wait-timeout': {
        type: 'string',
        env: 'REXCSI_EBS_WAIT_TIMEOUT',
        default: '300',
        description: 'seconds to wait for a volume to become available, attached or detached',
      },
      'device-timeout': {
        type: 'string',
        env: 'REXCSI_EBS_DEVICE_TIMEOUT',
        default: '60',
        description: "seconds to wait for an attached volume's device to appear on the node",
      },
    },
    async create(ctx) {
      const { createEbsBackend } = await import('./ebs/factory.js');
      return createEbsBackend(ctx);
    },
  },
  {
    name: 'efs',
    description: 'AWS EFS file systems and access points, mounted over NFSv4.1 (every node of a region)',
    options: {
      region: { type: 'string', env: 'AWS_REGION', description: 'AWS region of the volumes (e.g. us-east-1)' },
      zone: {
        type: 'string',
        env: 'REXCSI_ZONE',
        description:
          "this node's availability zone (e.g. us-east-1a); efs: mount from the mount target there (unset: the file system's DNS name)",
      },
      'endpoint-url': {
        type: 'string',
        description: 'AWS API endpoint URL (default: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else the SDK default)',
      },
      'efs-utils': {
        type: 'boolean',
        env: 'REXCSI_EFS_UTILS',
        default: false,
        description: 'mount with amazon-efs-utils (mount -t efs -o tls); needed for access point volumes',
      },
      'efs-work-dir': {
        type: 'string',
        env: 'REXCSI_EFS_WORK_DIR',
        description: 'where the controller mounts a file system root to delete access point directories (default: the temp dir)',
      },
    },
    async create(ctx) {
      const { createEfsBackend } = await import('./efs/index.js');
      return createEfsBackend(ctx);
    },
  },
  {
    name: 'glusterfs',
    description: 'GlusterFS: a directory with a quota on a hosting volume, or a gluster volume per CSI volume (many nodes at once)',
    options: {
      'gluster-server': {
        type: 'string',
        multiple: true,
        env: 'REXCSI_GLUSTER_SERVERS',
        description:
          'gluster server host (repeatable; env: comma-separated); the first reachable serves the volume file, the rest are backups',
      },
      'hosting-volume': {
        type: 'string',
        env: 'REXCSI_GLUSTER_HOSTING_VOLUME',
        description: 'gluster volume that holds the subdir-layout volumes',
      },
      'brick-root': {
        type: 'string',
        multiple: true,
        env: 'REXCSI_GLUSTER_BRICK_ROOTS',
        description: 'volume-layout brick directory: DIR on every gluster server, or HOST:DIR on one (repeatable; env: comma-separated)',
      },
      'gluster-server-quorum': {
        type: 'boolean',
        env: 'REXCSI_GLUSTER_SERVER_QUORUM',
        default: false,
        description: 'set server quorum (cluster.server-quorum-type server) on the volume-layout volumes rexcsi creates',
      },
      'glusterd-socket': {
        type: 'string',
        env: 'REXCSI_GLUSTERD_SOCKET',
        default: '/var/run/glusterd.socket',
        description: "glusterd's UNIX socket, through which the controller manages volumes",
      },
      'gluster-work-dir': {
        type: 'string',
        env: 'REXCSI_GLUSTER_WORK_DIR',
        default: '/run/rexcsi/glusterfs',
        description: 'where the controller briefly mounts hosting volumes',
      },
    },
    async create(ctx) {
      const { GlusterBackend } = await import('./glusterfs/glusterfs.js');
      const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String).filter((s) => s !== '') : []);
      const hosting = ctx.options['hosting-volume'];
      const backend = new GlusterBackend({
        servers: list(ctx.options['gluster-server']),
        hostingVolume: typeof hosting === 'string' && hosting !== '' ? hosting : undefined,
        brickRoots: list(ctx.options['brick-root']),
        serverQuorum: ctx.options['gluster-server-quorum'] === true,
        glusterdSocket: String(ctx.options['glusterd-socket']),
        workDir: String(ctx.options['gluster-work-dir']),
        nodeId: ctx.nodeId,
        maxVolumesPerNode: ctx.maxVolumesPerNode,
      });
      await backend.init();
      return backend;
    },
  },
];

export function findBackend(name: string): BackendEntry | undefined {
  return BACKENDS.find((b) => b.name === name);
}
