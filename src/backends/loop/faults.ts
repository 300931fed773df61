// The loop backend's fault points (src/faults.ts).

/** Between writing a volume's backing file and its metadata (and back), crash-tested with the node's lifecycle points. */
export const LOOP_LIFECYCLE_FAULT_POINTS = ['loop.create.after-file', 'loop.create.after-meta', 'loop.delete.after-meta'] as const;

/** The data services' points (test/integration/loop-data.test.ts). */
export const LOOP_DATA_FAULT_POINTS = [
  'loop.expand.after-file',
  'loop.snapshot.while-frozen',
  'loop.snapshot.after-copy',
  'loop.group.after-copy',
  'loop.group.delete.after-members',
] as const;

export const LOOP_FAULT_POINTS = [...LOOP_LIFECYCLE_FAULT_POINTS, ...LOOP_DATA_FAULT_POINTS] as const;
