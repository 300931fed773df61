import { invalidArgument } from '../../errors.js';

// EFS volume ids. Three forms, parsed strictly because a volume id becomes a mount source and a path:
//   fs-0123abcd                 the whole file system (static)
//   fs-0123abcd:/sub/path       a directory of it (static)
//   fs-0123abcd::fsap-0123abcd  an access point of it (static, or made by CreateVolume)
// An id that does not start with "fs-" is simply not an EFS volume (NOT_FOUND, as csi-sanity's made-up ids
// expect); one that does and is malformed is INVALID_ARGUMENT.

export interface EfsVolumeId {
  fileSystemId: string;
  /** '/' for the whole file system */
  path: string;
  accessPointId?: string | undefined;
}

const FS_ID = /^fs-[0-9a-f]{8,40}$/;
const AP_ID = /^fsap-[0-9a-f]{8,40}$/;
/** One path component: no separators, no dot-only names, nothing a shell or mount(8) would read specially. */
const PATH_COMPONENT = /^[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]*$/;
export const MAX_EFS_PATH = 100;

export function looksLikeEfsId(id: string): boolean {
  return id.startsWith('fs-');
}

/** Parses an id that starts with "fs-"; INVALID_ARGUMENT naming what is wrong otherwise. */
export function parseVolumeId(id: string): EfsVolumeId {
  const bad = (why: string) =>
    invalidArgument(
      `volume id ${JSON.stringify(id)} is not an EFS volume id (${why}); expected fs-xxxx, fs-xxxx:/sub/path or fs-xxxx::fsap-xxxx`,
    );
  const apSep = id.indexOf('::');
  if (apSep >= 0) {
    const fileSystemId = id.slice(0, apSep);
    const accessPointId = id.slice(apSep + 2);
    if (!FS_ID.test(fileSystemId)) throw bad(`${JSON.stringify(fileSystemId)} is not a file system id`);
    if (!AP_ID.test(accessPointId)) throw bad(`${JSON.stringify(accessPointId)} is not an access point id`);
    return { fileSystemId, path: '/', accessPointId };
  }
  const pathSep = id.indexOf(':');
  const fileSystemId = pathSep >= 0 ? id.slice(0, pathSep) : id;
  if (!FS_ID.test(fileSystemId)) throw bad(`${JSON.stringify(fileSystemId)} is not a file system id`);
  if (pathSep < 0) return { fileSystemId, path: '/' };
  const problem = pathProblem(id.slice(pathSep + 1));
  if (problem) throw bad(problem);
  return { fileSystemId, path: id.slice(pathSep + 1) };
}

/**
 * Why `path` is not a clean absolute path inside a file system, or undefined when it is: absolute, no
 * empty, '.' or '..' components, no trailing slash (except '/' itself), conservative characters only.
 */
export function pathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return `path ${JSON.stringify(path)} must start with /`;
  if (path === '/') return undefined;
  if (path.length > MAX_EFS_PATH) return `path is ${path.length} characters; EFS allows ${MAX_EFS_PATH}`;
  for (const part of path.slice(1).split('/')) {
    if (part === '..' || part === '.') return `path ${JSON.stringify(path)} must not contain '${part}'`;
    if (part === '') return `path ${JSON.stringify(path)} has an empty component (// or a trailing /)`;
    if (!PATH_COMPONENT.test(part))
      return `path component ${JSON.stringify(part)} has characters other than letters, digits and . _ - @ + =`;
  }
  return undefined;
}

export function formatVolumeId(v: EfsVolumeId): string {
  if (v.accessPointId) return `${v.fileSystemId}::${v.accessPointId}`;
  return v.path === '/' ? v.fileSystemId : `${v.fileSystemId}:${v.path}`;
}
