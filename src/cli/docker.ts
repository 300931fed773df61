import { parseArgs } from 'node:util';
import { callDockerApi, DockerApiUnreachable, type DockerApiAnswer } from '../docker/client.js';
import { EXIT } from './command.js';
import { Output } from './output.js';

// `rexcsi docker mount|unmount|ls|create|rm`: an operator's client of the Docker volume plugin API that
// `rexcsi serve --docker-endpoint` serves, so a volume mounted here (REX-Ray's `rexray volume mount`) is
// counted with the containers' and dvdcli's mounts of it and never pulled from under them.

export const DOCKER_GROUP = 'docker';
export const DEFAULT_DOCKER_ENDPOINT = '/run/docker/plugins/rexcsi.sock';
/** The holder the command line mounts as, unless --id says otherwise. */
export const CLI_HOLDER = 'rexcsi-cli';

interface DockerCommand {
  name: string;
  summary: string;
  args: string[];
  options?: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; description: string }>;
  run(call: (method: string, body: unknown) => Promise<Record<string, unknown>>, args: string[], opts: Opts, out: Output): Promise<void>;
}

type Opts = Record<string, string | boolean | string[] | undefined>;

const ID_OPTION = {
  id: { type: 'string' as const, description: `holder ID of this mount (default ${CLI_HOLDER}; "" is dvdcli's, i.e. Mesos')` },
};

const COMMANDS: DockerCommand[] = [
  {
    name: 'mount',
    summary:
      'Attach, stage and mount a volume at <docker-root>/NAME/data on this node, counted as one more holder; prints the mount point.',
    args: ['NAME'],
    options: ID_OPTION,
    async run(call, [name], opts, out) {
      const res = await call('VolumeDriver.Mount', { Name: name, ID: holderOf(opts) });
      out.result(res, () => out.line(String(res.Mountpoint)));
    },
  },
  {
    name: 'unmount',
    summary: "Drop this holder's mount of a volume; the last holder's unmount unpublishes, unstages and detaches it.",
    args: ['NAME'],
    options: ID_OPTION,
    async run(call, [name], opts, out) {
      const res = await call('VolumeDriver.Unmount', { Name: name, ID: holderOf(opts) });
      out.result(res, () => out.line(`unmounted ${name}`));
    },
  },
  {
    name: 'ls',
    summary: 'List the volumes as Docker sees them, with their mount points on this node.',
    args: [],
    async run(call, _args, _opts, out) {
      const res = await call('VolumeDriver.List', {});
      const volumes = Array.isArray(res.Volumes) ? (res.Volumes as { Name: string; Mountpoint: string }[]) : [];
      out.result(volumes, () =>
        out.table(
          [
            ['Name', 'NAME'],
            ['Mountpoint', 'MOUNTPOINT'],
          ],
          volumes,
        ),
      );
    },
  },
  {
    name: 'create',
    summary: 'Create a volume as `docker volume create -d DRIVER -o K=V NAME` does (size=16 is GiB, or 64Mi, 10Gi).',
    args: ['NAME'],
    options: { opt: { type: 'string', multiple: true, description: 'K=V option (repeatable), e.g. size=1Gi, fsType=xfs' } },
    async run(call, [name], opts, out) {
      const res = await call('VolumeDriver.Create', { Name: name, Opts: keyValues(opts.opt) });
      out.result(res, () => out.line(`created ${name}`));
    },
  },
  {
    name: 'rm',
    summary: 'Delete a volume as `docker volume rm` does; refused while it is mounted.',
    args: ['NAME'],
    async run(call, [name], _opts, out) {
      const res = await call('VolumeDriver.Remove', { Name: name });
      out.result(res, () => out.line(`removed ${name}`));
    },
  },
];

class UsageError extends Error {}

function holderOf(opts: Opts): string {
  return typeof opts.id === 'string' ? opts.id : CLI_HOLDER;
}

