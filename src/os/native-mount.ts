// mount(2)/umount2(2) called directly through koffi (an FFI with prebuilt binaries, no compiler at install):
// no fork of mount(8) on the node's hot path. Bind mounts, read-only remounts of binds and ext2/3/4 and xfs
// mounts of a block device go straight to the kernel; mounts that need a helper program (glusterfs, nfs4,
// efs) and unmounts of them stay on mount(8)/umount(8), which run those helpers.
import { createRequire } from 'node:module';
import { CsiError, notFound, failedPrecondition, type ErrorCode } from '../errors.js';
import { statOrNotFound } from './fs.js';
import { execMounter, MAX_STACKED_MOUNTS, type BindMountOptions, type Mounter } from './mount.js';
import { mountsAt, type MountEntry } from './mountinfo.js';

// <sys/mount.h>
const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const MS_SYNCHRONOUS = 0x10;
const MS_REMOUNT = 0x20;
const MS_MANDLOCK = 0x40;
const MS_DIRSYNC = 0x80;
const MS_NOSYMFOLLOW = 0x100;
const MS_NOATIME = 0x400;
const MS_NODIRATIME = 0x800;
const MS_BIND = 0x1000;
const MS_SILENT = 0x8000;
const MS_RELATIME = 0x200000;
const MS_STRICTATIME = 0x1000000;
const MS_LAZYTIME = 0x2000000;
const UMOUNT_NOFOLLOW = 0x8;

/** Filesystems the kernel mounts from a block device with no helper program; everything else goes to mount(8). */
export const SYSCALL_FS_TYPES: ReadonlySet<string> = new Set(['ext2', 'ext3', 'ext4', 'xfs']);

// mount(8)'s option table: names that are flags of the mount call rather than filesystem data.
const FLAG_OPTIONS: Record<string, { set?: number; clear?: number }> = {
  ro: { set: MS_RDONLY },
  rw: { clear: MS_RDONLY },
  nosuid: { set: MS_NOSUID },
  suid: { clear: MS_NOSUID },
  nodev: { set: MS_NODEV },
  dev: { clear: MS_NODEV },
  noexec: { set: MS_NOEXEC },
  exec: { clear: MS_NOEXEC },
  sync: { set: MS_SYNCHRONOUS },
  async: { clear: MS_SYNCHRONOUS },
  dirsync: { set: MS_DIRSYNC },
  mand: { set: MS_MANDLOCK },
  nomand: { clear: MS_MANDLOCK },
  noatime: { set: MS_NOATIME },
  atime: { clear: MS_NOATIME },
  nodiratime: { set: MS_NODIRATIME },
  diratime: { clear: MS_NODIRATIME },
  relatime: { set: MS_RELATIME },
  norelatime: { clear: MS_RELATIME },
  strictatime: { set: MS_STRICTATIME },
  nostrictatime: { clear: MS_STRICTATIME },
  lazytime: { set: MS_LAZYTIME },
  nolazytime: { clear: MS_LAZYTIME },
  nosymfollow: { set: MS_NOSYMFOLLOW },
  silent: { set: MS_SILENT },
  loud: { clear: MS_SILENT },
  defaults: {},
};
// Options mount(8) keeps to itself (fstab and utab bookkeeping) and never hands to the kernel.
const USERSPACE_OPTIONS = new Set(['auto', 'noauto', 'nofail', '_netdev', 'user', 'nouser', 'users', 'owner', 'group']);

export interface MountCall {
  flags: number;
  /** the filesystem's own options, comma-separated, as mount(8) passes them; null when there are none */
  data: string | null;
}

/** Splits mount(8)-style options into MS_* flags and the filesystem's data string, the way mount(8) does. */
export function mountCall(options: readonly string[]): MountCall {
  let flags = 0;
  const data: string[] = [];
  for (const option of options) {
    const flag = FLAG_OPTIONS[option];
    if (flag) flags = (flags | (flag.set ?? 0)) & ~(flag.clear ?? 0);
    else if (!USERSPACE_OPTIONS.has(option) && !option.startsWith('x-') && !option.startsWith('comment=')) data.push(option);
  }
  return { flags, data: data.length > 0 ? data.join(',') : null };
}

type MountFn = ((source: string | null, target: string, fsType: string | null, flags: number, data: string | null) => number) & {
  async: (
    source: string | null,
    target: string,
    fsType: string | null,
    flags: number,
    data: string | null,
    cb: (err: unknown, res: number) => void,
  ) => void;
};
type Umount2Fn = ((target: string, flags: number) => number) & {
  async: (target: string, flags: number, cb: (err: unknown, res: number) => void) => void;
};

