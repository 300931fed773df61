/** The glusterfs backend's points between recording a volume's name and making it (and back). */
export const GLUSTERFS_FAULT_POINTS = [
  'glusterfs.create.after-record',
  'glusterfs.delete.after-record',
  'glusterfs.delete.after-stop',
] as const;
