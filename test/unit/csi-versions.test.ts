import { describe, expect, it } from 'vitest';
import { ConfigError, parseServeConfig } from '../../src/config.js';

describe('--csi-versions', () => {
  it('defaults to both, takes v1, v0 or REXCSI_CSI_VERSIONS, and names the choices when wrong', () => {
    expect(parseServeConfig([], {}).csiVersions).toBe('both');
    expect(parseServeConfig(['--csi-versions', 'v0'], {}).csiVersions).toBe('v0');
    expect(parseServeConfig([], { REXCSI_CSI_VERSIONS: 'v1' }).csiVersions).toBe('v1');
    expect(() => parseServeConfig(['--csi-versions', 'v2'], {})).toThrow(ConfigError);
    expect(() => parseServeConfig(['--csi-versions', 'v2'], {})).toThrow(/expected v1, v0 or both/);
  });
});