interface Libc {
  mount: MountFn;
  umount2: Umount2Fn;
  errno: () => number;
  errnoNames: Map<number, string>;
}

/** Loads libc's mount and umount2 through koffi; throws (with the reason) where koffi cannot load. */
export function loadLibc(): Libc {
  // koffi is CommonJS; require() keeps its load synchronous, so the caller decides once at start-up.
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  const mount = lib.func(
    'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
  ) as unknown as MountFn;
  const umount2 = lib.func('int umount2(const char *target, int flags)') as unknown as Umount2Fn;
  const errnoNames = new Map(Object.entries(koffi.os.errno).map(([name, n]) => [n, name]));
  return { mount, umount2, errno: () => koffi.errno(), errnoNames };
}

/** A failed system call: the errno, its name and what was being done, for the message and the gRPC code. */
export class SyscallError extends CsiError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly errno: string,
  ) {
    super(code, message);
  }
}

// A mount that can take long (an ext4 journal replay, the writeback of a last unmount) runs on libuv's
// thread pool; koffi restores the worker's errno before the callback runs, so it is still the call's own.
function callAsync(libc: Libc, start: (cb: (err: unknown, res: number) => void) => void): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    start((err, res) => {
      if (err) reject(err instanceof Error ? err : new Error(`koffi call failed: ${JSON.stringify(err)}`));
      else resolve(res === 0 ? undefined : errnoName(libc, libc.errno()));
    });
  });
}

function callSync(libc: Libc, result: number): string | undefined {
  return result === 0 ? undefined : errnoName(libc, libc.errno());
}

function errnoName(libc: Libc, n: number): string {
  return libc.errnoNames.get(n) ?? `errno ${n}`;
}

/** The gRPC code for an errno of mount(2): each one where its meaning is known, INTERNAL only for the unforeseen. */
export function mountErrorCode(errno: string): ErrorCode {
  switch (errno) {
    case 'ENOENT':
      return 'NOT_FOUND';
    case 'EBUSY': // the device is mounted elsewhere or the target is busy
    case 'EPERM': // no CAP_SYS_ADMIN in this mount namespace
    case 'EACCES':
    case 'EROFS':
    case 'ENOTDIR': // a directory bound onto a file or the other way round
    case 'ENOTBLK':
    case 'ENODEV': // the kernel has no such filesystem
    case 'ENXIO': // the device is gone
    case 'EUCLEAN': // a damaged filesystem
    case 'EIO':
    case 'EINVAL': // wrong filesystem type, an option it refuses, a bad superblock, or an unbindable source
    case 'ELOOP':
      return 'FAILED_PRECONDITION';
    case 'ENOMEM':
    case 'ENOSPC':
    case 'EMFILE':
      return 'RESOURCE_EXHAUSTED';
    default:
      return 'INTERNAL';
  }
}

const HINTS: Record<string, string> = {
  EBUSY: 'busy: already mounted, or in use',
  EPERM: 'not permitted: the plugin needs CAP_SYS_ADMIN in the host mount namespace',
  EACCES: 'permission denied',
  EROFS: 'the device is read-only',
  ENOTDIR: 'a directory and a file do not match',
  ENOTBLK: 'not a block device',
  ENODEV: 'the kernel does not know this filesystem type',
  ENXIO: 'the device is gone',
  EUCLEAN: 'the filesystem is damaged; fsck it',
  EIO: 'I/O error',
  EINVAL: 'wrong filesystem type, an option the filesystem refuses, or a bad superblock',
  ENOMEM: 'out of kernel memory or mount slots',
};

function describe(errno: string): string {
  return HINTS[errno] ? `${errno}: ${HINTS[errno]}` : errno;
}

/** The syscall implementation of Mounter; helper filesystems are handed to `fallback` (mount(8)). */
export class SyscallMounter implements Mounter {
  readonly kind = 'syscall' as const;

  constructor(
    private readonly libc: Libc,
    private readonly fallback: Mounter = execMounter,
  ) {}

  async mount(source: string, target: string, fsType: string, options: string[]): Promise<void> {
    if (!SYSCALL_FS_TYPES.has(fsType)) return this.fallback.mount(source, target, fsType, options);
    const call = mountCall(options);
    const errno = await callAsync(this.libc, (cb) => this.libc.mount.async(source, target, fsType, call.flags, call.data, cb));
    if (errno) {
      throw await this.mountFailure(
        errno,
        source,
        target,
        `mount ${source} on ${target} as ${fsType} [${options.join(',')}]`,
        'mount source',
      );
    }
  }

