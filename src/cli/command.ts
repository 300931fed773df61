import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { status as Status } from '@grpc/grpc-js';
import { DEFAULT_ENDPOINT } from '../config.js';
import { CallFailed, connect, grpcTarget, socketPathOf, type CsiConnection } from './client.js';
import { Output } from './output.js';

// The frame every client command runs in: option parsing with --help, the connection, output, and the
// mapping of failures to exit codes and to an error line that names the gRPC code and what to do.

/** Exit codes of client commands (docs/cli.md). */
export const EXIT = {
  OK: 0,
  /** the plugin answered with a gRPC error (other than the ones below) */
  RPC_FAILED: 1,
  /** bad command line: unknown command or option, missing or malformed argument */
  USAGE: 2,
  /** the plugin could not be reached, or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED, no socket) */
  UNREACHABLE: 3,
  /** the plugin answered NOT_FOUND: the volume, snapshot or node does not exist */
  NOT_FOUND: 4,
  /** the plugin answered, and the answer is "no": validate did not confirm, Probe said not ready */
  DECLINED: 5,
} as const;

export class UsageError extends Error {}

export interface OptionDef {
  type: 'string' | 'boolean';
  multiple?: boolean;
  /** placeholder in --help, e.g. SIZE */
  value?: string;
  description: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandContext {
  /** positional arguments, in the order of Command.args */
  args: string[];
  opts: OptionValues;
  csi: CsiConnection;
  out: Output;
  endpoint: string;
}

export interface Command {
  /** e.g. 'volume create' */
  name: string;
  summary: string;
  /** required positional arguments, e.g. ['NAME'] */
  args?: string[];
  options?: Record<string, OptionDef>;
  /** extra lines for --help */
  notes?: string[];
  /** the command opens its own connections (e.g. --from/--to), or none: --endpoint's socket is not required */
  ownConnections?: boolean;
  run(ctx: CommandContext): Promise<number | void>;
}

export const COMMON_OPTIONS: Record<string, OptionDef> = {
  endpoint: {
    type: 'string',
    value: 'ENDPOINT',
    description: `CSI endpoint: unix:///path.sock, a socket path or host:port (default: $CSI_ENDPOINT, else ${DEFAULT_ENDPOINT})`,
  },
  json: { type: 'boolean', description: 'print the response as JSON (for scripts)' },
  timeout: { type: 'string', value: 'SECONDS', description: 'deadline of each call (default 300)' },
  help: { type: 'boolean', description: 'show this help' },
};

export function commandHelp(cmd: Command): string {
  const options = { ...(cmd.options ?? {}), ...COMMON_OPTIONS };
  const lines = [`Usage: rexcsi ${cmd.name}${(cmd.args ?? []).map((a) => ` ${a}`).join('')} [options]`, '', cmd.summary, '', 'Options:'];
  for (const [name, o] of Object.entries(options)) {
    const flag = `--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    lines.push(`  ${flag.padEnd(30)} ${o.description}${o.multiple ? ' (repeatable)' : ''}`);
  }
  if (cmd.notes?.length) lines.push('', ...cmd.notes);
  lines.push(
    '',
    'Exit codes: 0 ok, 1 the plugin answered with an error, 2 usage error, 3 plugin unreachable or too slow,',
    '            4 not found, 5 declined (validate not confirmed, probe not ready).',
  );
  return `${lines.join('\n')}\n`;
}

export async function runCommand(cmd: Command, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: { values: OptionValues; positionals: string[] };
  try {
    parsed = parseCommandLine(cmd, argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`rexcsi ${cmd.name}: ${e.message}\n(see "rexcsi ${cmd.name} --help")\n`);
    return EXIT.USAGE;
  }
  if (parsed.values.help === true) {
    process.stdout.write(commandHelp(cmd));
    return EXIT.OK;
  }
  const endpoint = (parsed.values.endpoint as string | undefined) || env.CSI_ENDPOINT || DEFAULT_ENDPOINT;
  const out = new Output(parsed.values.json === true);
  let csi: CsiConnection | undefined;
  try {
    const timeoutMs = parseTimeout(parsed.values.timeout as string | undefined);
    const socket = socketPathOf(grpcTarget(endpoint));
    if (socket !== undefined && !existsSync(socket) && cmd.ownConnections !== true) {
      process.stderr.write(
        `rexcsi ${cmd.name}: no plugin socket at ${socket}\n  hint: start the plugin, or point --endpoint (or CSI_ENDPOINT) at its socket\n`,
      );
      return EXIT.UNREACHABLE;
    }
    csi = connect(endpoint, timeoutMs);
    const code = await cmd.run({ args: parsed.positionals, opts: parsed.values, csi, out, endpoint });
    return code ?? EXIT.OK;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`rexcsi ${cmd.name}: ${e.message}\n(see "rexcsi ${cmd.name} --help")\n`);
      return EXIT.USAGE;
    }
    if (e instanceof CallFailed) {
      process.stderr.write(describeFailure(cmd.name, e, endpoint));
      return exitCodeOf(e.code);
    }
    throw e;
  } finally {
    csi?.close();
  }
}

function parseCommandLine(cmd: Command, argv: string[]): { values: OptionValues; positionals: string[] } {
  const defs = { ...(cmd.options ?? {}), ...COMMON_OPTIONS };
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, d] of Object.entries(defs)) options[name] = { type: d.type, ...(d.multiple ? { multiple: true } : {}) };
  let values: OptionValues;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true }) as {
      values: OptionValues;
      positionals: string[];
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n', 1)[0] ?? String(e));
  }
  if (values.help === true) return { values, positionals };
  const want = cmd.args ?? [];
  if (positionals.length < want.length) throw new UsageError(`missing ${want.slice(positionals.length).join(' ')}`);
  if (positionals.length > want.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[want.length])}`);
  return { values, positionals };
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined) return 300_000;
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0)
    throw new UsageError(`--timeout ${JSON.stringify(value)}: expected a number of seconds > 0`);
  return Number(value) * 1000;
}

