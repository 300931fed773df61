import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { BackendFactory, OptionSpec } from './backends/backend.js';
import { BACKENDS, findBackend } from './backends/registry.js';
import { optionReader } from './lib/options.js';
import { ConfigFileError, readConfigFile, type FileValue } from './config-file.js';
import { LOG_FORMATS, type LogFormat } from './log.js';
import { parseMetricsAddress, type MetricsAddress } from './metrics-address.js';
import { MOUNTER_CHOICES, type MounterChoice } from './os/native-mount.js';

// `rexcsi serve` settings: command-line flags, then environment variables, then defaults. Two CSI
// conventions take precedence, as COs expect of a CSI plugin: CSI_ENDPOINT (set by the CO) over --endpoint,
// and --node-id over MESOS_AGENT_ID over the hostname. A bad setting stops start-up with one line that
// names the setting, the value and what is allowed.

export type Mode = 'controller' | 'node' | 'both';

/** The CSI wire packages served on the socket: csi.v1, csi.v0 (spec 0.2/0.3, Mesos 1.6-1.7), or both. */
export type CsiVersions = 'v1' | 'v0' | 'both';

export interface ServeConfig {
  backend: BackendFactory;
  /** absolute path of the unix socket */
  socketPath: string;
  mode: Mode;
  nodeId: string;
  pluginName: string;
  logLevel: string;
  maxVolumesPerNode: number;
  shutdownTimeoutMs: number;
  /** permission bits of the socket */
  socketMode: number;
  socketGroup?: number | undefined;
  backendOptions: Record<string, string | boolean | string[] | undefined>;
  csiVersions: CsiVersions;
  logFormat: LogFormat;
  /** where Prometheus metrics are served; undefined = not served */
  metricsAddress?: MetricsAddress | undefined;
  /** the Docker volume plugin API (--docker-endpoint); undefined = not served */
  docker?: { socketPath: string; root: string } | undefined;
  /** how the node service mounts: system calls (auto falls back to mount(8) where koffi cannot load) or mount(8) */
  mounter: MounterChoice;
}

export class ConfigError extends Error {}

const PLUGIN_NAME = /^[a-zA-Z][A-Za-z0-9-._]{0,61}[a-zA-Z]$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const COMMON: Record<string, OptionSpec> = {
  backend: {
    type: 'string',
    env: 'REXCSI_BACKEND',
    default: 'loop',
    description: `storage backend (${BACKENDS.map((b) => b.name).join(', ')})`,
  },
  endpoint: { type: 'string', description: 'unix socket to serve (unix:///abs/path.sock or a path); CSI_ENDPOINT wins when set' },
  mode: { type: 'string', env: 'REXCSI_MODE', default: 'both', description: 'services to run: controller, node or both' },
  'node-id': { type: 'string', env: 'REXCSI_NODE_ID', description: 'node id (default: MESOS_AGENT_ID, else the hostname)' },
  name: { type: 'string', env: 'REXCSI_NAME', description: 'plugin name (default: <backend>.rexcsi.io)' },
  'log-level': { type: 'string', env: 'REXCSI_LOG_LEVEL', default: 'info', description: `log level (${LOG_LEVELS.join(', ')})` },
  'max-volumes-per-node': {
    type: 'string',
    env: 'REXCSI_MAX_VOLUMES_PER_NODE',
    default: '0',
    description: 'reported in NodeGetInfo; 0 = no limit',
  },
  'shutdown-timeout': {
    type: 'string',
    env: 'REXCSI_SHUTDOWN_TIMEOUT',
    default: '30',
    description: 'seconds in-flight calls may take to finish on SIGTERM',
  },
  'socket-mode': { type: 'string', env: 'REXCSI_SOCKET_MODE', default: '0660', description: 'permission bits of the socket (octal)' },
  'socket-group': { type: 'string', env: 'REXCSI_SOCKET_GROUP', description: 'numeric group id that owns the socket' },
  'csi-versions': {
    type: 'string',
    env: 'REXCSI_CSI_VERSIONS',
    default: 'both',
    description: 'CSI packages served: v1, v0 (CSI 0.2/0.3 for Mesos 1.6-1.7) or both',
  },
  config: {
    type: 'string',
    env: 'REXCSI_CONFIG',
    description: 'settings file (JSON or YAML; keys are these flags without "--"); flags and environment variables win over it',
  },
  'log-format': {
    type: 'string',
    env: 'REXCSI_LOG_FORMAT',
    default: 'auto',
    description: `log line format (${LOG_FORMATS.join(', ')}): auto is readable text on a terminal, JSON otherwise`,
  },
  'metrics-address': {
    type: 'string',
    env: 'REXCSI_METRICS_ADDRESS',
    description: 'serve Prometheus metrics at http://HOST:PORT/metrics (off when unset)',
  },
  'docker-endpoint': {
    type: 'string',
    env: 'REXCSI_DOCKER_ENDPOINT',
    description:
      'also serve the Docker volume plugin API on this unix socket, e.g. /run/docker/plugins/rexcsi.sock (its file name is the driver name; off when unset)',
  },
  'docker-root': {
    type: 'string',
    env: 'REXCSI_DOCKER_ROOT',
    default: '/var/lib/rexcsi/docker',
    description: 'where the Docker API mounts volumes (<root>/<name>/data) and keeps their mount counts',
  },
  mounter: {
    type: 'string',
    env: 'REXCSI_MOUNTER',
    default: 'auto',
    description: 'how the node mounts: syscall (mount(2) directly), mount (mount(8)), or auto (syscall, else mount(8))',
  },
};

