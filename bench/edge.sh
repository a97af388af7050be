#!/usr/bin/env bash
# Issue #15's edge figures on a release node with the default limits (`portrait-bench edge`):
#  * /healthz and an authenticated portrait_get (p50/p99) while N idle and half-sent
#    connections are held (default 1000);
#  * the node's RSS around a 60 MiB WebSocket message sent in four fragments, signed in and
#    with a bad UserSig;
#  * the update_my_profile rate one user gets (answered 0 vs 60007 per second).
# Usage: bench/edge.sh [--held N] [--rate-secs S]
set -euo pipefail
cd "$(dirname "$0")/.."
HELD=1000; RATE_SECS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --held) HELD="$2"; shift 2 ;;
    --rate-secs) RATE_SECS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --locked -q -p portrait -p portrait-bench
BIN=target/release
WORK="$(mktemp -d)"; PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
APP=1400000001; KEY=edge-secret-key
cat > "$WORK/portrait.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$WORK/data"
[log]
filter = "warn"
[[apps]]
sdkappid = $APP
key = "$KEY"
admins = ["administrator"]
TOML
$BIN/portrait serve --config "$WORK/portrait.toml" >"$WORK/portrait.log" 2>&1 & PID=$!
for _ in $(seq 1 300); do grep -q "^portrait: listening on " "$WORK/portrait.log" && break; sleep 0.1; done
BASE=$(grep -m1 "^portrait: listening on " "$WORK/portrait.log" | sed 's/^portrait: listening on //')
echo "node $BASE (pid $PID), default [server], [push] and [apps.client_rate_limits]"
$BIN/portrait-bench edge --base "$BASE" --sdkappid $APP --key $KEY --pid "$PID" \
  --held "$HELD" --rate-secs "$RATE_SECS"
