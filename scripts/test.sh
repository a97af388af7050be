#!/usr/bin/env bash
# Runs Portrait's whole test suite: the Rust workspace (embedded store; PostgreSQL and NATS on
# 127.0.0.1 for the scale-out tests), the API suite again on PostgreSQL, and the web SDK with its
# browser test. Idempotent set-up first: PostgreSQL and NATS are started when nothing answers
# (scripts/services.sh), and Tencent's official UserSig generators (PyPI + npm `tls-sig-api-v2`,
# pinned) that the UserSig compatibility tests check against are installed.
# Ends with how long each test binary took, then one totals line over every test binary
# ("total: N passed, N failed"). Arguments go to every `cargo test` (e.g. a test name filter, or
# `--profile ci`, as .ci/run passes them to reuse its build).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=services.sh
source scripts/services.sh
ensure_services
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
# Wall time per test binary (cargo prints "Running <file> (<binary>)" and then "finished in Ns").
echo "== test time by binary (slowest first)"
awk '/^ *Running / { b = $NF; gsub(/[()]/, "", b); sub(/.*\//, "", b); sub(/-[0-9a-f]+$/, "", b)
                    name = b " (" ($2 == "unittests" ? $3 : $2) ")" } /^ *Doc-tests / { name = "doc-tests " $2 }
     /^== API suite on PostgreSQL/ { suffix = " (postgres)" }
     /^== web SDK/ { sdk = 1 }
     sdk && /^# duration_ms / { printf "  %8.1f s  web SDK (node --test, every file)\n", $3 / 1000 }
     /^test result:/ { t = $NF; sub(/s$/, "", t); if (name != "") printf "  %8.1f s  %s%s\n", t, name, suffix; name = "" }' \
  "$log" | sort -rn | head -n 25
awk '/^test result:/ { p += $4; f += $6 }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
