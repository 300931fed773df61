// Whole-run leak audit for scripts/test.sh (run with tsx):
//   tsx test/helpers/leak-audit.ts snapshot <file>   records loop devices, every mount, our processes
//   tsx test/helpers/leak-audit.ts check <file>      exits 1 naming each leftover since the snapshot; under
//                                                    CI (or REXCSI_TEST_CLEANUP=1) removes those that are
//                                                    clearly the tests' own (see cleanupWanted in leaks.ts)

import { readFile, writeFile } from 'node:fs/promises';
import { cleanupLeaks, cleanupWanted, findLeaks, formatLeaks, hasLeaks, snapshotSystem, type SystemSnapshot } from './leaks.js';

async function main(): Promise<number> {
  const [cmd, file] = process.argv.slice(2);
  if (!file || (cmd !== 'snapshot' && cmd !== 'check')) {
    process.stderr.write('usage: leak-audit.ts snapshot|check <file>\n');
    return 2;
  }
  if (cmd === 'snapshot') {
    await writeFile(file, JSON.stringify(await snapshotSystem({ mountScope: null }), null, 2));
    return 0;
  }
  const before = JSON.parse(await readFile(file, 'utf8')) as SystemSnapshot;
  const leaks = await findLeaks(before, { settleMs: 10_000 });
  if (!hasLeaks(leaks)) {
    process.stdout.write('leak audit: no loop devices, mounts or test processes left behind\n');
    return 0;
  }
  process.stdout.write(`leak audit: FAILED, the test run left these behind:\n${formatLeaks(leaks)}\n`);
  if (!cleanupWanted()) {
    process.stdout.write('leak audit: left in place (REXCSI_TEST_CLEANUP=1 removes them)\n');
  } else {
    const problems = await cleanupLeaks(leaks);
    process.stdout.write(
      problems.length
        ? `leak audit: could not clean up:\n  ${problems.join('\n  ')}\n`
        : 'leak audit: cleaned up those under /tmp/rexcsi-test and our processes\n',
    );
  }
  return 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`leak audit: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
