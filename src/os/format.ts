// Formatting guarded by low-level probing: a device is formatted only when no signature of any kind
// (filesystem, partition table, LUKS, swap, RAID) is on it. mkfs.ext4 run without a terminal does not
// ask before overwriting, so this probe is the only guard against destroying data.
import { failedPrecondition, invalidArgument, CsiError } from '../errors.js';
import { run, isExecError, SLOW_TIMEOUT_MS } from './exec.js';
import { statOrNotFound } from './fs.js';

export interface Signature {
  type: string;
  /** filesystem, partition-table, crypto, raid, other (blkid's words). */
  usage?: string;
  label?: string;
  uuid?: string;
}

export type FormattableFs = 'ext4' | 'xfs';

// blkid exit codes: 2 = nothing found, 8 = ambivalent (several signatures).
const BLKID_NOTHING = 2;
const BLKID_AMBIVALENT = 8;

// ext4: 4 KiB blocks even on small volumes (mke2fs picks 1 KiB below 512 MiB, poor once grown);
// no reserved root blocks; no discard pass and lazy inode-table/journal init, so mkfs writes a few MiB
// instead of the whole journal and a sparse backing file stays sparse (the kernel zeroes tables later
// with write-zeroes). No -F: nothing here may overwrite a signature we did not see.
export const MKFS_ARGS: Record<FormattableFs, string[]> = {
  ext4: ['-q', '-b', '4096', '-m', '0', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1'],
  // xfs: -K skips discard; without -f mkfs.xfs itself also refuses a device with a signature.
  xfs: ['-q', '-K'],
};

const FORCE_FLAGS = new Set(['-f', '-F', '--force']);

/** Every signature on the device, found by probing the device itself (no blkid cache). */
export async function probeSignatures(device: string): Promise<Signature[]> {
  await statOrNotFound(device, 'device');
  const [listed, blkid] = await Promise.all([wipefsSignatures(device), blkidProbe(device)]);
  return mergeBlkid(listed, blkid);
}

/**
 * Formats a blank device; leaves a device holding exactly one fsType filesystem as it is ('existing');
 * refuses anything else with FAILED_PRECONDITION and never touches it.
 */
export async function formatIfBlank(
  device: string,
  fsType: FormattableFs,
  opts: { mkfsOptions?: string[] } = {},
): Promise<'formatted' | 'existing'> {
  const extra = opts.mkfsOptions ?? [];
  if (!(fsType in MKFS_ARGS)) throw invalidArgument(`cannot format ${device} as ${fsType}: only ext4 and xfs`);
  if (extra.some((o) => FORCE_FLAGS.has(o))) throw invalidArgument(`mkfs options may not force (${extra.join(' ')})`);
  const found = await probeSignatures(device);
  if (found.length === 1 && found[0]?.type === fsType && found[0].usage === 'filesystem') return 'existing';
  if (found.length > 0) {
    throw failedPrecondition(`${device} is not blank (found ${describeSignatures(found)}); refusing to format it as ${fsType}`);
  }
  await mkfs(device, fsType, extra);
  return 'formatted';
}

/** The type blkid reports (a filesystem, or swap, crypto_LUKS, ...); undefined when the device is blank. */
export async function filesystemType(device: string): Promise<string | undefined> {
  await statOrNotFound(device, 'device');
  const probe = await blkidProbe(device);
  if (probe === 'ambivalent') throw failedPrecondition(`${device} carries several signatures`);
  return probe?.TYPE;
}

export function describeSignatures(found: Signature[]): string {
  return found.map((s) => (s.usage ? `${s.type} (${s.usage})` : s.type)).join(', ');
}

async function mkfs(device: string, fsType: FormattableFs, extra: string[]): Promise<void> {
  try {
    await run(`mkfs.${fsType}`, [...MKFS_ARGS[fsType], ...extra, device], { timeoutMs: SLOW_TIMEOUT_MS });
  } catch (e) {
    if (isExecError(e) && /must be larger than|too small/i.test(e.stderr)) {
      throw new CsiError('OUT_OF_RANGE', `${device} is too small for ${fsType}: ${e.stderr.split('\n')[0]}`, { cause: e });
    }
    throw e;
  }
}

interface WipefsOutput {
  signatures?: { type?: string; usage?: string | null; label?: string | null; uuid?: string | null }[];
}

// wipefs lists every signature, including several on one device, which blkid only calls "ambivalent".
async function wipefsSignatures(device: string): Promise<Signature[]> {
  const { stdout } = await run('wipefs', ['--no-act', '--json', '--output', 'TYPE,USAGE,LABEL,UUID', device]);
  if (stdout.trim() === '') return []; // older wipefs prints nothing at all for a blank device
  const parsed = JSON.parse(stdout) as WipefsOutput;
  return (parsed.signatures ?? []).map((s) => signature(s.type ?? 'unknown', s.usage, s.label, s.uuid));
}

type BlkidResult = Record<string, string> | 'ambivalent' | undefined;

async function blkidProbe(device: string): Promise<BlkidResult> {
  const { stdout, exitCode } = await run('blkid', ['--probe', '--output', 'export', device], {
    okExitCodes: [0, BLKID_NOTHING, BLKID_AMBIVALENT],
  });
  if (exitCode === BLKID_NOTHING) return undefined;
  if (exitCode === BLKID_AMBIVALENT) return 'ambivalent';
  return parseExport(stdout);
}

// KEY=value lines; blkid shell-escapes special characters in values with a backslash.
export function parseExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return out;
}

// blkid is the second opinion: anything it sees that wipefs did not list still blocks formatting.
function mergeBlkid(listed: Signature[], blkid: BlkidResult): Signature[] {
  const merged = [...listed];
  const has = (type: string): boolean => merged.some((s) => s.type === type);
  if (blkid === 'ambivalent') {
    if (merged.length < 2) merged.push({ type: 'unknown', usage: 'ambivalent' });
    return merged;
  }
  if (blkid?.TYPE && !has(blkid.TYPE)) merged.push(signature(blkid.TYPE, blkid.USAGE, blkid.LABEL, blkid.UUID));
  if (blkid?.PTTYPE && !has(blkid.PTTYPE)) merged.push(signature(blkid.PTTYPE, 'partition-table', undefined, blkid.PTUUID));
  return merged;
}

function signature(type: string, usage?: string | null, label?: string | null, uuid?: string | null): Signature {
  return {
    type,
    ...(usage ? { usage } : {}),
    ...(label ? { label } : {}),
    ...(uuid ? { uuid } : {}),
  };
}
