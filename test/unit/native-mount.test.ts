// The syscall mounter's pure parts: mount(8)-style options split into MS_* flags and filesystem data the
// way mount(8) splits them, and each errno of mount(2) turned into the gRPC code its meaning calls for.
import { describe, expect, it } from 'vitest';
import { chooseMounter, mountCall, mountErrorCode, SYSCALL_FS_TYPES } from '../../src/os/native-mount.js';

describe('mountCall', () => {
  it('turns flag options into MS_* bits and keeps filesystem options as data, in order', () => {
    expect(mountCall([])).toEqual({ flags: 0, data: null });
    expect(mountCall(['ro', 'nosuid', 'nodev', 'noexec'])).toEqual({ flags: 0x1 | 0x2 | 0x4 | 0x8, data: null });
    expect(mountCall(['noatime', 'discard', 'nouuid', 'errors=remount-ro'])).toEqual({
      flags: 0x400,
      data: 'discard,nouuid,errors=remount-ro',
    });
  });

  it('lets a later option undo an earlier one, as mount(8) does', () => {
    expect(mountCall(['ro', 'rw']).flags).toBe(0);
    expect(mountCall(['rw', 'ro']).flags).toBe(0x1);
    expect(mountCall(['noexec', 'exec', 'nosuid']).flags).toBe(0x2);
  });

  it('drops what mount(8) keeps to itself (fstab and utab options, x-*, comment=)', () => {
    expect(mountCall(['defaults', 'nofail', '_netdev', 'noauto', 'x-systemd.automount', 'comment=foo'])).toEqual({ flags: 0, data: null });
  });
});

describe('mountErrorCode', () => {
  it('maps every errno whose meaning is known, and only the unforeseen to INTERNAL', () => {
    expect(mountErrorCode('ENOENT')).toBe('NOT_FOUND');
    for (const e of ['EBUSY', 'EPERM', 'EACCES', 'EINVAL', 'ENOTDIR', 'ENOTBLK', 'ENODEV', 'ENXIO', 'EUCLEAN', 'EROFS']) {
      expect(mountErrorCode(e), e).toBe('FAILED_PRECONDITION');
    }
    expect(mountErrorCode('ENOMEM')).toBe('RESOURCE_EXHAUSTED');
    expect(mountErrorCode('EHWPOISON')).toBe('INTERNAL');
  });
});

describe('chooseMounter', () => {
  it('uses mount(2) on this machine (koffi loads), and mount(8) when asked', () => {
    expect(chooseMounter('auto')).toMatchObject({ mounter: { kind: 'syscall' } });
    expect(chooseMounter('auto').fallbackReason).toBeUndefined();
    expect(chooseMounter('mount').mounter.kind).toBe('mount(8)');
  });

  it('mounts only helper-free filesystems itself', () => {
    expect([...SYSCALL_FS_TYPES].sort()).toEqual(['ext2', 'ext3', 'ext4', 'xfs']);
  });
});
