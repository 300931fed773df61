// THE SIMULATED PART of the efs reliability suites: this machine has no kernel NFS client, so a plugin
// started with nfsSimEnv() finds test/helpers/nfs-sim/mount first in its PATH. That shim turns only
// `mount -t efs|nfs4|nfs SOURCE TARGET` into an overlay mount whose upper directory under `root` stands for
// the file system's directory on the NFS server (data persists across mounts, the mount table shows the
// source the real mount would); every other command, and every other mount, runs for real.
import { join } from 'node:path';
import { REPO_ROOT } from './plugin.js';

export const NFS_SIM_BIN = join(REPO_ROOT, 'test', 'helpers', 'nfs-sim');

/** Environment for a plugin process whose NFS mounts are simulated, the "server" side kept under root. */
export function nfsSimEnv(root: string): Record<string, string> {
  return { PATH: `${NFS_SIM_BIN}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, REXCSI_NFS_SIM_ROOT: root };
}
