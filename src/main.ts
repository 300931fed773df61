#!/usr/bin/env node
import { allOptions, ConfigError, parseServeConfig } from './config.js';
import { BACKENDS } from './backends/registry.js';
import { CLIENT_USAGE, isClientCommand, runClientCommand } from './cli/commands.js';
import { createLogger } from './log.js';
import { startServer, StartupError } from './server.js';
import { VERSION } from './version.js';

const USAGE = `rexcsi ${VERSION}: a CSI v1.12 plugin with loop, ebs, glusterfs and efs backends

Usage:
  rexcsi serve [options]     serve CSI over a unix socket
${CLIENT_USAGE}  rexcsi version             print the version
  rexcsi help                this text

Options of "serve" (flag, then environment variable, then --config file, then default; see docs/configuration.md):
${Object.entries(allOptions())
  .map(
    ([name, o]) =>
      `  --${name}${o.type === 'string' ? '=VALUE' : ''}\n      ${o.description}${o.env ? ` [env ${o.env}]` : ''}${o.default !== undefined ? ` (default ${String(o.default)})` : ''}`,
  )
  .join('\n')}

Backends: ${BACKENDS.map((b) => `${b.name} (${b.description})`).join('; ')}.
`;

async function serve(argv: string[]): Promise<void> {
  const config = parseServeConfig(argv, process.env);
  const log = createLogger({ level: config.logLevel, format: config.logFormat, base: { plugin: config.pluginName, mode: config.mode } });
  const backend = await config.backend.create({
    nodeId: config.nodeId,
    maxVolumesPerNode: config.maxVolumesPerNode,
    options: config.backendOptions,
  });
  const server = await startServer(config, backend, log);
  log.info(
    {
      endpoint: `unix://${server.socketPath}`,
      backend: backend.name,
      nodeId: config.nodeId,
      version: VERSION,
      ...(server.metricsUrl ? { metrics: server.metricsUrl } : {}),
      ...(server.dockerSocketPath ? { docker: `unix://${server.dockerSocketPath}` } : {}),
    },
    'serving',
  );

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, inflight: server.inflight.size }, 'shutting down');
    void server.stop(config.shutdownTimeoutMs).then(() => {
      log.info('stopped');
      log.flush?.();
      process.exit(0);
    });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('SIGHUP', shutdown);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve(rest);
      return -1; // keeps running
    case 'version':
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      if (command !== undefined && isClientCommand(command)) return runClientCommand(command, rest);
      process.stderr.write(`rexcsi: unknown command ${JSON.stringify(command)}; see "rexcsi help"\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    // Start-up failures are one line that says what to fix, never a stack trace.
    const known = err instanceof ConfigError || err instanceof StartupError;
    process.stderr.write(`rexcsi: ${known ? '' : 'cannot start: '}${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = known ? 2 : 1;
  },
);
