#!/usr/bin/env bash
# `npm test`: installs test dependencies, builds, runs every vitest test, then audits the machine for loop
# devices, mounts and test processes the run left behind. Extra arguments go to vitest
# (e.g. `npm test -- test/unit`). Exits non-zero when a test failed or something was left behind.
# Ends with a plain `tests: N passed, N failed, N skipped` line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
npm run --silent build

# vitest does not typecheck; the test helpers and tests are checked here (src/ too, with the same options).
npx --no-install tsc --noEmit -p test/tsconfig.json

mkdir -p test-results
baseline=test-results/leak-baseline.json
results=test-results/vitest.json
rm -f "$results"
npx --no-install tsx test/helpers/leak-audit.ts snapshot "$baseline"

# Stay inside CI's 90 minutes with time left for the audit; vitest's own timeouts should fire long before.
vitest_status=0
timeout --kill-after=60 "${REXCSI_TEST_TIMEOUT:-75m}" npx --no-install vitest run "$@" </dev/null || vitest_status=$?
[ "$vitest_status" -eq 124 ] && echo "test.sh: vitest did not finish within ${REXCSI_TEST_TIMEOUT:-75m}" >&2

audit_status=0
npx --no-install tsx test/helpers/leak-audit.ts check "$baseline" || audit_status=$?

# The closing line. A file that failed outside its tests (an import error, a failing afterAll such as the
# per-file leak check) and a failed leak audit each count as one failure.
if [ -f "$results" ]; then
  node - "$results" "$audit_status" <<'JS'
const [file, audit] = process.argv.slice(2);
const r = JSON.parse(require('fs').readFileSync(file, 'utf8'));
const path = require('path');
const brokenFiles = r.testResults.filter(
  (t) => t.status === 'failed' && !t.assertionResults.some((a) => a.status === 'failed'),
);
for (const t of brokenFiles) console.log(`failed outside its tests: ${path.relative(process.cwd(), t.name)}`);
const failed = r.numFailedTests + brokenFiles.length + (audit === '0' ? 0 : 1);
console.log(`tests: ${r.numPassedTests} passed, ${failed} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
JS
else
  echo "test.sh: vitest wrote no $results (it did not get to run the tests)" >&2
fi

if [ "$vitest_status" -ne 0 ]; then exit "$vitest_status"; fi
exit "$audit_status"
