import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { ConfigError, parseEndpoint, parseServeConfig } from '../../src/config.js';

describe('endpoint parsing', () => {
  it('accepts unix:// URLs and plain paths, and makes them absolute', () => {
    expect(parseEndpoint('unix:///tmp/csi.sock')).toBe('/tmp/csi.sock');
    expect(parseEndpoint('unix:/tmp/csi.sock')).toBe('/tmp/csi.sock');
    expect(parseEndpoint('/run/x.sock')).toBe('/run/x.sock');
    expect(parseEndpoint('run/x.sock')).toBe(`${process.cwd()}/run/x.sock`);
  });

  it('refuses TCP endpoints with a message that says what is served', () => {
    expect(() => parseEndpoint('tcp://127.0.0.1:9000')).toThrow(/only unix sockets/);
    expect(() => parseEndpoint('127.0.0.1:9000')).toThrow(ConfigError);
  });
});

describe('serve configuration', () => {
  it('lets CSI_ENDPOINT win over --endpoint and MESOS_AGENT_ID stand in for the node id', () => {
    const c = parseServeConfig(['--endpoint', '/tmp/flag.sock'], { CSI_ENDPOINT: 'unix:///tmp/env.sock', MESOS_AGENT_ID: 'agent-7' });
    expect(c.socketPath).toBe('/tmp/env.sock');
    expect(c.nodeId).toBe('agent-7');
    expect(c.pluginName).toBe('loop.rexcsi.io');
    expect(c.mode).toBe('both');
  });

  it('prefers --node-id, then MESOS_AGENT_ID, then the hostname', () => {
    expect(parseServeConfig(['--node-id', 'n1'], { MESOS_AGENT_ID: 'a' }).nodeId).toBe('n1');
    expect(parseServeConfig([], {}).nodeId).toBe(hostname());
  });

  it('stops on a bad setting, naming the setting, the value and what is allowed', () => {
    expect(() => parseServeConfig(['--mode', 'sideways'], {})).toThrow('--mode="sideways": expected controller, node or both');
    expect(() => parseServeConfig(['--backend', 'zfs'], {})).toThrow(/--backend="zfs": expected one of loop/);
    expect(() => parseServeConfig(['--name=-bad-'], {})).toThrow(/plugin name must match/);
    expect(() => parseServeConfig(['--socket-mode', '999'], {})).toThrow(/octal/);
    expect(() => parseServeConfig(['--no-such-flag'], {})).toThrow(ConfigError);
  });
});

describe('--csi-versions', () => {
  it('defaults to both, takes v1, v0 or REXCSI_CSI_VERSIONS, and names the choices when wrong', () => {
    expect(parseServeConfig([], {}).csiVersions).toBe('both');
    expect(parseServeConfig(['--csi-versions', 'v0'], {}).csiVersions).toBe('v0');
    expect(parseServeConfig([], { REXCSI_CSI_VERSIONS: 'v1' }).csiVersions).toBe('v1');
    expect(() => parseServeConfig(['--csi-versions', 'v2'], {})).toThrow(ConfigError);
    expect(() => parseServeConfig(['--csi-versions', 'v2'], {})).toThrow(/expected v1, v0 or both/);
  });
});
