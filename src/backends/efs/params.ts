import { createHash } from 'node:crypto';
import { invalidArgument } from '../../errors.js';
import { MAX_EFS_PATH, pathProblem } from './volume-id.js';

// CreateVolume parameters of the efs backend, checked once into a typed plan.

export const PARAMETER_KEYS = [
  'fileSystemId',
  'directoryPerms',
  'uid',
  'gid',
  'gidRangeStart',
  'gidRangeEnd',
  'basePath',
  'deleteAccessPointRootDir',
];

/** aws-efs-csi-driver's defaults, so a StorageClass moved from it allocates the same way. */
export const DEFAULT_GID_RANGE_START = 50000;
export const DEFAULT_GID_RANGE_END = 7000000;
const MAX_POSIX_ID = 4294967295;

export interface AccessPointPlan {
  fileSystemId: string;
  permissions: string;
  /** fixed uid, or undefined: the allocated gid is used */
  uid?: number | undefined;
  /** a fixed gid, or a range each volume takes a free one from */
  gid: { fixed: number } | { start: number; end: number };
  basePath: string;
  deleteRootDir: boolean;
}

const FS_ID = /^fs-[0-9a-f]{8,40}$/;

export function parseParameters(p: Record<string, string>): AccessPointPlan {
  const fileSystemId = p.fileSystemId;
  if (!fileSystemId) throw invalidArgument('parameter fileSystemId is required: the EFS file system the access point is made on (fs-xxxx)');
  if (!FS_ID.test(fileSystemId))
    throw invalidArgument(`parameter fileSystemId=${JSON.stringify(fileSystemId)} is not a file system id (fs-xxxx)`);
  const permissions = p.directoryPerms;
  if (!permissions) throw invalidArgument('parameter directoryPerms is required: octal permissions of the volume directory, such as 700');
  if (!/^[0-7]{3,4}$/.test(permissions))
    throw invalidArgument(`parameter directoryPerms=${JSON.stringify(permissions)} must be 3 or 4 octal digits, such as 700`);
  const uid = p.uid !== undefined ? posixId('uid', p.uid) : undefined;
  const hasRange = p.gidRangeStart !== undefined || p.gidRangeEnd !== undefined;
  if (p.gid !== undefined && hasRange)
    throw invalidArgument('parameters gid and gidRangeStart/gidRangeEnd exclude each other: give a fixed gid or a range');
  let gid: AccessPointPlan['gid'];
  if (p.gid !== undefined) gid = { fixed: posixId('gid', p.gid) };
  else {
    const start = p.gidRangeStart !== undefined ? posixId('gidRangeStart', p.gidRangeStart) : DEFAULT_GID_RANGE_START;
    const end = p.gidRangeEnd !== undefined ? posixId('gidRangeEnd', p.gidRangeEnd) : DEFAULT_GID_RANGE_END;
    if (start > end) throw invalidArgument(`parameter gidRangeStart (${start}) is above gidRangeEnd (${end})`);
    gid = { start, end };
  }
  const basePath = p.basePath ?? '/';
  const problem = pathProblem(basePath);
  if (problem) throw invalidArgument(`parameter basePath: ${problem}`);
  const flag = p.deleteAccessPointRootDir ?? 'false';
  if (flag !== 'true' && flag !== 'false')
    throw invalidArgument(`parameter deleteAccessPointRootDir=${JSON.stringify(flag)} must be true or false`);
  return { fileSystemId, permissions, uid, gid, basePath, deleteRootDir: flag === 'true' };
}

function posixId(name: string, value: string): number {
  const n = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_POSIX_ID)
    throw invalidArgument(`parameter ${name}=${JSON.stringify(value)} must be a whole number from 0 to ${MAX_POSIX_ID}`);
  return n;
}

/**
 * The access point's root directory: basePath/<name> when the CO's name is a clean path component that
 * fits EFS's 100-character limit, else basePath/vol-<hash of the name> (still one directory per name).
 */
export function rootPathFor(basePath: string, name: string): string {
  const prefix = basePath === '/' ? '/' : `${basePath}/`;
  const direct = `${prefix}${name}`;
  if (/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name) && direct.length <= MAX_EFS_PATH) return direct;
  const hashed = `${prefix}vol-${createHash('sha256').update(name).digest('hex').slice(0, 32)}`;
  if (hashed.length > MAX_EFS_PATH)
    throw invalidArgument(
      `parameter basePath ${JSON.stringify(basePath)} is too long to hold volume directories (EFS paths are at most ${MAX_EFS_PATH} characters)`,
    );
  return hashed;
}