function keyValues(raw: Opts[string]): Record<string, string> {
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--opt ${JSON.stringify(item)}: expected KEY=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function dockerHelp(): string {
  const lines = COMMANDS.map((c) => `  ${`${c.name}${c.args.map((a) => ` ${a}`).join('')}`.padEnd(14)}  ${c.summary}`);
  return [
    'Usage: rexcsi docker COMMAND [options]',
    '',
    ...lines,
    '',
    'Options: --docker-endpoint SOCK (default $REXCSI_DOCKER_ENDPOINT, else /run/docker/plugins/rexcsi.sock),',
    '         --json, --timeout SECONDS (default 300), --id ID (mount, unmount), --opt K=V (create).',
    'Exit codes: 0 ok, 1 the plugin answered with an error, 2 usage error, 3 plugin unreachable, 4 not found.',
    '',
  ].join('\n');
}

export async function runDockerCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  const cmd = COMMANDS.find((c) => c.name === sub);
  if (!cmd) {
    const asked = sub === '--help' || sub === '-h' || sub === 'help';
    if (!asked) process.stderr.write(sub === undefined ? '' : `rexcsi docker: unknown command ${JSON.stringify(sub)}\n`);
    (asked ? process.stdout : process.stderr).write(dockerHelp());
    return asked ? EXIT.OK : EXIT.USAGE;
  }
  try {
    const { values, positionals } = parseCommand(cmd, rest);
    if (values.help === true) {
      process.stdout.write(dockerHelp());
      return EXIT.OK;
    }
    const socket = (values['docker-endpoint'] as string | undefined) || env.REXCSI_DOCKER_ENDPOINT || DEFAULT_DOCKER_ENDPOINT;
    const timeoutMs = parseTimeout(values.timeout as string | undefined);
    const out = new Output(values.json === true);
    const call = async (method: string, body: unknown) =>
      answerOf(method, await callDockerApi(socket.replace(/^unix:\/\//, ''), method, body, timeoutMs));
    await cmd.run(call, positionals, values, out);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`rexcsi docker ${cmd.name}: ${e.message}\n(see "rexcsi docker --help")\n`);
      return EXIT.USAGE;
    }
    if (e instanceof DockerApiUnreachable) {
      process.stderr.write(
        `rexcsi docker ${cmd.name}: ${e.message}\n  hint: start the plugin with --docker-endpoint, or point --docker-endpoint here at its socket\n`,
      );
      return EXIT.UNREACHABLE;
    }
    if (e instanceof DockerApiError) {
      process.stderr.write(`rexcsi docker ${cmd.name}: ${e.message}\n`);
      return e.code === 'NOT_FOUND' ? EXIT.NOT_FOUND : EXIT.RPC_FAILED;
    }
    throw e;
  }
}

class DockerApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

function answerOf(method: string, a: DockerApiAnswer): Record<string, unknown> {
  const err = typeof a.body.Err === 'string' ? a.body.Err : '';
  if (a.status !== 200 || err !== '') {
    throw new DockerApiError(`${a.code ?? `HTTP ${a.status}`} from ${method}: ${err || a.text.slice(0, 500)}`, a.code);
  }
  return a.body;
}

function parseCommand(cmd: DockerCommand, argv: string[]): { values: Opts; positionals: string[] } {
  let parsed: { values: Opts; positionals: string[] };
  try {
    const result = parseArgs({
      args: argv,
      options: {
        ...(cmd.options ?? {}),
        'docker-endpoint': { type: 'string' },
        json: { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: true,
    });
    parsed = { values: result.values, positionals: result.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n', 1)[0] ?? String(e));
  }
  if (parsed.values.help === true) return parsed;
  if (parsed.positionals.length < cmd.args.length) throw new UsageError(`missing ${cmd.args.slice(parsed.positionals.length).join(' ')}`);
  if (parsed.positionals.length > cmd.args.length)
    throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[cmd.args.length])}`);
  return parsed;
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined) return 300_000;
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0)
    throw new UsageError(`--timeout ${JSON.stringify(value)}: expected a number of seconds > 0`);
  return Number(value) * 1000;
}
