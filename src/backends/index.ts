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
    name: 'glusterfs',
    description: 'GlusterFS: a directory with a quota on a hosting volume, or a gluster volume per CSI volume (many nodes at once)',
    options: {
      'gluster-server': { type: 'string', multiple: true, env: 'REXCSI_GLUSTER_SERVERS', description: 'gluster server host (repeatable; env: comma-separated); the first reachable serves the volume file, the rest are backups' },
      'hosting-volume': { type: 'string', env: 'REXCSI_GLUSTER_HOSTING_VOLUME', description: 'gluster volume that holds the subdir-layout volumes' },
      'brick-root': { type: 'string', multiple: true, env: 'REXCSI_GLUSTER_BRICK_ROOTS', description: 'directory on the first gluster server for volume-layout bricks (repeatable; env: comma-separated)' },
      'glusterd-socket': { type: 'string', env: 'REXCSI_GLUSTERD_SOCKET', default: '/var/run/glusterd.socket', description: "glusterd's UNIX socket, through which the controller manages volumes" },
      'gluster-work-dir': { type: 'string', env: 'REXCSI_GLUSTER_WORK_DIR', default: '/run/rexcsi/glusterfs', description: 'where the controller briefly mounts hosting volumes' },
    },
    async create(ctx) {
      const { GlusterBackend } = await import('./glusterfs/glusterfs.js');
      const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String).filter((s) => s !== '') : []);
      const hosting = ctx.options['hosting-volume'];
      const backend = new GlusterBackend({
        servers: list(ctx.options['gluster-server']),
        hostingVolume: typeof hosting === 'string' && hosting !== '' ? hosting : undefined,
        brickRoots: list(ctx.options['brick-root']),
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
