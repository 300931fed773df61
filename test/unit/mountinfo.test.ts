import { describe, expect, it } from 'vitest';
import { decodeMountField, deviceMajor, deviceMinor, parseMountInfo, stackOrder } from '../../src/os/mountinfo.js';

const SAMPLE = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard,resuid=65534',
  '43 27 7:0 / /var/lib/csi/pods/p1/volume\\040one ro,nosuid,nodev,relatime shared:5 master:2 - xfs /dev/loop0 rw,inode64,noquota',
  '44 43 7:0 /sub\\011dir /var/lib/csi/pods/p1/volume\\040one rw,relatime - xfs /dev/loop0 rw,inode64',
  '45 27 0:50 / /mnt/back\\134slash\\012newline rw - tmpfs my\\040tmp rw,size=4k',
  '46 27 0:51 / /mnt/empty-source rw,nosuid - fuse.sshfs  rw,user_id=0',
  '',
].join('\n');

describe('parseMountInfo', () => {
  const entries = parseMountInfo(SAMPLE);

  it('returns one entry per line and skips blank lines', () => {
    expect(entries.map((e) => e.mountId)).toEqual([22, 27, 43, 44, 45, 46]);
  });

  it('splits the fields before and after the " - " separator', () => {
    expect(entries[1]).toEqual({
      mountId: 27,
      parentId: 1,
      majorMinor: '254:0',
      root: '/',
      mountPoint: '/',
      options: ['rw', 'relatime'],
      optionalFields: ['shared:1'],
      fsType: 'ext4',
      source: '/dev/vda',
      superOptions: ['rw', 'discard', 'resuid=65534'],
    });
  });

  it('accepts lines without optional fields and lines with several', () => {
    expect(entries[0]?.optionalFields).toEqual([]);
    expect(entries[0]?.fsType).toBe('proc');
    expect(entries[2]?.optionalFields).toEqual(['shared:5', 'master:2']);
    expect(entries[2]?.fsType).toBe('xfs');
  });

  it('keeps per-mount options apart from superblock options', () => {
    expect(entries[2]?.options).toEqual(['ro', 'nosuid', 'nodev', 'relatime']);
    expect(entries[2]?.superOptions).toEqual(['rw', 'inode64', 'noquota']);
  });

  it('decodes escaped space, tab, newline and backslash in paths and sources', () => {
    expect(entries[2]?.mountPoint).toBe('/var/lib/csi/pods/p1/volume one');
    expect(entries[3]?.root).toBe('/sub\tdir');
    expect(entries[4]?.mountPoint).toBe('/mnt/back\\slash\nnewline');
    expect(entries[4]?.source).toBe('my tmp');
  });

  it('keeps an empty source as an empty string', () => {
    expect(entries[5]?.source).toBe('');
    expect(entries[5]?.fsType).toBe('fuse.sshfs');
    expect(entries[5]?.superOptions).toEqual(['rw', 'user_id=0']);
  });

  it('ignores malformed lines instead of returning half-parsed entries', () => {
    expect(parseMountInfo('garbage line\n1 2 3\n22 27 0:21 / /proc rw - proc proc rw')).toHaveLength(1);
  });
});

describe('decodeMountField', () => {
  it('leaves plain text and non-octal backslashes alone', () => {
    expect(decodeMountField('/a/b')).toBe('/a/b');
    expect(decodeMountField('a\\x')).toBe('a\\x');
  });
});

describe('stackOrder', () => {
  it('puts the mount stacked on top last, whatever the file order', () => {
    const [, , lower, upper] = parseMountInfo(SAMPLE);
    expect(stackOrder([upper!, lower!]).map((e) => e.mountId)).toEqual([43, 44]);
  });
});

describe('deviceMajor / deviceMinor', () => {
  it('decode small and large Linux device numbers', () => {
    expect([deviceMajor(0x700), deviceMinor(0x700)]).toEqual([7, 0]);
    // makedev(259, 300): minor bits above 0xff live above the major.
    const rdev = (300 & 0xff) | (259 << 8) | ((300 & ~0xff) << 12);
    expect([deviceMajor(rdev), deviceMinor(rdev)]).toEqual([259, 300]);
  });
});
