// Can this process do node work (mount, attach loop devices, format)? Answered without forking,
// so a probe can run it on every call.
import { access, constants, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { searchPath } from './exec.js';

// Bit numbers from linux/capability.h.
const CAPABILITY_BITS = { CAP_SYS_ADMIN: 21n, CAP_SYS_RESOURCE: 24n } as const;
export type Capability = keyof typeof CAPABILITY_BITS;
const LOOP_CONTROL = '/dev/loop-control';
export const NODE_TOOLS = ['losetup', 'mount', 'umount', 'blkid', 'wipefs', 'mkfs.ext4'];
/** A node of a network filesystem backend only mounts: no loop devices, no mkfs. */
export const FILESYSTEM_NODE_TOOLS = ['mount', 'umount'];

/** undefined when the node can mount (and, for block backends, use loop devices); otherwise one line naming what is missing. */
export async function checkNodePrivileges(nodeSource: 'block' | 'filesystem' = 'block'): Promise<string | undefined> {
  const block = nodeSource === 'block';
  const [admin, loopControl, tools] = await Promise.all([
    hasCapability('CAP_SYS_ADMIN'),
    block ? canOpen(LOOP_CONTROL) : Promise.resolve(true),
    missingTools(block ? NODE_TOOLS : FILESYSTEM_NODE_TOOLS),
  ]);
  const problems: string[] = [];
  if (!admin) problems.push('not root and no CAP_SYS_ADMIN');
  if (!loopControl) problems.push(`${LOOP_CONTROL} not accessible`);
  if (tools.length > 0) problems.push(`missing tools: ${tools.join(', ')}`);
  return problems.length > 0 ? `cannot do node work: ${problems.join('; ')}` : undefined;
}

/** The tools not found as executables in PATH (plus the sbin directories run() adds). */
export async function missingTools(tools: string[]): Promise<string[]> {
  const dirs = searchPath().split(':');
  const found = await Promise.all(tools.map((t) => findExecutable(t, dirs)));
  return tools.filter((_, i) => !found[i]);
}

async function findExecutable(tool: string, dirs: string[]): Promise<boolean> {
  if (tool.includes('/')) return isExecutable(tool);
  for (const dir of dirs) if (await isExecutable(join(dir, tool))) return true;
  return false;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function canOpen(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether the effective set holds cap: root in an unprivileged container lacks CAP_SYS_ADMIN, for example. */
export async function hasCapability(cap: Capability): Promise<boolean> {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && ((BigInt(`0x${hex}`) >> CAPABILITY_BITS[cap]) & 1n) === 1n;
  } catch {
    return process.getuid?.() === 0;
  }
}
