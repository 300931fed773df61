import type { BackendFactory } from '../backend.js';
import { LOOP_FAULT_POINTS } from './faults.js';

// The loop backend as the registry knows it: its options, fault points, and how to build it.
export const loopFactory: BackendFactory = {
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
  faultPoints: LOOP_FAULT_POINTS,
  async create(ctx) {
    const { LoopBackend } = await import('./loop.js');
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
};
