// The node service's fault points (src/faults.ts), all crash-tested with every backend's lifecycle.
export const NODE_FAULT_POINTS = [
  'node.stage.after-open',
  'node.stage.after-format',
  'node.stage.after-mount',
  'node.publish.after-target',
  'node.publish.after-bind',
  'node.unpublish.after-unmount',
  'node.unstage.after-unmount',
  'node.unstage.after-close',
] as const;

export type NodeFaultPoint = (typeof NODE_FAULT_POINTS)[number];
