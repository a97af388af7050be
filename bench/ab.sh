#!/usr/bin/env bash
# A/B of builds on one persistent data directory: W2 and W1 rates and the server's CPU time per
# request, builds in the order given (repeat them to alternate: A B A B). For changes to the read
# path at a size where a fresh import per run would take minutes (10M accounts: about 4).
# Usage: bench/ab.sh --data DIR [--accounts N] [--duration SECS] [--writers C] BUILD [BUILD ...]
#   BUILD          a directory with `portrait` and `portrait-bench`, optionally followed by
#                  `,VAR=VALUE` (an environment variable for that node, e.g. an allocator option)
#   --data DIR     the node's data directory; if it holds no database yet, N accounts with 5
#                  fields are imported first (with the first build)
#   --accounts N   accounts (default 10000000); the read cache holds 1.2M, as in bench/run.sh
#   --duration S   seconds per measured run (default 8); each build is first warmed with 25 s of W2
#   --writers C    during each measured run, also write as W3 does over C connections (one wrk
#                  thread) and print the writes' rate: reads while the store commits
# Prints one line per run: build, workload, req/s, p99, server CPU µs per request (utime + stime
# of the node from /proc over the run), and the whole machine's busy CPU µs per request.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DIR="$(pwd)/bench"; export BENCH_DIR
DATA=""; ACCOUNTS=10000000; DURATION=8; WRITERS=0; BUILDS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --accounts) ACCOUNTS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --writers) WRITERS="$2"; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) BUILDS+=("$1"); shift ;;
  esac
done
[ -n "$DATA" ] && [ ${#BUILDS[@]} -gt 0 ] || { echo "usage: bench/ab.sh --data DIR [--accounts N] [--duration S] [--writers C] BUILD [BUILD ...]" >&2; exit 2; }
command -v wrk >/dev/null || { echo "error: wrk is required (apt-get install wrk)" >&2; exit 1; }
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
mkdir -p "$DATA"; DATA=$(cd "$DATA" && pwd)
WORK="$(mktemp -d)"; NODE=""
cleanup() { [ -n "$NODE" ] && kill "$NODE" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
node_toml "$DATA" "cache_entries = 1200000" > "$WORK/portrait.toml"
# The machine's busy CPU time so far (user, nice, system, irq, softirq; not idle, iowait, steal).
busy() { awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# measure SCRIPT SECS [WRITERS] -> "rps=… p99=… server_us=… machine_us=…[ writes=…]" (CPU per read;
# with WRITERS, the writes' CPU is in it too)
measure() {
  local t0 b0 r t1 b1 rps writer="" w
  if [ "${3:-0}" -gt 0 ]; then
    PATH_Q="/v4/profile/portrait_set?$Q" N="$ACCOUNTS" wrk -t1 -c"$3" -d"$(( $2 + 2 ))"s -s "$BENCH_DIR/w3_set.lua" "$BASE" >"$WORK/writer.out" 2>&1 & writer=$!
    sleep 1
  fi
  t0=$(ticks_of "$NODE"); b0=$(busy)
  r=$(PATH_Q="/v4/profile/portrait_get?$Q" N="$ACCOUNTS" wrk -t2 -c64 -d"$2"s --latency -s "$BENCH_DIR/$1" "$BASE" | grep '^RESULT')
  t1=$(ticks_of "$NODE"); b1=$(busy); rps=$(field "$r" rps)
  measured "$r"
  echo -n "rps=$rps p99_ms=$(field "$r" p99_ms) server_us=$(per_request_us $((t1 - t0)) "$rps" "$2") machine_us=$(per_request_us $((b1 - b0)) "$rps" "$2")"
  if [ -n "$writer" ]; then
    wait "$writer"; w=$(grep '^RESULT' "$WORK/writer.out")
    measured "$w"
    echo -n " writes=$(field "$w" rps)"
  fi
  echo
}

for build in "${BUILDS[@]}"; do
  bin=${build%%,*}; envs=""; [ "$build" != "$bin" ] && envs=${build#*,}
  [ -n "$NODE" ] && { kill "$NODE"; wait "$NODE" 2>/dev/null || true; }
  # shellcheck disable=SC2086
  rm -f "$WORK/portrait.log" # wait_line must not find the previous node's line
  env $envs "$bin/portrait" serve --config "$WORK/portrait.toml" >"$WORK/portrait.log" 2>&1 & NODE=$!
  BASE=$(wait_line "$WORK/portrait.log" "portrait: listening on ")
  SIG=$("$bin/portrait" usersig --sdkappid $APP --key $KEY --user $ADMIN --expire 86400)
  Q="sdkappid=$APP&identifier=$ADMIN&usersig=$SIG&random=1&contenttype=json"
  if ! curl -s "$BASE/v4/profile/portrait_get?$Q" -d '{"To_Account":["u0"],"TagList":["Tag_Profile_IM_Nick"]}' | grep -q '"UserProfileItem":\[{"To_Account":"u0","ProfileItem":\[{'; then
    echo "importing $ACCOUNTS accounts into $DATA" >&2
    "$bin/portrait-bench" load --base "$BASE" --sdkappid $APP --key $KEY --accounts "$ACCOUNTS" --concurrency 4 --fields 5 >&2
  fi
  measure w2_get_batch.lua 25 >/dev/null
  W2=$(measure w2_get_batch.lua "$DURATION" "$WRITERS"); echo "$build W2 $W2"
  W1=$(measure w1_get_one.lua "$DURATION" "$WRITERS"); echo "$build W1 $W1"
done
