// Temp directories under /tmp/rexcsi-test and a cleanup stack that runs even when a test fails.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readMountInfo } from '../../src/os/mountinfo.js';

// REXCSI_TEST_ROOT lets two test runs share a machine without seeing each other's devices as leaks.
export const TEST_ROOT = process.env.REXCSI_TEST_ROOT ?? '/tmp/rexcsi-test';

/** A fresh, unique directory such as /tmp/rexcsi-test/os-Xy12ab. */
export async function makeTempDir(prefix: string): Promise<string> {
  await mkdir(TEST_ROOT, { recursive: true });
  return mkdtemp(join(TEST_ROOT, `${prefix}-`));
}

/** Removes dir, but refuses while anything is mounted below it: rm -r would empty the mounted filesystem. */
export async function removeTempDir(dir: string): Promise<void> {
  const mounted = await mountsUnder(dir);
  if (mounted.length > 0) throw new Error(`not removing ${dir}: still mounted: ${mounted.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}

export async function mountsUnder(dir: string): Promise<string[]> {
  return (await readMountInfo()).map((e) => e.mountPoint).filter((p) => p === dir || p.startsWith(`${dir}/`));
}

type Step = () => unknown;

/** Last in, first out: unmount before detach before delete. Every step runs even if an earlier one throws. */
export class Cleanup {
  private steps: Step[] = [];

  defer(step: Step): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanup steps failed`);
  }
}
