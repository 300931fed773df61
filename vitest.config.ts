import { configDefaults, defineConfig } from 'vitest/config';

const ci = Boolean(process.env['CI']) && process.env['CI'] !== 'false';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/hostile sends hostile paths: only inside scripts/sandbox.sh (scripts/test.sh sets REXCSI_SANDBOXED=1).
    exclude: [...configDefaults.exclude, ...(process.env['REXCSI_SANDBOXED'] === '1' ? [] : ['test/hostile/**'])],
    // Test files share loop devices, mounts and /tmp/rexcsi-test: one file at a time.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    setupFiles: ['test/setup.ts'],
    reporters: [
      ci ? 'verbose' : 'default',
      // scripts/test.sh reads the counts from here for its closing line.
      ['json', { outputFile: process.env['REXCSI_VITEST_JSON'] ?? 'test-results/vitest.json' }],
    ],
  },
});
