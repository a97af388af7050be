#!/usr/bin/env bash
# The cost of a WebSocket `subscribe` with `since` against the size of the app's change log
# (issue #15, defect 5), on the embedded SQLite store, release build:
#
#   bench/catchup.sh [CHANGES…]          (default: 100000 1000000)
#
# For each size: a fresh server, `portrait-bench catchup` fills the log with CHANGES imports and
# times 50 subscribes with `since` 0 of 3 accounts spread over the log (p50/p99, end to end over
# the WebSocket); then, with the server stopped, the `catchup_cost` example of portrait-store
# times the store work of the same catch-ups on the same file both ways: the old path
# (`changes_since` over the whole log after `since`, filtered) and the new one (`changes_of`).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000)
cargo build --release --locked -q -p portrait -p portrait-bench
cargo build --release --locked -q -p portrait-store --example catchup_cost
BIN=target/release
WORK=$(mktemp -d); PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
APP=1400000001; KEY=bench-secret-key; ADMIN=administrator
wait_line() { for _ in $(seq 1 600); do l=$(grep -m1 "^$2" "$1" 2>/dev/null || true); [ -n "$l" ] && { echo "${l#"$2"}"; return; }; sleep 0.1; done; echo "timeout waiting for $2 in $1" >&2; exit 1; }
for N in "${SIZES[@]}"; do
  rm -rf "$WORK/data"
  cat > "$WORK/portrait.toml" <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$WORK/data"
[log]
filter = "warn"
[push]
# The benchmark sends its 50 subscribes back to back on one connection.
ops_per_sec = 0
[[apps]]
sdkappid = $APP
key = "$KEY"
admins = ["$ADMIN"]
rate_limits = { enabled = false }
TOML
  : > "$WORK/portrait.log"
  $BIN/portrait serve --config "$WORK/portrait.toml" >"$WORK/portrait.log" 2>&1 & PID=$!
  BASE=$(wait_line "$WORK/portrait.log" "portrait: listening on ")
  $BIN/portrait-bench catchup --base "$BASE" --sdkappid $APP --key $KEY --admin $ADMIN \
    --changes "$N" --ops 50 --accounts 3 --prefix cu
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  $BIN/examples/catchup_cost "sqlite://$WORK/data/portrait.db" $APP cu "$N" 50 3
done
