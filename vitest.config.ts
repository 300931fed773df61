import { defineConfig } from 'vitest/config';

const ci = Boolean(process.env['CI']) && process.env['CI'] !== 'false';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
      ['json', { outputFile: 'test-results/vitest.json' }],
    ],
  },
});
