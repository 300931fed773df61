import { BACKUP_COMMANDS } from './backup.js';
import { CAPACITY_COMMANDS } from './capacity.js';
import { EXIT, runCommand, type Command } from './command.js';
import { INFO_COMMANDS } from './info.js';
import { MIGRATE_COMMANDS } from './migrate.js';
import { SNAPSHOT_COMMANDS } from './snapshot.js';
import { VOLUME_COMMANDS } from './volume.js';
import { DOCKER_GROUP, runDockerCommand } from './docker.js';

// The client commands of `rexcsi` (main.ts dispatches here): `info`, `capacity`, and the `volume` and
// `snapshot` groups, each a Command in the file of its group. docs/cli.md describes them.

const COMMANDS: Command[] = [
  ...INFO_COMMANDS,
  ...VOLUME_COMMANDS,
  ...BACKUP_COMMANDS,
  ...MIGRATE_COMMANDS,
  ...SNAPSHOT_COMMANDS,
  ...CAPACITY_COMMANDS,
];
const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0]!));

export function isClientCommand(word: string): boolean {
  return GROUPS.has(word) || COMMANDS.some((c) => c.name === word) || word === DOCKER_GROUP;
}

/** Lines for `rexcsi help`, e.g. `  rexcsi volume COMMAND      list|get|create|...`. */
export const CLIENT_USAGE = [
  ...COMMANDS.filter((c) => !c.name.includes(' ')).map(
    (c) => `  ${`rexcsi ${c.name}`.padEnd(27)}${c.summary.split(/[.(]/, 1)[0]!.trim().toLowerCase()}`,
  ),
  ...[...GROUPS].map(
    (g) =>
      `  ${`rexcsi ${g} COMMAND`.padEnd(27)}${COMMANDS.filter((c) => c.name.startsWith(`${g} `))
        .map((c) => c.name.slice(g.length + 1))
        .join('|')}`,
  ),
  `  ${'rexcsi docker COMMAND'.padEnd(27)}mount|unmount|ls|create|rm through the Docker volume API (--docker-endpoint)`,
  `  ${''.padEnd(27)}client commands talk to --endpoint (default $CSI_ENDPOINT); "rexcsi COMMAND --help"`,
]
  .map((line) => `${line}\n`)
  .join('');

function groupHelp(group: string): string {
  const cmds = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...cmds.map((c) => c.name.length));
  return `Usage: rexcsi ${group} COMMAND [options]\n\n${cmds.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}\n\n"rexcsi ${group} COMMAND --help" shows a command's options.\n`;
}

export async function runClientCommand(word: string, argv: string[]): Promise<number> {
  if (word === DOCKER_GROUP) return runDockerCommand(argv);
  const single = COMMANDS.find((c) => c.name === word);
  if (single) return runCommand(single, argv);
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? process.stderr : process.stdout).write(groupHelp(word));
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const cmd = COMMANDS.find((c) => c.name === `${word} ${sub}`);
  if (!cmd) {
    process.stderr.write(`rexcsi ${word}: unknown command ${JSON.stringify(sub)}\n${groupHelp(word)}`);
    return EXIT.USAGE;
  }
  return runCommand(cmd, rest);
}
