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

export type EbsFaultPoint = (typeof EBS_FAULT_POINTS)[number];
