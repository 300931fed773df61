// csi-sanity v5.4.0 against the loop backend, once with mount volumes and once with block volumes
// (the runner and its reports: test/helpers/sanity.ts).

import { afterEach, describe, it } from 'vitest';
import { expectSanityPasses, SANITY_TIMEOUT_MS, stopSanity } from '../helpers/sanity.js';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';

let plugin: PluginProcess | undefined;

afterEach(async () => {
  stopSanity();
  await plugin?.cleanup();
  plugin = undefined;
});

describe('csi-sanity v5.4.0 (loop backend)', () => {
  for (const accessType of ['mount', 'block'] as const) {
    it(
      `passes with access type ${accessType}`,
      async () => {
        plugin = await startPlugin({ name: `sanity-${accessType}` });
        await expectSanityPasses({ label: accessType, accessType, plugin });
      },
      SANITY_TIMEOUT_MS + 2 * 60_000,
    );
  }
});