  // A new bind ignores every flag but MS_REC; the flags (ro, nosuid, ...) take a second MS_REMOUNT|MS_BIND call.
  async bindMount(source: string, target: string, opts: BindMountOptions): Promise<void> {
    const errno = callSync(this.libc, this.libc.mount(source, target, null, MS_BIND, null));
    if (errno) throw await this.mountFailure(errno, source, target, `bind mount ${source} on ${target}`, 'bind source');
    const { flags } = mountCall([...(opts.readOnly ? ['ro'] : []), ...(opts.options ?? [])]);
    if (flags === 0) return;
    const remount = callSync(this.libc, this.libc.mount(null, target, null, MS_REMOUNT | MS_BIND | flags, null));
    if (!remount) return;
    // Never leave a writable "read-only" bind behind.
    await this.unmountTop(target);
    throw new SyscallError(
      mountErrorCode(remount) === 'NOT_FOUND' ? 'FAILED_PRECONDITION' : mountErrorCode(remount),
      `bind mount at ${target} could not be made ${opts.readOnly ? 'read-only' : 'restricted'} (remount: ${describe(remount)})`,
      remount,
    );
  }

  /**
   * umount2(2) until the kernel says nothing is mounted there (EINVAL) or the path is missing (ENOENT).
   * `stack`, when the caller read the mount table already, sends helper filesystems (FUSE, NFS) to umount(8).
   */
  async unmount(target: string, stack?: readonly MountEntry[]): Promise<void> {
    const layers = stack ?? (await mountsAt(target));
    if (layers.some((e) => !isSyscallUnmountable(e))) return this.fallback.unmount(target, layers);
    for (let i = 0; i < MAX_STACKED_MOUNTS; i++) {
      if (!(await this.unmountTop(target))) return;
    }
    throw failedPrecondition(`${target} still mounted after ${MAX_STACKED_MOUNTS} unmounts`);
  }

  /** Returns false when nothing was mounted at target. */
  private async unmountTop(target: string): Promise<boolean> {
    const errno = await callAsync(this.libc, (cb) => this.libc.umount2.async(target, UMOUNT_NOFOLLOW, cb));
    if (!errno) return true;
    if (errno === 'EINVAL' || errno === 'ENOENT') return false; // not a mount point (or unmounted meanwhile): done
    throw new SyscallError(
      errno === 'ENOMEM' ? 'RESOURCE_EXHAUSTED' : errno === 'EPERM' || errno === 'EBUSY' ? 'FAILED_PRECONDITION' : 'INTERNAL',
      `cannot unmount ${target} (${errno === 'EBUSY' ? 'EBUSY: a process still has files open there' : describe(errno)})`,
      errno,
    );
  }

  // ENOENT: say which path is missing, with the message the mount(8) path's checks give.
  private async mountFailure(errno: string, source: string, target: string, what: string, sourceName: string): Promise<CsiError> {
    if (errno === 'ENOENT') {
      await Promise.all([statOrNotFound(source, sourceName), statOrNotFound(target, 'mount point')]);
      return notFound(`${what}: ENOENT`);
    }
    return new SyscallError(mountErrorCode(errno), `cannot ${what} (${describe(errno)})`, errno);
  }
}

// Filesystems whose mount(8) helper may keep state to clear at unmount (umount.nfs, utab entries of FUSE helpers).
const HELPER_FS_TYPES = new Set(['nfs', 'nfs4', 'cifs', 'smb3', 'ceph', 'glusterfs', 'efs']);

/** Everything but a helper filesystem unmounts by syscall: a bind shows its source's type, a device node devtmpfs. */
function isSyscallUnmountable(e: MountEntry): boolean {
  return !HELPER_FS_TYPES.has(e.fsType) && !e.fsType.startsWith('fuse');
}

export type MounterChoice = 'auto' | 'syscall' | 'mount';
export const MOUNTER_CHOICES: readonly MounterChoice[] = ['auto', 'syscall', 'mount'];

export interface ChosenMounter {
  mounter: Mounter;
  /** why `auto` fell back to mount(8), said once at start-up */
  fallbackReason?: string;
}

/** `auto`: system calls when koffi loads, else mount(8); `syscall` insists (throws why it cannot); `mount`: mount(8). */
export function chooseMounter(choice: MounterChoice): ChosenMounter {
  if (choice === 'mount') return { mounter: execMounter };
  try {
    return { mounter: new SyscallMounter(loadLibc()) };
  } catch (e) {
    const reason = `koffi cannot load mount(2) from libc (${(e as Error).message.split('\n', 1)[0]})`;
    if (choice === 'syscall') throw new Error(reason, { cause: e });
    return { mounter: execMounter, fallbackReason: reason };
  }
}
