#!/usr/bin/env bash
# Runs Portrait's whole test suite: the Rust workspace (embedded store; PostgreSQL and NATS on
# 127.0.0.1 for the scale-out tests), the API suite again on PostgreSQL, and the web SDK with its
# browser test. Idempotent set-up first: Tencent's official UserSig generators (PyPI + npm
# `tls-sig-api-v2`, pinned) that the UserSig compatibility tests check against.
# Ends with one totals line over every test binary ("total: N passed, N failed").
set -euo pipefail
cd "$(dirname "$0")/.."

bash crates/portrait-core/tests/official/install.sh

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
# The API suite once more on PostgreSQL (127.0.0.1:5432, database `test`): both stores must
# answer every request the same way. It fails, saying so, if PostgreSQL is not running.
echo "== API suite on PostgreSQL (PORTRAIT_TEST_STORE=postgres)"
PORTRAIT_TEST_STORE=postgres cargo test --locked -p portrait-server --test api "$@" 2>&1 | tee -a "$log" || status=$?
# The web SDK (sdk/js): its unit/integration tests against the real server and the browser e2e
# test in Debian's headless Chromium (installed by the script if missing).
echo "== web SDK (sdk/js)"
bash sdk/js/ci.sh 2>&1 | tee -a "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
