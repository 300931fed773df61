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
];

export function findBackend(name: string): BackendEntry | undefined {
  return BACKENDS.find((b) => b.name === name);
}
