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
      'pool-dir': { type: 'string', env: 'REXCSI_POOL_DIR', default: './var/pool', description: 'directory holding the volumes (backing files and metadata)' },
      'default-volume-size': { type: 'string', env: 'REXCSI_DEFAULT_VOLUME_SIZE', default: '1073741824', description: 'bytes given to a volume whose request names no size' },
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
    name: 'efs',
    description: 'AWS EFS file systems and access points, mounted over NFSv4.1 (every node of a region)',
    options: {
      region: { type: 'string', env: 'AWS_REGION', description: 'AWS region of the volumes (e.g. us-east-1)' },
      zone: { type: 'string', env: 'REXCSI_ZONE', description: "this node's availability zone (e.g. us-east-1a); efs: mount from the mount target there (unset: the file system's DNS name)" },
      'endpoint-url': { type: 'string', description: 'AWS API endpoint URL (default: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else the SDK default)' },
      'efs-utils': { type: 'boolean', env: 'REXCSI_EFS_UTILS', default: false, description: 'mount with amazon-efs-utils (mount -t efs -o tls); needed for access point volumes' },
      'efs-work-dir': { type: 'string', env: 'REXCSI_EFS_WORK_DIR', description: 'where the controller mounts a file system root to delete access point directories (default: the temp dir)' },
    },
    async create(ctx) {
      const { createEfsBackend } = await import('./efs/index.js');
      return createEfsBackend(ctx);
    },
  },
];

export function findBackend(name: string): BackendEntry | undefined {
  return BACKENDS.find((b) => b.name === name);
}
