// `--config FILE` (JSON or YAML) beside flags and environment variables: precedence, errors that name the
// setting, value and source, and the settings table of docs/configuration.md kept in step with the code.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allOptions, ConfigError, parseServeConfig } from '../../src/config.js';
import { settingsTable } from '../../src/config-doc.js';
import { runCli } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/plugin.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';

let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('config');
});

afterAll(async () => {
  await removeTempDir(dir);
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('configuration file', () => {
  it('reads YAML and JSON files with the flag names as keys', async () => {
    const yaml = await file(
      'a.yaml',
      'mode: node\nlog-level: debug\npool-dir: /srv/pool\nsocket-mode: "0600"\nmetrics-address: 127.0.0.1:9808\nmax-volumes-per-node: 12\n',
    );
    const c = parseServeConfig(['--config', yaml], {});
    expect(c).toMatchObject({
      mode: 'node',
      logLevel: 'debug',
      socketMode: 0o600,
      maxVolumesPerNode: 12,
      metricsAddress: { host: '127.0.0.1', port: 9808 },
    });
    expect(c.backendOptions['pool-dir']).toBe('/srv/pool');
    const json = await file('b.json', JSON.stringify({ mode: 'controller', 'log-format': 'json' }));
    expect(parseServeConfig([], { REXCSI_CONFIG: json })).toMatchObject({ mode: 'controller', logFormat: 'json' });
  });

  it('ranks flags over environment over file over defaults', async () => {
    const path = await file('rank.yaml', 'mode: node\nlog-level: debug\nname: from-file.example\nshutdown-timeout: 5\n');
    const env = { REXCSI_LOG_LEVEL: 'warn', REXCSI_NAME: 'from-env.example' };
    const c = parseServeConfig(['--config', path, '--name', 'from-flag.example'], env);
    expect(c.pluginName).toBe('from-flag.example'); // flag > env > file
    expect(c.logLevel).toBe('warn'); // env > file
    expect(c.mode).toBe('node'); // file > default
    expect(c.shutdownTimeoutMs).toBe(5000);
    expect(c.logFormat).toBe('auto'); // default
  });

  it('keeps CSI_ENDPOINT first and MESOS_AGENT_ID after the file for the node id', async () => {
    const path = await file('csi.yaml', 'endpoint: /run/from-file.sock\nnode-id: file-node\n');
    expect(parseServeConfig(['--config', path], {}).socketPath).toBe('/run/from-file.sock');
    expect(parseServeConfig(['--config', path, '--endpoint', '/run/flag.sock'], {}).socketPath).toBe('/run/flag.sock');
    expect(parseServeConfig(['--config', path, '--endpoint', '/run/flag.sock'], { CSI_ENDPOINT: 'unix:///run/co.sock' }).socketPath).toBe(
      '/run/co.sock',
    );
    expect(parseServeConfig(['--config', path], { MESOS_AGENT_ID: 'agent-1' }).nodeId).toBe('file-node');
  });

  it('names the file, the setting, the value and what is allowed when something is wrong', async () => {
    const cases: [string, string, RegExp][] = [
      ['mode.yaml', 'mode: sideways\n', /^--mode="sideways" \(from config file .*mode\.yaml\): expected controller, node or both$/],
      ['camel.yaml', 'poolDir: /x\n', /config file .*camel\.yaml: unknown setting "poolDir" \(write it as pool-dir\)/],
      ['list.yaml', 'pool-dir: [a, b]\n', /config file .*list\.yaml: pool-dir=\["a","b"\]: expected a string or a number$/],
      ['bad.yaml', 'mode: [unclosed\n', /config file .*bad\.yaml: not valid YAML: /],
      ['bad.json', '{"mode": ', /config file .*bad\.json: not valid JSON: /],
      ['top.yaml', '- mode\n', /expected a mapping of settings .*found a list/],
      ['self.yaml', 'config: other.yaml\n', /"config" cannot be set inside a config file/],
      ['mask.yaml', 'socket-mode: "rwx"\n', /^--socket-mode="rwx" \(from config file .*\): expected octal permission bits/],
      ['metrics.yaml', 'metrics-address: nowhere\n', /^--metrics-address="nowhere" \(from config file .*\): expected host:port/],
    ];
    for (const [name, text, message] of cases) {
      const path = await file(name, text);
      let error: unknown;
      try {
        parseServeConfig(['--config', path], {});
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(ConfigError);
      expect((error as Error).message, name).toMatch(message);
      expect((error as Error).message, name).not.toContain('\n');
    }
    expect(() => parseServeConfig(['--config', join(dir, 'missing.yaml')], {})).toThrow(/^--config=".*missing\.yaml": no such file$/);
    expect(() => parseServeConfig([], { REXCSI_LOG_LEVEL: 'loud' })).toThrow(
      /^--log-level="loud" \(from REXCSI_LOG_LEVEL\): expected one of/,
    );
  });

  it('stops `rexcsi serve` with exit code 2 and that one line', async () => {
    const path = await file('serve.yaml', 'log-level: loud\n');
    const r = await runCli(['serve', '--config', path, '--endpoint', join(dir, 'never.sock')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `rexcsi: --log-level="loud" (from config file ${path}): expected one of fatal, error, warn, info, debug, trace, silent\n`,
    );
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');

  it('holds the settings table generated from the option specs (run `npm run docs:config` when this fails)', () => {
    expect(doc).toContain(settingsTable());
  });

  it('lists every option with its environment variable', () => {
    for (const [name, spec] of Object.entries(allOptions())) {
      expect(doc).toContain(`| \`--${name}\``);
      if (spec.env) expect(doc).toContain(`\`${spec.env}\``);
    }
  });
});