export const DEFAULT_ENDPOINT = './run/rexcsi.sock';

export function allOptions(): Record<string, OptionSpec> {
  const all: Record<string, OptionSpec> = { ...COMMON };
  for (const b of BACKENDS) Object.assign(all, b.options);
  return all;
}

/** `unix:///abs/path`, `unix:/abs/path`, `unix://rel/path` or a plain path -> an absolute socket path. */
export function parseEndpoint(endpoint: string): string {
  const value = endpoint.trim();
  let path: string;
  if (value.startsWith('unix://')) path = value.slice('unix://'.length);
  else if (value.startsWith('unix:')) path = value.slice('unix:'.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^[^/]+:\d+$/.test(value)) {
    throw new ConfigError(`endpoint ${JSON.stringify(endpoint)}: only unix sockets are served (unix:///path/to/plugin.sock)`);
  } else path = value;
  if (path === '') throw new ConfigError(`endpoint ${JSON.stringify(endpoint)} names no socket path`);
  return resolve(path);
}

function parseInteger(name: string, value: string, min: number, radix = 10): number {
  const n = radix === 8 ? (/^[0-7]{1,4}$/.test(value) ? parseInt(value, 8) : NaN) : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(
      `--${name}=${JSON.stringify(value)}: expected ${radix === 8 ? 'octal permission bits like 0660' : `a whole number >= ${min}`}`,
    );
  }
  return n;
}

/** Where a setting's value came from, so an error can say which flag, variable or file to fix. */
type SettingSources = Map<string, string>;

export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv): ServeConfig {
  const sources: SettingSources = new Map();
  try {
    return buildServeConfig(argv, env, sources);
  } catch (e) {
    if (e instanceof ConfigFileError) throw new ConfigError(e.message);
    if (e instanceof ConfigError) throw new ConfigError(attributeToSource(e.message, sources));
    throw e;
  }
}

/** `--mode="x": expected ...` -> `--mode="x" (from REXCSI_MODE): expected ...` when the value was not a flag. */
function attributeToSource(message: string, sources: SettingSources): string {
  const m = /^--([a-z0-9-]+)(=(?:"(?:[^"\\]|\\.)*"|[^\s:]*))?/.exec(message);
  const source = m ? sources.get(m[1]!) : undefined;
  return m && source ? `${m[0]} (from ${source})${message.slice(m[0].length)}` : message;
}

