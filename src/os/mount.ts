// Mounting behind a small interface with two implementations: mount(8)/umount(8) here, and mount(2)/umount2(2)
// called directly (src/os/native-mount.ts, the node's hot path). Callers never know which one they have.
import { failedPrecondition } from '../errors.js';
import { run, isExecError } from './exec.js';
import { statOrNotFound } from './fs.js';
import { mountsAt, type MountEntry } from './mountinfo.js';

export interface BindMountOptions {
  readOnly: boolean;
  /** Per-mount flags such as nosuid, nodev, noexec. */
  options?: string[];
}

export type MounterKind = 'syscall' | 'mount(8)';

export interface Mounter {
  /** 'syscall' (mount(2) through koffi, helpers on mount(8)) or 'mount(8)' (every mount a child process); unset in test doubles */
  readonly kind?: MounterKind;
  /** Mounts source on target; it does not check what is already there (callers decide idempotency). */
  mount(source: string, target: string, fsType: string, options: string[]): Promise<void>;
  bindMount(source: string, target: string, opts: BindMountOptions): Promise<void>;
  /**
   * Removes every mount stacked at target; fine when nothing is mounted or the path is missing. `stack`: the
   * mounts at target from the table the caller read in this call; the syscall mounter uses it only to pick
   * umount(8) for helper filesystems and unmounts until the kernel says nothing is left, so stale is safe.
   */
  unmount(target: string, stack?: readonly MountEntry[]): Promise<void>;
}

// Enough for any sane stack; a bound stops a loop when umount keeps "succeeding" without effect.
export const MAX_STACKED_MOUNTS = 32;

async function mount(source: string, target: string, fsType: string, options: string[]): Promise<void> {
  await statOrNotFound(target, 'mount point');
  await run('mount', ['-t', fsType, ...optionArgs(options), source, target]);
}

async function bindMount(source: string, target: string, opts: BindMountOptions): Promise<void> {
  const flags = [...(opts.readOnly ? ['ro'] : []), ...(opts.options ?? [])];
  await Promise.all([statOrNotFound(source, 'bind source'), statOrNotFound(target, 'mount point')]);
  await run('mount', ['--bind', ...optionArgs(flags), source, target]);
  if (opts.readOnly) await ensureReadOnly(target, flags);
}

// The kernel ignores MS_RDONLY on a new bind; it takes a second MS_REMOUNT|MS_BIND|MS_RDONLY call.
// mount(8) 2.38 makes both calls, older ones may not: check the top mount, remount when needed,
// and never hand out a writable "read-only" bind.
async function ensureReadOnly(target: string, flags: string[]): Promise<void> {
  if (isReadOnly(await topMount(target))) return;
  await run('mount', ['-o', ['remount', 'bind', ...flags].join(','), target]);
  if (isReadOnly(await topMount(target))) return;
  await unmountTop(target);
  throw failedPrecondition(`bind mount at ${target} could not be made read-only`);
}

async function topMount(target: string): Promise<MountEntry | undefined> {
  return (await mountsAt(target)).at(-1);
}

function isReadOnly(entry: MountEntry | undefined): boolean {
  return entry?.options.includes('ro') ?? false;
}

// mount(8)'s unmount reads the table itself around every umount (it must see each layer go), so it takes
// no hint from the caller's table.
async function unmount(target: string): Promise<void> {
  for (let i = 0; i < MAX_STACKED_MOUNTS; i++) {
    if ((await mountsAt(target)).length === 0) return;
    await unmountTop(target);
  }
  throw failedPrecondition(`${target} still mounted after ${MAX_STACKED_MOUNTS} unmounts`);
}

async function unmountTop(target: string): Promise<void> {
  const before = (await mountsAt(target)).length;
  try {
    await run('umount', [target]);
  } catch (e) {
    // Someone else unmounted it between our look and our umount: that is the outcome we wanted.
    if (isExecError(e) && (await mountsAt(target)).length < before) return;
    throw e;
  }
}

function optionArgs(options: string[]): string[] {
  return options.length > 0 ? ['-o', options.join(',')] : [];
}

/** Every mount a child process: the fallback where koffi cannot load, and for helper filesystems. */
export const execMounter: Mounter = { kind: 'mount(8)', mount, bindMount, unmount };
/** For callers outside the node service (network backends' own mounts, tests): mount(8). */
export const mounter: Mounter = execMounter;

/** Unmounts everything at target; returns whether anything was mounted there. */
export async function unmountIfMounted(target: string, m: Mounter = mounter): Promise<boolean> {
  const stack = await mountsAt(target);
  if (stack.length === 0) return false;
  await m.unmount(target, stack);
  return true;
}
