#!/usr/bin/env bash
# `npm test`: installs test dependencies, builds, runs every vitest test, then audits the machine for loop
# devices, mounts and test processes the run left behind. Extra arguments go to vitest (e.g.
# `npm test -- test/unit`); then the sandboxed suites are not run. Exits non-zero when a test failed or
# something was left behind.
# Ends with a plain `tests: N passed, N failed, N skipped` line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
npm run --silent build

# Lint (typescript-eslint with type information) and formatting (Prettier): a finding fails the run.
npm run --silent lint

# vitest does not typecheck; the test helpers and tests are checked here (src/ too, with the same options).
npx --no-install tsc --noEmit -p test/tsconfig.json

mkdir -p test-results
baseline=test-results/leak-baseline.json
results=test-results/vitest.json
rm -f "$results"
npx --no-install tsx test/helpers/leak-audit.ts snapshot "$baseline"

# The suites that run inside the sandbox (scripts/sandbox.sh: the machine read-only but for the repo, the test
# root, /tmp and glusterd's run and log dirs; private mount and PID namespaces): hostile input, and the crash
# suites, which SIGKILL plugins part-way through writes. They run there when no test files were named.
sandboxed_suites=(test/hostile test/reliability/crash.test.ts)
main_args=("$@")
if [ "$#" -eq 0 ]; then for s in "${sandboxed_suites[@]}"; do main_args+=(--exclude "$s/**" --exclude "$s"); done; fi

# Stay inside CI's 90 minutes with time left for the audit; vitest's own timeouts should fire long before.
vitest_status=0
timeout --kill-after=60 "${REXCSI_TEST_TIMEOUT:-75m}" npx --no-install vitest run "${main_args[@]}" </dev/null || vitest_status=$?
[ "$vitest_status" -eq 124 ] && echo "test.sh: vitest did not finish within ${REXCSI_TEST_TIMEOUT:-75m}" >&2

# Inside the sandbox the run has its own leak audit: its mounts live in the sandbox's mount namespace and
# vanish with it, so the audit outside would not see them (it still sees loop devices, which are global).
sandbox_results=test-results/vitest-sandboxed.json
sandbox_audit=test-results/sandbox-audit.status
rm -f "$sandbox_results" "$sandbox_audit"
sandbox_status=0
if [ "$#" -eq 0 ]; then
  test_root=${REXCSI_TEST_ROOT:-/tmp/rexcsi-test}
  mkdir -p "$test_root"
  rw="$PWD:$test_root:/tmp"
  for d in /run/gluster /var/log/glusterfs /var/lib/glusterd; do [ -d "$d" ] && rw+=":$d"; done
  inner='
    npx --no-install tsx test/helpers/leak-audit.ts snapshot test-results/sandbox-leak-baseline.json || exit 125
    status=0
    npx --no-install vitest run "$@" </dev/null || status=$?
    audit=0
    npx --no-install tsx test/helpers/leak-audit.ts check test-results/sandbox-leak-baseline.json || audit=$?
    echo "$audit" >'"$sandbox_audit"'
    [ "$status" -ne 0 ] && exit "$status"
    exit "$audit"'
  REXCSI_SANDBOXED=1 REXCSI_VITEST_JSON="$sandbox_results" SANDBOX_RW="$rw" \
    timeout --kill-after=30 "${REXCSI_SANDBOX_TIMEOUT:-30m}" bash scripts/sandbox.sh \
    bash -c "$inner" sandboxed "${sandboxed_suites[@]}" </dev/null || sandbox_status=$?
  [ "$sandbox_status" -eq 124 ] && echo "test.sh: the sandboxed suites did not finish within ${REXCSI_SANDBOX_TIMEOUT:-30m}" >&2
  [ "$sandbox_status" -eq 125 ] && echo "test.sh: the sandbox could not be set up (scripts/sandbox.sh said why above)" >&2
fi

audit_status=0
npx --no-install tsx test/helpers/leak-audit.ts check "$baseline" || audit_status=$?

# The closing line. A file that failed outside its tests (an import error, a failing afterAll such as the
# per-file leak check) and a failed leak audit each count as one failure.
if [ -f "$results" ]; then
  node - "$results" "$audit_status" "$sandbox_results" "$sandbox_status" "$sandbox_audit" <<'JS'
const fs = require('fs');
const [file, audit, sandboxFile, sandboxStatus, sandboxAuditFile] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(file, 'utf8'));
if (fs.existsSync(sandboxFile)) {
  const h = JSON.parse(fs.readFileSync(sandboxFile, 'utf8'));
  for (const k of ['numPassedTests', 'numFailedTests', 'numPendingTests', 'numTodoTests']) r[k] += h[k];
  r.testResults.push(...h.testResults);
} else if (sandboxStatus !== '0') r.numFailedTests += 1; // the sandboxed run did not get to write results
// The sandbox's own leak audit failed (or never ran although the sandboxed tests did): one failure.
const sandboxAudit = fs.existsSync(sandboxAuditFile) ? fs.readFileSync(sandboxAuditFile, 'utf8').trim() : null;
if (sandboxAudit !== null ? sandboxAudit !== '0' : fs.existsSync(sandboxFile)) r.numFailedTests += 1;
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
if [ "$sandbox_status" -ne 0 ]; then exit "$sandbox_status"; fi
exit "$audit_status"
