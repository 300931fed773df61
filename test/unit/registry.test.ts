// The backend registry: one factory per backend folder, and every fault point the code reaches is listed
// by the part that reaches it (what docs/reliability.md and the crash tests read).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKENDS, FAULT_POINTS, findBackend } from '../../src/backends/registry.js';

const SRC = join(import.meta.dirname, '../../src');

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory() && !e.name.startsWith('gen')) out.push(...(await sourceFiles(join(dir, e.name))));
    else if (e.name.endsWith('.ts')) out.push(join(dir, e.name));
  }
  return out;
}

describe('backend registry', () => {
  it('has one factory for each backend folder, found by its name', async () => {
    const folders = (await readdir(join(SRC, 'backends'), { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(BACKENDS.map((b) => b.name).sort()).toEqual(folders.sort());
    for (const b of BACKENDS) expect(findBackend(b.name)).toBe(b);
    expect(findBackend('nfs')).toBeUndefined();
  });

  it('lists exactly the fault points the code reaches, each once', async () => {
    const reached = new Set<string>();
    for (const file of await sourceFiles(SRC)) {
      for (const m of (await readFile(file, 'utf8')).matchAll(/faultPoint\('([^']+)'\)/g)) reached.add(m[1]!);
    }
    expect([...FAULT_POINTS].sort()).toEqual([...reached].sort());
    expect(new Set(FAULT_POINTS).size).toBe(FAULT_POINTS.length);
  });
});
