// Named fault points for the reliability tests (docs/reliability.md lists them). Unset in production, a
// point costs one comparison.
//   REXCSI_FAULT_POINT=<name>          the process dies with SIGKILL the first time it reaches <name>.
//   REXCSI_FAULT_DELAY=<name>:<ms>[,<name>:<ms>...]
//                                      reaching <name> waits <ms> milliseconds first (a slow backend, so a
//                                      test can let a caller's deadline pass while the operation runs on).
const armed = process.env.REXCSI_FAULT_POINT ?? '';
const delays = parseDelays(process.env.REXCSI_FAULT_DELAY ?? '');

/** The fault points of the volume lifecycle (create, stage, publish and back down), all crash-tested. */
export const LIFECYCLE_FAULT_POINTS = [
  'loop.create.after-file',
  'loop.create.after-meta',
  'loop.delete.after-meta',
  'node.stage.after-open',
  'node.stage.after-format',
  'node.stage.after-mount',
  'node.publish.after-target',
  'node.publish.after-bind',
  'node.unpublish.after-unmount',
  'node.unstage.after-unmount',
  'node.unstage.after-close',
] as const;

/** The fault points of the loop backend's data services (test/integration/loop-data.test.ts). */
export const DATA_SERVICE_FAULT_POINTS = [
  'loop.expand.after-file',
  'loop.snapshot.while-frozen',
  'loop.snapshot.after-copy',
  'loop.group.after-copy',
  'loop.group.delete.after-members',
] as const;

/** The glusterfs backend's points between recording a volume's name and making it (and back). */
export const GLUSTERFS_FAULT_POINTS = [
  'glusterfs.create.after-record',
  'glusterfs.delete.after-record',
  'glusterfs.delete.after-stop',
] as const;

/**
 * The ebs backend's points between an EC2 call and the wait for its effect (or the tag that records it); all
 * crash-tested by test/reliability/ebs-crash.test.ts. The attach and detach points are on the paths of both
 * ControllerPublish/Unpublish and --node-attach's NodeStage/NodeUnstage.
 */
export const EBS_FAULT_POINTS = [
  'ebs.create.after-create-volume',
  'ebs.publish.after-mode-tag',
  'ebs.attach.after-attach-volume',
  'ebs.detach.after-detach-volume',
  'ebs.unpublish.after-detach',
  'ebs.delete.after-delete-volume',
  'ebs.node-attach.after-tag',
  'ebs.node-detach.after-detach',
] as const;

/** Every fault point in the code. */
export const FAULT_POINTS = [
  ...LIFECYCLE_FAULT_POINTS,
  ...DATA_SERVICE_FAULT_POINTS,
  ...GLUSTERFS_FAULT_POINTS,
  ...EBS_FAULT_POINTS,
] as const;

export type FaultPointName = (typeof FAULT_POINTS)[number];
export type LifecycleFaultPoint = (typeof LIFECYCLE_FAULT_POINTS)[number];
export type EbsFaultPoint = (typeof EBS_FAULT_POINTS)[number];

export async function faultPoint(name: FaultPointName): Promise<void> {
  const ms = delays.get(name);
  if (ms !== undefined) await new Promise<void>((resolve) => setTimeout(resolve, ms));
  if (armed !== '' && armed === name) {
    process.kill(process.pid, 'SIGKILL');
  }
}

function parseDelays(spec: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of spec.split(',')) {
    const at = item.lastIndexOf(':');
    if (at <= 0) continue;
    const ms = Number(item.slice(at + 1));
    if (Number.isFinite(ms) && ms >= 0) out.set(item.slice(0, at), ms);
  }
  return out;
}
