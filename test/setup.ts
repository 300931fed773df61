// Runs around every test file (vitest setupFiles): snapshots loop devices, mounts under /tmp/rexcsi-test and
// our processes before the file; after it, stops every plugin the file started and fails the file if
// anything new is left, naming each leftover (see assertNoLeaks in helpers/leaks.ts).
import { afterAll, beforeAll } from 'vitest';
import { assertNoLeaks, snapshotSystem, type SystemSnapshot } from './helpers/leaks.js';
import { stopAllGlusterd } from './helpers/gluster.js';
import { stopAllGlusterPools } from './helpers/gluster-pool.js';
import { stopAllMoto } from './helpers/moto.js';
import { stopAllPlugins } from './helpers/plugin.js';

let before: SystemSnapshot | undefined;

beforeAll(async () => {
  before = await snapshotSystem();
});

afterAll(async () => {
  await stopAllPlugins();
  await stopAllMoto();
  await stopAllGlusterd();
  await stopAllGlusterPools();
  if (before) await assertNoLeaks(before);
});
