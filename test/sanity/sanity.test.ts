// csi-sanity (kubernetes-csi/csi-test v5.4.0, built into .bin/ by scripts/install-deps.sh) against the loop
// backend, once with mount volumes and once with block volumes. Passes when no spec fails and some pass.
// The skipped specs are printed with their reasons: each should be for a capability the plugin does not
// advertise; the data-service specs (snapshots, clones, expansion, group snapshots) must run and pass. Reports: test-results/csi-sanity-<type>.xml (JUnit), .log (csi-sanity output),
// plugin-sanity-<type>.log (the plugin's own log). The runner is test/helpers/sanity.ts.

import { afterEach, describe, it } from 'vitest';
import { startPlugin, type PluginProcess } from '../helpers/plugin.js';
import { DATA_SERVICE_SPECS, expectGroupsPassed, expectSanityPassed, killSanity, runCsiSanity, SANITY_TIMEOUT_MS } from '../helpers/sanity.js';

const VOLUME_SIZE = 64 * 1024 * 1024;
const EXPAND_SIZE = 128 * 1024 * 1024;

let plugin: PluginProcess | undefined;

afterEach(async () => {
  killSanity();
  await plugin?.cleanup();
  plugin = undefined;
});

describe('csi-sanity v5.4.0 (loop backend)', () => {
  for (const accessType of ['mount', 'block'] as const) {
    it(
      `passes with access type ${accessType}`,
      async () => {
        plugin = await startPlugin({ name: `sanity-${accessType}` });
        const result = await runCsiSanity({
          label: accessType,
          plugin,
          args: [
            '-csi.testvolumeaccesstype', accessType,
            '-csi.testvolumesize', String(VOLUME_SIZE),
            '-csi.testvolumeexpandsize', String(EXPAND_SIZE),
          ],
        });
        expectSanityPassed(accessType, result);
        expectGroupsPassed(accessType, result.summary, DATA_SERVICE_SPECS);
      },
      SANITY_TIMEOUT_MS + 2 * 60_000,
    );
  }
});