function buildServeConfig(argv: string[], env: NodeJS.ProcessEnv, sources: SettingSources): ServeConfig {
  const specs = allOptions();
  const options: ParseArgsConfig['options'] = {};
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}) };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const configPath = typeof values.config === 'string' ? values.config : env.REXCSI_CONFIG || undefined;
  const file: Record<string, FileValue> = configPath ? readConfigFile(configPath, specs) : {};
  // Backends may share an option name (--region) with different env vars: the chosen backend's spec counts.
  let chosen: BackendFactory | undefined;
  const get = (name: string): string | boolean | string[] | undefined => {
    const spec = chosen?.options[name] ?? specs[name]!;
    const v = values[name];
    if (v !== undefined) return v as string | boolean | string[];
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') {
      sources.set(name, spec.env!);
      if (spec.type === 'boolean') return fromEnv === 'true' || fromEnv === '1';
      return spec.multiple ? fromEnv.split(',') : fromEnv;
    }
    if (file[name] !== undefined) {
      sources.set(name, `config file ${configPath}`);
      return file[name];
    }
    return spec.default;
  };
  const { str } = optionReader(get);

  const backendName = str('backend') ?? '';
  const backend = findBackend(backendName);
  if (!backend)
    throw new ConfigError(`--backend=${JSON.stringify(backendName)}: expected one of ${BACKENDS.map((b) => b.name).join(', ')}`);
  chosen = backend;
  for (const name of Object.keys(values)) {
    if (!(name in COMMON) && !(name in backend.options)) throw new ConfigError(`--${name} is not an option of the ${backend.name} backend`);
  }
  for (const name of Object.keys(file)) {
    if (!(name in COMMON) && !(name in backend.options))
      throw new ConfigError(`config file ${configPath}: ${name} is not a setting of the ${backend.name} backend`);
  }

  const mode = str('mode') ?? '';
  if (mode !== 'controller' && mode !== 'node' && mode !== 'both')
    throw new ConfigError(`--mode=${JSON.stringify(mode)}: expected controller, node or both`);

  const csiVersions = str('csi-versions') ?? '';
  if (csiVersions !== 'v1' && csiVersions !== 'v0' && csiVersions !== 'both') {
    throw new ConfigError(`--csi-versions=${JSON.stringify(csiVersions)}: expected v1, v0 or both`);
  }

  const endpoint = env.CSI_ENDPOINT || str('endpoint') || DEFAULT_ENDPOINT;
  const nodeId = str('node-id') || env.MESOS_AGENT_ID || hostname();
  if (Buffer.byteLength(nodeId) > 128) throw new ConfigError(`--node-id is longer than the CSI limit of 128 bytes`);
  const pluginName = str('name') || `${backend.name}.rexcsi.io`;
  if (!PLUGIN_NAME.test(pluginName))
    throw new ConfigError(`--name=${JSON.stringify(pluginName)}: a plugin name must match ${PLUGIN_NAME.source}`);
  const logLevel = str('log-level') ?? '';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`--log-level=${JSON.stringify(logLevel)}: expected one of ${LOG_LEVELS.join(', ')}`);
  const group = str('socket-group');
  const logFormat = (str('log-format') ?? '') as LogFormat;
  if (!LOG_FORMATS.includes(logFormat))
    throw new ConfigError(`--log-format=${JSON.stringify(logFormat)}: expected one of ${LOG_FORMATS.join(', ')}`);
  const metricsValue = str('metrics-address');
  const metricsAddress = metricsValue ? parseMetricsAddress(metricsValue) : undefined;
  if (typeof metricsAddress === 'string') throw new ConfigError(`--metrics-address=${JSON.stringify(metricsValue)}: ${metricsAddress}`);

  const docker = dockerSettings(str('docker-endpoint'), str('docker-root')!, mode);
  const mounter = str('mounter')! as MounterChoice;
  if (!MOUNTER_CHOICES.includes(mounter)) throw new ConfigError(`--mounter=${JSON.stringify(mounter)}: expected auto, syscall or mount`);

  const backendOptions: ServeConfig['backendOptions'] = {};
  for (const name of Object.keys(backend.options)) backendOptions[name] = get(name);

  return {
    backend,
    socketPath: parseEndpoint(endpoint),
    mode,
    nodeId,
    pluginName,
    logLevel,
    maxVolumesPerNode: parseInteger('max-volumes-per-node', str('max-volumes-per-node') ?? '', 0),
    shutdownTimeoutMs: parseInteger('shutdown-timeout', str('shutdown-timeout') ?? '', 0) * 1000,
    socketMode: parseInteger('socket-mode', str('socket-mode') ?? '', 0, 8),
    socketGroup: group !== undefined ? parseInteger('socket-group', group, 0) : undefined,
    backendOptions,
    csiVersions,
    logFormat,
    metricsAddress,
    docker,
    mounter,
  };
}

/** The Docker API creates, deletes and mounts, so it needs both services; its socket's file name is the driver name. */
function dockerSettings(endpoint: string | undefined, root: string, mode: Mode): ServeConfig['docker'] {
  if (!endpoint) return undefined;
  const socketPath = parseEndpoint(endpoint);
  if (!/\/[A-Za-z0-9][A-Za-z0-9_.-]*\.sock$/.test(socketPath)) {
    throw new ConfigError(
      `--docker-endpoint=${JSON.stringify(endpoint)}: expected a socket path ending in NAME.sock (NAME is the driver name Docker and dvdcli use)`,
    );
  }
  if (mode !== 'both') throw new ConfigError(`--docker-endpoint needs --mode both (the Docker API creates, deletes and mounts volumes)`);
  if (!root.startsWith('/')) throw new ConfigError(`--docker-root=${JSON.stringify(root)}: expected an absolute path`);
  return { socketPath, root: resolve(root) };
}
