// The OS layer against the real kernel: sparse files, loop devices, mkfs, mounts. Runs as root.
import { mkdir, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isCsiError } from '../../src/errors.js';
import { LOOP_NODE_REQUIREMENTS } from '../../src/backends/loop/loop.js';
import {
  ExecError,
  atomicWriteFile,
  attachLoopDevice,
  blockDeviceSize,
  checkNodePrivileges,
  createSparseFile,
  detachLoopDevice,
  filesystemType,
  formatIfBlank,
  freezeFilesystem,
  growFile,
  hasCapability,
  isMountPoint,
  listLoopDevices,
  loopDeviceOf,
  loopDevicesOf,
  missingTools,
  chooseMounter,
  execMounter,
  mounter,
  mountsAt,
  SyscallError,
  type Mounter,
  mountsOfSource,
  pathExists,
  probeSignatures,
  refreshLoopCapacity,
  resizeFilesystem,
  run,
  setExecObserver,
  thawFilesystem,
  unmountIfMounted,
  volumeStats,
} from '../../src/os/index.js';
import { Cleanup, makeTempDir, mountsUnder, removeTempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const canResizeOnline = await hasCapability('CAP_SYS_RESOURCE');

let dir = '';
const cleanup = new Cleanup();

beforeAll(async () => {
  dir = await makeTempDir('os');
});

afterEach(async () => {
  await cleanup.run();
});

afterAll(async () => {
  await cleanup.run();
  const leftLoops = (await listLoopDevices()).filter((d) => d.backingFile.startsWith(`${dir}/`));
  const leftMounts = await mountsUnder(dir);
  await removeTempDir(dir);
  expect(leftLoops).toEqual([]);
  expect(leftMounts).toEqual([]);
});

/** A sparse file attached to a fresh loop device; cleanup unmounts whatever uses it, detaches, deletes. */
async function loopDevice(name: string, bytes: number): Promise<{ file: string; device: string }> {
  const file = join(dir, `${name}.img`);
  await createSparseFile(file, bytes);
  cleanup.defer(() => rm(file, { force: true }));
  const device = await attachLoopDevice(file);
  cleanup.defer(async () => {
    for (const m of (await mountsOfSource(device)).reverse()) await mounter.unmount(m.mountPoint);
    await detachLoopDevice(device);
  });
  return { file, device };
}

/** A directory to mount on; cleanup unmounts everything stacked there before removing it. */
async function mountDir(name: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(path, { recursive: true });
  cleanup.defer(async () => {
    await mounter.unmount(path);
    await rm(path, { recursive: true, force: true });
  });
  return path;
}

async function mountedExt4(name: string, bytes = 64 * MiB): Promise<{ file: string; device: string; target: string }> {
  const { file, device } = await loopDevice(name, bytes);
  await formatIfBlank(device, 'ext4');
  const target = await mountDir(`${name}-mnt`);
  await mounter.mount(device, target, 'ext4', []);
  return { file, device, target };
}

async function expectRexError(promise: Promise<unknown>, code: string, text?: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isCsiError(error), `expected CsiError ${code}, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  if (text) expect((error as Error).message).toMatch(text);
}

describe('run', () => {
  it('returns stdout, stderr and the exit code, with LC_ALL=C', async () => {
    const r = await run('sh', ['-c', 'echo "$LC_ALL"; echo warn >&2']);
    expect(r).toEqual({ stdout: 'C', stderr: 'warn', exitCode: 0 });
  });

  it('passes arguments without a shell', async () => {
    const r = await run('echo', ['$HOME; rm -rf /', '*']);
    expect(r.stdout).toBe('$HOME; rm -rf / *');
  });

  it('feeds input on stdin', async () => {
    expect((await run('cat', [], { input: 'hello' })).stdout).toBe('hello');
  });

  it('throws ExecError with command, exit code and trimmed stderr', async () => {
    const error = await run('sh', ['-c', 'echo "  first" >&2; echo second >&2; exit 3']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExecError);
    const e = error as ExecError;
    expect([e.command, e.exitCode, e.stderr]).toEqual(['sh', 3, 'first\nsecond']);
    expect(e.message).toMatch(/^sh -c .* failed \(exit 3\): first; second$/);
  });

  it('explains a failure with stdout when the tool wrote nothing to stderr', async () => {
    const e = (await run('sh', ['-c', 'echo "why it failed"; exit 1']).catch((x: unknown) => x)) as ExecError;
    expect([e.stderr, e.message]).toEqual(['', 'sh -c echo "why it failed"; exit 1 failed (exit 1): why it failed']);
  });

  it('accepts the exit codes listed in okExitCodes', async () => {
    expect((await run('sh', ['-c', 'exit 2'], { okExitCodes: [0, 2] })).exitCode).toBe(2);
  });

  it('kills a command that outlives its timeout', async () => {
    const error = (await run('sleep', ['5'], { timeoutMs: 100 }).catch((e: unknown) => e)) as ExecError;
    expect(error.timedOut).toBe(true);
    expect(error.message).toMatch(/timed out after 100 ms/);
  });

  it('reports a missing program as ExecError, not a crash', async () => {
    const error = (await run('rexcsi-no-such-tool', []).catch((e: unknown) => e)) as ExecError;
    expect(error).toBeInstanceOf(ExecError);
    expect(error.message).toMatch(/not found/);
  });

  it('tells the exec observer about every command', async () => {
    const seen: [string, boolean][] = [];
    setExecObserver((cmd, durationMs, ok) => {
      expect(durationMs).toBeGreaterThanOrEqual(0);
      seen.push([cmd, ok]);
    });
    try {
      await run('true', []);
      await run('false', []).catch(() => undefined);
    } finally {
      setExecObserver(undefined);
    }
    expect(seen).toEqual([
      ['true', true],
      ['false', false],
    ]);
  });
});

describe('privileges', () => {
  it('finds nothing missing when running as root with util-linux', async () => {
    expect(await checkNodePrivileges(LOOP_NODE_REQUIREMENTS)).toBeUndefined();
  });

  it('names the tools that are not in PATH', async () => {
    expect(await missingTools(['mount', 'rexcsi-no-such-tool'])).toEqual(['rexcsi-no-such-tool']);
  });
});

describe('files', () => {
  it('createSparseFile makes a file of the given size that uses almost no disk', async () => {
    const file = join(dir, 'sparse.img');
    cleanup.defer(() => rm(file, { force: true }));
    await createSparseFile(file, 256 * MiB);
    const st = await stat(file);
    expect(st.size).toBe(256 * MiB);
    expect(st.blocks * 512).toBeLessThan(MiB);
  });

  it('createSparseFile never overwrites an existing file', async () => {
    const file = join(dir, 'taken.img');
    cleanup.defer(() => rm(file, { force: true }));
    await writeFile(file, 'precious');
    await expectRexError(createSparseFile(file, MiB), 'ALREADY_EXISTS');
    expect(await readFile(file, 'utf8')).toBe('precious');
  });

  it('growFile grows, accepts the same size, refuses to shrink, and reports a missing file', async () => {
    const file = join(dir, 'grow.img');
    cleanup.defer(() => rm(file, { force: true }));
    await createSparseFile(file, MiB);
    await growFile(file, 2 * MiB);
    await growFile(file, 2 * MiB);
    expect((await stat(file)).size).toBe(2 * MiB);
    await expectRexError(growFile(file, MiB), 'OUT_OF_RANGE');
    await expectRexError(growFile(join(dir, 'nope.img'), MiB), 'NOT_FOUND');
  });

  it('atomicWriteFile replaces the content and leaves no temp file behind', async () => {
    const sub = join(dir, 'atomic');
    await mkdir(sub);
    cleanup.defer(() => rm(sub, { recursive: true, force: true }));
    const file = join(sub, 'volume.json');
    await atomicWriteFile(file, '{"v":1}');
    await atomicWriteFile(file, Buffer.from('{"v":2}'));
    expect(await readFile(file, 'utf8')).toBe('{"v":2}');
    expect(await readdir(sub)).toEqual(['volume.json']);
  });

  it('atomicWriteFile reports a missing directory as NOT_FOUND', async () => {
    await expectRexError(atomicWriteFile(join(dir, 'no-dir', 'x.json'), 'x'), 'NOT_FOUND');
  });

  it('pathExists tells existing paths from missing ones', async () => {
    expect(await pathExists(dir)).toBe(true);
    expect(await pathExists(join(dir, 'missing'))).toBe(false);
    expect(await pathExists(join(dir, 'missing', 'deeper'))).toBe(false);
  });
});

describe('loop devices', () => {
  it('attach, find by backing file, size, and detach idempotently', async () => {
    const { file, device } = await loopDevice('attach', 32 * MiB);
    expect(device).toMatch(/^\/dev\/loop\d+$/);
    expect(await loopDevicesOf(file)).toEqual([device]);
    expect(await listLoopDevices()).toContainEqual({ device, backingFile: file, deleted: false });
    expect(await blockDeviceSize(device)).toBe(32 * MiB);
    await detachLoopDevice(device);
    await detachLoopDevice(device);
    expect(await loopDevicesOf(file)).toEqual([]);
  });

  it('finds a device through a symlink to its backing file', async () => {
    const { file, device } = await loopDevice('linked', 8 * MiB);
    const link = join(dir, 'linked-symlink');
    await symlink(file, link);
    cleanup.defer(() => rm(link, { force: true }));
    expect(await loopDevicesOf(link)).toEqual([device]);
  });

  it('still finds a device whose backing file was deleted, so it can be detached', async () => {
    const { file, device } = await loopDevice('deleted', 8 * MiB);
    await rm(file);
    expect(await listLoopDevices()).toContainEqual({ device, backingFile: file, deleted: true });
    expect(await loopDevicesOf(file)).toEqual([device]);
  });

  it('loopDeviceOf takes a remembered device only when the kernel says it backs the file', async () => {
    const mine = await loopDevice('hint-mine', 8 * MiB);
    const other = await loopDevice('hint-other', 8 * MiB);
    expect(await loopDeviceOf(mine.file, mine.device)).toBe(mine.device);
    expect(await loopDeviceOf(mine.file)).toBe(mine.device);
    // Another volume's device as the hint: never answered; the scan finds the right one.
    expect(await loopDeviceOf(mine.file, other.device)).toBe(mine.device);
    // Not a loop device at all, or a path outside /dev: ignored.
    expect(await loopDeviceOf(mine.file, '/dev/null')).toBe(mine.device);
    expect(await loopDeviceOf(mine.file, `/tmp/../dev/${other.device.slice(5)}`)).toBe(mine.device);
    // The remembered device was detached: nothing backs the file any more.
    await detachLoopDevice(mine.device);
    expect(await loopDeviceOf(mine.file, mine.device)).toBeUndefined();
  });

  it('loopDeviceOf refuses a remembered device whose backing file was replaced by a new one at the same path', async () => {
    const { file, device } = await loopDevice('hint-replaced', 8 * MiB);
    await rm(file);
    expect(await loopDeviceOf(file, device)).toBe(device); // deleted, nothing new there: still ours to detach
    await createSparseFile(file, 8 * MiB);
    expect(await listLoopDevices()).toContainEqual({ device, backingFile: file, deleted: true });
    expect(await loopDeviceOf(file, device)).toBeUndefined();
  });

  it('attaches read-only when asked', async () => {
    const file = join(dir, 'ro.img');
    await createSparseFile(file, 8 * MiB);
    cleanup.defer(() => rm(file, { force: true }));
    const device = await attachLoopDevice(file, { readOnly: true });
    cleanup.defer(() => detachLoopDevice(device));
    const name = device.replace('/dev/', '');
    expect((await readFile(`/sys/block/${name}/ro`, 'utf8')).trim()).toBe('1');
  });

  it('detach refuses what is not a loop device', async () => {
    await expectRexError(detachLoopDevice('/dev/null'), 'INVALID_ARGUMENT');
  });

  it('refuses a missing backing file with NOT_FOUND', async () => {
    await expectRexError(attachLoopDevice(join(dir, 'absent.img')), 'NOT_FOUND');
  });

  it('refreshLoopCapacity makes the kernel see a grown file', async () => {
    const { file, device } = await loopDevice('capacity', 16 * MiB);
    await growFile(file, 48 * MiB);
    expect(await blockDeviceSize(device)).toBe(16 * MiB);
    await refreshLoopCapacity(device);
    expect(await blockDeviceSize(device)).toBe(48 * MiB);
  });
});

describe('probing and formatting', () => {
  it('a blank device has no signatures and no filesystem type', async () => {
    const { device } = await loopDevice('blank', 32 * MiB);
    expect(await probeSignatures(device)).toEqual([]);
    expect(await filesystemType(device)).toBeUndefined();
  });

  it('formatIfBlank formats a blank device once, then reports it as existing', async () => {
    const { device } = await loopDevice('ext4', 64 * MiB);
    expect(await formatIfBlank(device, 'ext4')).toBe('formatted');
    const [sig, ...more] = await probeSignatures(device);
    expect(more).toEqual([]);
    expect(sig).toMatchObject({ type: 'ext4', usage: 'filesystem' });
    expect(await formatIfBlank(device, 'ext4')).toBe('existing');
    expect((await probeSignatures(device))[0]?.uuid).toBe(sig?.uuid); // not reformatted
    expect(await filesystemType(device)).toBe('ext4');
  });

  it('formatIfBlank keeps a sparse backing file sparse', async () => {
    const { file, device } = await loopDevice('sparse-ext4', 1024 * MiB);
    await formatIfBlank(device, 'ext4');
    expect((await stat(file)).blocks * 512).toBeLessThan(32 * MiB);
  });

  it('formatIfBlank makes xfs, and refuses an xfs device asked for ext4', async () => {
    const { device } = await loopDevice('xfs', 320 * MiB);
    expect(await formatIfBlank(device, 'xfs')).toBe('formatted');
    const before = await probeSignatures(device);
    await expectRexError(formatIfBlank(device, 'ext4'), 'FAILED_PRECONDITION', /xfs \(filesystem\)/);
    expect(await probeSignatures(device)).toEqual(before);
    expect(before).toEqual([expect.objectContaining({ type: 'xfs', usage: 'filesystem' })]);
    expect(await formatIfBlank(device, 'xfs')).toBe('existing');
  });

  it('formatIfBlank refuses an ext4 device asked for xfs', async () => {
    const { device } = await loopDevice('ext4-for-xfs', 320 * MiB);
    await formatIfBlank(device, 'ext4');
    await expectRexError(formatIfBlank(device, 'xfs'), 'FAILED_PRECONDITION', /ext4/);
    expect(await filesystemType(device)).toBe('ext4');
  });

  it('a device too small for xfs is OUT_OF_RANGE and stays blank', async () => {
    const { device } = await loopDevice('xfs-small', 64 * MiB);
    await expectRexError(formatIfBlank(device, 'xfs'), 'OUT_OF_RANGE');
    expect(await probeSignatures(device)).toEqual([]);
  });

  it('refuses a device with a partition table and leaves it intact', async () => {
    const { device } = await loopDevice('parted', 64 * MiB);
    await run('sfdisk', ['--quiet', '--no-reread', device], { input: 'label: dos\n,,L\n' });
    const before = await probeSignatures(device);
    expect(before).toEqual([expect.objectContaining({ type: 'dos', usage: 'partition-table' })]);
    await expectRexError(formatIfBlank(device, 'ext4'), 'FAILED_PRECONDITION', /dos/);
    expect(await probeSignatures(device)).toEqual(before);
  });

  it('refuses a GPT disk', async () => {
    const { device } = await loopDevice('gpt', 64 * MiB);
    await run('sfdisk', ['--quiet', '--no-reread', device], { input: 'label: gpt\n,,L\n' });
    await expectRexError(formatIfBlank(device, 'ext4'), 'FAILED_PRECONDITION', /gpt/);
  });

  it('refuses swap', async () => {
    const { device } = await loopDevice('swap', 32 * MiB);
    await run('mkswap', [device]);
    await expectRexError(formatIfBlank(device, 'ext4'), 'FAILED_PRECONDITION', /swap/);
    expect(await filesystemType(device)).toBe('swap');
  });

  it('refuses LUKS', async () => {
    const { device } = await loopDevice('luks', 32 * MiB);
    await writeLuks1Header(device);
    await expectRexError(formatIfBlank(device, 'ext4'), 'FAILED_PRECONDITION', /crypto_LUKS/);
    expect(await filesystemType(device)).toBe('crypto_LUKS');
  });

  it('refuses a device carrying two filesystem signatures, even one of the asked type', async () => {
    const { device } = await loopDevice('two-sigs', 320 * MiB);
    await formatIfBlank(device, 'xfs');
    const xfsHead = await readHead(device, 1024);
    await wipeAndFormatExt4(device);
    await writeHead(device, xfsHead); // xfs superblock at 0, ext4 superblock at 1 KiB: both visible
    const types = (await probeSignatures(device)).map((s) => s.type).sort();
    expect(types).toEqual(['ext4', 'xfs']);
    await expectRexError(formatIfBlank(device, 'ext4'), 'FAILED_PRECONDITION', /ext4.*xfs|xfs.*ext4/);
    await expectRexError(filesystemType(device), 'FAILED_PRECONDITION');
  });

  it('rejects mkfs options that would force', async () => {
    const { device } = await loopDevice('force', 32 * MiB);
    await expectRexError(formatIfBlank(device, 'ext4', { mkfsOptions: ['-F'] }), 'INVALID_ARGUMENT');
    expect(await probeSignatures(device)).toEqual([]);
  });

  it('reports a missing device as NOT_FOUND', async () => {
    await expectRexError(probeSignatures('/dev/rexcsi-no-such-device'), 'NOT_FOUND');
    await expectRexError(formatIfBlank('/dev/rexcsi-no-such-device', 'ext4'), 'NOT_FOUND');
  });
});

// Both implementations of Mounter against the real kernel: mount(8), and mount(2)/umount2(2) through koffi.
const MOUNTERS: [string, Mounter][] = [
  ['mount(8)', execMounter],
  ['syscall', chooseMounter('syscall').mounter],
];

describe.each(MOUNTERS)('mounts (%s)', (kind, m) => {
  it('is the implementation it says', () => {
    expect(m.kind).toBe(kind);
  });

  it('mount makes a mount point that mountsAt, isMountPoint and mountsOfSource see', async () => {
    const { device, target } = await mountedExt4('mnt');
    expect(await isMountPoint(target)).toBe(true);
    const [entry, ...rest] = await mountsAt(target);
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({ mountPoint: target, fsType: 'ext4', source: device, root: '/' });
    expect((await mountsOfSource(device)).map((e) => e.mountPoint)).toEqual([target]);
    expect(await isMountPoint(dir)).toBe(false);
  });

  it('a read-only bind mount refuses writes while the source stays writable', async () => {
    const { target: staging } = await mountedExt4('ro-src');
    const target = await mountDir('ro target with space');
    await m.bindMount(staging, target, { readOnly: true, options: ['nosuid', 'nodev'] });
    const top = (await mountsAt(target)).at(-1);
    expect(top?.mountPoint).toBe(target);
    expect(top?.options).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    await expect(writeFile(join(target, 'x'), 'data')).rejects.toMatchObject({ code: 'EROFS' });
    await writeFile(join(staging, 'y'), 'data');
    expect(await readFile(join(target, 'y'), 'utf8')).toBe('data');
  });

  it('a read-write bind mount shares the data with its source', async () => {
    const { target: staging } = await mountedExt4('rw-src');
    const target = await mountDir('rw-target');
    await m.bindMount(staging, target, { readOnly: false });
    await writeFile(join(target, 'z'), 'through bind');
    expect(await readFile(join(staging, 'z'), 'utf8')).toBe('through bind');
    expect((await mountsAt(target))[0]?.options).toContain('rw');
  });

  it('unmount is idempotent: mounted, not mounted, missing path', async () => {
    const { target } = await mountedExt4('idem');
    await m.unmount(target);
    expect(await isMountPoint(target)).toBe(false);
    await m.unmount(target);
    await m.unmount(join(dir, 'never-created'));
    expect(await unmountIfMounted(target, m)).toBe(false);
  });

  it('unmount removes every mount stacked at the path, top last in mountsAt', async () => {
    const { target } = await mountedExt4('stack');
    await m.mount('rexcsi-test-tmpfs', target, 'tmpfs', ['size=1m']);
    const stack = await mountsAt(target);
    expect(stack.map((e) => e.fsType)).toEqual(['ext4', 'tmpfs']);
    expect(await unmountIfMounted(target, m)).toBe(true);
    expect(await mountsAt(target)).toEqual([]);
  });

  it('mount and bindMount report a missing source or mount point as NOT_FOUND', async () => {
    const { device } = await loopDevice('missing-target', 32 * MiB);
    const target = await mountDir('existing-target');
    await expectRexError(m.mount(device, join(dir, 'no-such-target'), 'ext4', []), 'NOT_FOUND', /mount point/);
    await expectRexError(m.bindMount(join(dir, 'no-such-source'), target, { readOnly: true }), 'NOT_FOUND', /bind source/);
    expect(await isMountPoint(target)).toBe(false);
  });

  it('mount reports a bad filesystem type precisely: mount(8) as ExecError with its message, the syscall with its errno', async () => {
    const { device } = await loopDevice('badfs', 32 * MiB);
    const target = await mountDir('badfs-mnt');
    const error = (await m.mount(device, target, 'ext4', []).catch((e: unknown) => e)) as Error;
    if (kind === 'mount(8)') {
      expect(error).toBeInstanceOf(ExecError);
      expect(error.message).toMatch(/^mount -t ext4 .* failed \(exit \d+\): /);
    } else {
      expect(error).toBeInstanceOf(SyscallError);
      expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', errno: 'EINVAL' });
      expect(error.message).toMatch(/wrong filesystem type/);
    }
    expect(await isMountPoint(target)).toBe(false);
  });

  it('unmount given a stale, empty table still removes what is mounted', async () => {
    const { target } = await mountedExt4(`stale-${kind === 'syscall' ? 's' : 'x'}`);
    await m.unmount(target, []);
    expect(await isMountPoint(target)).toBe(false);
  });

  it('a bind of a device node onto a file publishes the block device, and unmounts', async () => {
    const { device } = await loopDevice('blockbind', 32 * MiB);
    const target = join(dir, `block-target-${kind}`);
    await writeFile(target, '');
    cleanup.defer(async () => {
      await m.unmount(target);
      await rm(target, { force: true });
    });
    await m.bindMount(device, target, { readOnly: false });
    expect((await stat(target)).isBlockDevice()).toBe(true);
    await m.unmount(target);
    expect((await stat(target)).isFile()).toBe(true);
  });

  it('a busy mount is FAILED_PRECONDITION and stays mounted', async () => {
    const { target } = await mountedExt4(`busy-${kind === 'syscall' ? 's' : 'x'}`);
    const held = await open(join(target, 'held'), 'w');
    try {
      const error = await m.unmount(target).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (kind === 'syscall') expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', errno: 'EBUSY' });
      else expect(error).toBeInstanceOf(ExecError);
      expect(await isMountPoint(target)).toBe(true);
    } finally {
      await held.close();
    }
  });
});

describe('mounted filesystems', () => {
  it('volumeStats reports sizes and inodes of the mounted filesystem', async () => {
    const { target } = await mountedExt4('stats');
    await writeFile(join(target, 'f'), Buffer.alloc(MiB, 1));
    const s = await volumeStats(target);
    expect(s.totalBytes).toBeGreaterThan(50 * MiB);
    expect(s.totalBytes).toBeLessThanOrEqual(64 * MiB);
    expect(s.usedBytes).toBeGreaterThanOrEqual(MiB);
    expect(s.availableBytes).toBeLessThanOrEqual(s.totalBytes - s.usedBytes);
    expect(s.usedInodes).toBe(s.totalInodes - s.freeInodes);
    expect(s.usedInodes).toBeGreaterThan(10);
    await expectRexError(volumeStats(join(dir, 'no-such')), 'NOT_FOUND');
  });

  // The kernel's ext4 resize ioctl needs CAP_SYS_RESOURCE, which some sandboxes (this CI's among them)
  // drop even for root: with it the filesystem grows; without it the answer is a precise FAILED_PRECONDITION.
  it(`resizeFilesystem on a mounted ext4 ${canResizeOnline ? 'grows it online' : 'is FAILED_PRECONDITION without CAP_SYS_RESOURCE'}`, async () => {
    const { file, device, target } = await mountedExt4('grow-ext4');
    const before = (await volumeStats(target)).totalBytes;
    await growFile(file, 192 * MiB);
    await refreshLoopCapacity(device);
    if (canResizeOnline) {
      await resizeFilesystem(device, target, 'ext4');
      expect((await volumeStats(target)).totalBytes - before).toBeGreaterThan(120 * MiB);
    } else {
      await expectRexError(resizeFilesystem(device, target, 'ext4'), 'FAILED_PRECONDITION', /CAP_SYS_RESOURCE/);
      expect((await volumeStats(target)).totalBytes).toBe(before);
    }
  });

  it('resizeFilesystem grows an unmounted ext4 offline, even after it was mounted', async () => {
    const { file, device, target } = await mountedExt4('grow-ext4-offline');
    await writeFile(join(target, 'kept'), 'data');
    await mounter.unmount(target);
    await growFile(file, 192 * MiB);
    await refreshLoopCapacity(device);
    await resizeFilesystem(device, undefined, 'ext4');
    await mounter.mount(device, target, 'ext4', []);
    expect((await volumeStats(target)).totalBytes).toBeGreaterThan(170 * MiB);
    expect(await readFile(join(target, 'kept'), 'utf8')).toBe('data');
  });

  it('resizeFilesystem grows a mounted xfs online', async () => {
    const { file, device } = await loopDevice('grow-xfs', 320 * MiB);
    await formatIfBlank(device, 'xfs');
    const target = await mountDir('grow-xfs-mnt');
    await mounter.mount(device, target, 'xfs', []);
    const before = (await volumeStats(target)).totalBytes;
    await growFile(file, 640 * MiB);
    await refreshLoopCapacity(device);
    await resizeFilesystem(device, target, 'xfs');
    const after = (await volumeStats(target)).totalBytes;
    expect(after - before).toBeGreaterThan(300 * MiB);
    await resizeFilesystem(device, target, 'xfs'); // nothing left to grow is not an error
  });

  it('resizeFilesystem refuses filesystems it cannot grow, and xfs offline', async () => {
    await expectRexError(resizeFilesystem('/dev/null', dir, 'vfat'), 'UNIMPLEMENTED');
    await expectRexError(resizeFilesystem('/dev/null', undefined, 'xfs'), 'FAILED_PRECONDITION');
  });

  it('freeze blocks writes until thaw; thaw twice is fine', async () => {
    const { target } = await mountedExt4('freeze');
    await freezeFilesystem(target);
    cleanup.defer(() => thawFilesystem(target)); // a frozen filesystem cannot be unmounted
    await expectRexError(freezeFilesystem(target), 'FAILED_PRECONDITION');
    await thawFilesystem(target);
    await thawFilesystem(target);
    await writeFile(join(target, 'after-thaw'), 'ok');
  });
});

// A minimal LUKS1 header: magic, version 1, cipher name and a UUID are what blkid checks.
async function writeLuks1Header(device: string): Promise<void> {
  const header = Buffer.alloc(592);
  Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0x00, 0x01]).copy(header, 0);
  header.write('aes', 8);
  header.write('xts-plain64', 40);
  header.write('sha256', 72);
  header.write('0b5e1c3e-1111-4222-8333-444455556666', 168);
  await writeHead(device, header);
}

async function readHead(device: string, bytes: number): Promise<Buffer> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fh.read(buf, 0, bytes, 0);
    return buf;
  } finally {
    await fh.close();
  }
}

async function writeHead(device: string, data: Buffer): Promise<void> {
  const fh = await open(device, 'r+');
  try {
    await fh.write(data, 0, data.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// Test setup only: wipe the xfs signatures so formatIfBlank will lay down ext4 on the same device.
async function wipeAndFormatExt4(device: string): Promise<void> {
  await run('wipefs', ['--all', '--quiet', device]);
  expect(await formatIfBlank(device, 'ext4')).toBe('formatted');
}
