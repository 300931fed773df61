// Can this process do a backend's node work (the tools, devices and capabilities it declares)? Answered
// without forking, so a probe can run it on every call.
import { access, constants, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { searchPath } from './exec.js';

// Bit numbers from linux/capability.h.
const CAPABILITY_BITS = { CAP_SYS_ADMIN: 21n, CAP_SYS_RESOURCE: 24n } as const;
export type LinuxCapability = keyof typeof CAPABILITY_BITS;

/** What a backend's node side needs (the shape of NodeRequirements in src/backends/backend.ts). */
export interface NodeNeeds {
  tools: string[];
  devices: string[];
  linuxCapabilities: LinuxCapability[];
}

/** undefined when this process has exactly what the backend's node side needs; otherwise one line naming what is missing. */
export async function checkNodePrivileges(needs: NodeNeeds): Promise<string | undefined> {
  const [caps, devices, tools] = await Promise.all([
    Promise.all(needs.linuxCapabilities.map(async (c) => ((await hasCapability(c)) ? undefined : c))),
    Promise.all(needs.devices.map(async (d) => ((await canOpen(d)) ? undefined : d))),
    missingTools(needs.tools),
  ]);
  const problems: string[] = [];
  for (const cap of caps) if (cap) problems.push(`not root and no ${cap}`);
  for (const device of devices) if (device) problems.push(`${device} not accessible`);
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
export async function hasCapability(cap: LinuxCapability): Promise<boolean> {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex !== undefined && ((BigInt(`0x${hex}`) >> CAPABILITY_BITS[cap]) & 1n) === 1n;
  } catch {
    return process.getuid?.() === 0;
  }
}
