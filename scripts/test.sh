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

# The hostile-input suite (test/hostile) runs only inside ../shared/tools/sandbox.sh, where the machine is
# read-only but for the repo, the test root and /tmp; it runs when no test files were named.
hostile_results=test-results/vitest-hostile.json
rm -f "$hostile_results"
hostile_status=0
if [ "$#" -eq 0 ]; then
  sandbox=""
  for s in ../shared/tools/sandbox.sh ../../shared/tools/sandbox.sh; do [ -f "$s" ] && sandbox=$s && break; done
  if [ -z "$sandbox" ]; then
    echo "test.sh: ../shared/tools/sandbox.sh not found; the hostile-input suite cannot run safely" >&2
    hostile_status=1
  else
    test_root=${REXCSI_TEST_ROOT:-/tmp/rexcsi-test}
    mkdir -p "$test_root"
    REXCSI_SANDBOXED=1 REXCSI_VITEST_JSON="$hostile_results" SANDBOX_RW="$PWD:$test_root:/tmp" \
      timeout --kill-after=30 15m bash "$sandbox" \
      npx --no-install vitest run test/hostile </dev/null || hostile_status=$?
  fi
fi

audit_status=0
npx --no-install tsx test/helpers/leak-audit.ts check "$baseline" || audit_status=$?

# The closing line. A file that failed outside its tests (an import error, a failing afterAll such as the
# per-file leak check) and a failed leak audit each count as one failure.
if [ -f "$results" ]; then
  node - "$results" "$audit_status" "$hostile_results" "$hostile_status" <<'JS'
const [file, audit, hostileFile, hostileStatus] = process.argv.slice(2);
const r = JSON.parse(require('fs').readFileSync(file, 'utf8'));
if (require('fs').existsSync(hostileFile)) {
  const h = JSON.parse(require('fs').readFileSync(hostileFile, 'utf8'));
  for (const k of ['numPassedTests', 'numFailedTests', 'numPendingTests', 'numTodoTests']) r[k] += h[k];
  r.testResults.push(...h.testResults);
} else if (hostileStatus !== '0') r.numFailedTests += 1; // the sandboxed run did not get to write results
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
if [ "$hostile_status" -ne 0 ]; then exit "$hostile_status"; fi
exit "$audit_status"
