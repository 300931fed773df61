import type { BackendFactory } from '../backend.js';
import { optionReader } from '../../lib/options.js';
import { GLUSTERFS_FAULT_POINTS } from './faults.js';

// The glusterfs backend as the registry knows it: its options, fault points, and how to build it.
export const glusterfsFactory: BackendFactory = {
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
  faultPoints: GLUSTERFS_FAULT_POINTS,
  async create(ctx) {
    const { GlusterBackend } = await import('./glusterfs.js');
    const o = optionReader((name) => ctx.options[name]);
    const backend = new GlusterBackend({
      servers: o.list('gluster-server'),
      hostingVolume: o.str('hosting-volume'),
      brickRoots: o.list('brick-root'),
      serverQuorum: o.bool('gluster-server-quorum'),
      glusterdSocket: String(ctx.options['glusterd-socket']),
      workDir: String(ctx.options['gluster-work-dir']),
      nodeId: ctx.nodeId,
      maxVolumesPerNode: ctx.maxVolumesPerNode,
    });
    await backend.init();
    return backend;
  },
};