export function exitCodeOf(code: Status): number {
  if (code === Status.NOT_FOUND) return EXIT.NOT_FOUND;
  if (code === Status.UNAVAILABLE || code === Status.DEADLINE_EXCEEDED) return EXIT.UNREACHABLE;
  return EXIT.RPC_FAILED;
}

const HINTS: Partial<Record<Status, string>> = {
  [Status.INVALID_ARGUMENT]: 'the request is malformed for this plugin: check the arguments and options (--help)',
  [Status.NOT_FOUND]: 'it does not exist (any more): "rexcsi volume list" or "rexcsi snapshot list" shows what does',
  [Status.ALREADY_EXISTS]:
    'something with this name or at this path exists with different settings: use another name/path, or the same settings',
  [Status.FAILED_PRECONDITION]:
    'the volume is not in a state that allows this (e.g. still published or staged): undo that first, then retry',
  [Status.ABORTED]: 'another operation on the same volume is running: retry when it has finished',
  [Status.OUT_OF_RANGE]: 'the size is outside what the plugin supports: "rexcsi capacity" shows the limits',
  [Status.RESOURCE_EXHAUSTED]: 'not enough capacity (or too many volumes on the node): "rexcsi capacity" shows what is free',
  [Status.UNAVAILABLE]:
    'the plugin is not reachable or not ready: check that it runs and that --endpoint (or CSI_ENDPOINT) names its socket',
  [Status.DEADLINE_EXCEEDED]:
    'no answer within --timeout: the operation may still finish; raise --timeout and retry (CSI calls are safe to retry)',
  [Status.PERMISSION_DENIED]: "the plugin refused: check the secrets (--secret) and the plugin's permissions",
  [Status.INTERNAL]: 'the plugin failed unexpectedly: its log has the details',
  [Status.UNKNOWN]: 'the plugin failed unexpectedly: its log has the details',
  [Status.CANCELLED]: 'the call was cancelled: retry',
};

export function describeFailure(command: string, e: CallFailed, endpoint: string): string {
  const codeName = Status[e.code] ?? `code ${e.code}`;
  if (e.code === Status.UNIMPLEMENTED) {
    return `rexcsi ${command}: UNIMPLEMENTED: the plugin at ${endpoint} does not implement ${e.method}${e.details ? ` (${e.details})` : ''}\n  hint: it does not offer this operation (or does not serve that service in its mode); "rexcsi info" lists what it offers\n`;
  }
  const hint = HINTS[e.code];
  return `rexcsi ${command}: ${codeName} from ${e.method}: ${e.details}\n${hint ? `  hint: ${hint}\n` : ''}`;
}
