#!/usr/bin/env bash
# Interleaved A/B of two builds: both nodes run at once, each on its own copy of one data
# directory, and short runs alternate between them, so that a machine whose speed drifts from
# minute to minute (a shared host: the same build has measured 3,300 and 4,600 W2 req/s within
# the hour) slows both alike. For changes to the read path at a size where ab.sh's one node at
# a time leaves the difference inside the drift.
# Usage: bench/interleaved.sh --data DIR [--accounts N] [--rounds R] [--duration S] [--cold]
#                             [--workload w2|w1|w3] [--data-b DIR_B --accounts-b N_B]
#                             BUILD_A BUILD_B
#   BUILD          as in ab.sh: a directory with `portrait` and `portrait-bench`, optionally
#                  followed by `,VAR=VALUE`
#   --data DIR     a data directory that ab.sh has filled (N accounts); each build runs on a
#                  copy of it (DIR.a, DIR.b, made fresh and removed at the end: both start from
#                  the same file and page-cache state, and DIR is never written)
#   --rounds R     pairs (default 6; A first in odd rounds, B first in even ones), each run
#                  --duration S seconds (default 8) after 2 s that are not measured
#   --workload W   w2 (default), w1, or w3 (sets: both copies are written alike)
#   --cold         drop the page cache (as root) before the nodes start, so both map the file
#                  as they would after a reboot
#   --data-b DIR_B, --accounts-b N_B
#                  B runs on a copy of DIR_B holding N_B accounts instead (A keeps DIR and N):
#                  one build at two sizes, the growth from N to N_B in one run (BUILD_A and
#                  BUILD_B may be the same directory)
#   --swap         then do it all again on fresh copies with the two sides exchanged (each
#                  build on the other's copy and port, started second), and report the
#                  geometric mean of both halves' B / A: on a shared host, whichever side
#                  a build ran on has been worth 7 % for a whole run, the same both ways
#                  (BENCHMARKS.md, "session 22")
# Prints each pair (A first, whichever ran first), then the mean of each build and B / A (the
# mean of the pairs' ratios); with --swap, that for each half, then the two halves together.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DIR="$(pwd)/bench"; export BENCH_DIR
DATA=""; ACCOUNTS=10000000; DATA_B=""; ACCOUNTS_B=""; ROUNDS=6; DURATION=8; COLD=""; SWAP=""; WORKLOAD=w2; BUILDS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --accounts) ACCOUNTS="$2"; shift 2 ;;
    --data-b) DATA_B="$2"; shift 2 ;;
    --accounts-b) ACCOUNTS_B="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --cold) COLD=1; shift ;;
    --swap) SWAP=1; shift ;;
    --workload) WORKLOAD="$2"; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) BUILDS+=("$1"); shift ;;
  esac
done
DATA_B=${DATA_B:-$DATA}; ACCOUNTS_B=${ACCOUNTS_B:-$ACCOUNTS}
[ -n "$DATA" ] && [ -f "$DATA/portrait.db" ] && [ -f "$DATA_B/portrait.db" ] && [ ${#BUILDS[@]} -eq 2 ] && [ "$ROUNDS" -ge 1 ] \
  || { echo "usage: bench/interleaved.sh --data DIR [--accounts N] [--rounds R] [--duration S] [--cold] [--swap] [--workload w2|w1|w3] [--data-b DIR_B --accounts-b N_B] BUILD_A BUILD_B (DIR filled by ab.sh)" >&2; exit 2; }
ENDPOINT=portrait_get
case "$WORKLOAD" in
  w2) SCRIPT=w2_get_batch.lua ;; w1) SCRIPT=w1_get_one.lua ;; w3) SCRIPT=w3_set.lua; ENDPOINT=portrait_set ;;
  *) echo "unknown workload $WORKLOAD" >&2; exit 2 ;;
esac
command -v wrk >/dev/null || { echo "error: wrk is required (apt-get install wrk)" >&2; exit 1; }
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
DATA=$(cd "$DATA" && pwd); DATA_B=$(cd "$DATA_B" && pwd); COPIES=("$DATA.a" "$DATA_B.b")
SOURCES=("$DATA" "$DATA_B"); COUNTS=("$ACCOUNTS" "$ACCOUNTS_B")
WORK="$(mktemp -d)"; NODES=()
cleanup() { for p in ${NODES[@]+"${NODES[@]}"}; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK" "${COPIES[@]}"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# half: fresh copies, both nodes started (side 0 first), warmed, then the rounds; prints the
# pairs and the means, and sets RATIO to the mean of the pairs' side 1 / side 0.
half() {
  for i in 0 1; do rm -rf "${COPIES[$i]}"; cp -r "${SOURCES[$i]}" "${COPIES[$i]}"; done; sync # (written out: runs measure no writeback)
  [ -n "$COLD" ] && { sync; echo 3 > /proc/sys/vm/drop_caches; }

  BASES=(); QS=(); NODES=()
  for i in 0 1; do
    build=${BUILDS[$i]}; bin=${build%%,*}; envs=""; [ "$build" != "$bin" ] && envs=${build#*,}
    dir=${COPIES[$i]}
    node_toml "$dir" "cache_entries = 1200000" > "$WORK/portrait-$i.toml"
    # shellcheck disable=SC2086
    env $envs "$bin/portrait" serve --config "$WORK/portrait-$i.toml" >"$WORK/portrait-$i.log" 2>&1 & NODES+=($!)
    BASES+=("$(wait_line "$WORK/portrait-$i.log" "portrait: listening on ")")
    sig=$("$bin/portrait" usersig --sdkappid $APP --key $KEY --user $ADMIN --expire 86400)
    QS+=("sdkappid=$APP&identifier=$ADMIN&usersig=$sig&random=1&contenttype=json")
  done

  # run I SECS -> wrk's RESULT line for node I
  run() {
    PATH_Q="/v4/profile/$ENDPOINT?${QS[$1]}" N="${COUNTS[$1]}" wrk -t2 -c64 -d"$2"s --latency \
      -s "$BENCH_DIR/$SCRIPT" "${BASES[$1]}" | grep '^RESULT'
  }
  for i in 0 1; do PATH_Q="/v4/profile/portrait_get?${QS[$i]}" N="${COUNTS[$i]}" wrk -t2 -c64 -d25s -s "$BENCH_DIR/w2_get_batch.lua" "${BASES[$i]}" >/dev/null; done
  # How much of each node's file maps are in huge pages after the warm-up (FilePmdMapped: the
  # database file's, and the binary's if the kernel maps it huge): a node whose copy
  # landed in fewer huge folios pays more TLB misses for its whole run (one cause to rule out
  # when one side wins every round).
  for i in 0 1; do
    echo "side $i: $(awk '/^FilePmdMapped/ { printf "%.0f MB", $2 / 1024 }' "/proc/${NODES[$i]}/smaps_rollup" 2>/dev/null) of its file maps in huge pages (the database's, and any other), database $(( $(stat -c %s "${COPIES[$i]}/portrait.db") >> 20 )) MB"
  done
  SUM=(0 0); RATIOS=0
  for r in $(seq 1 "$ROUNDS"); do
    RPS=(0 0); OUT=("" ""); order="0 1"; [ $((r % 2)) = 0 ] && order="1 0" # A B, B A: drift cancels
    for i in $order; do
      run "$i" 2 >/dev/null
      t0=$(ticks_of "${NODES[$i]}")
      res=$(run "$i" "$DURATION"); measured "$res"
      t1=$(ticks_of "${NODES[$i]}"); rps=$(field "$res" rps); RPS[$i]=$rps
      SUM[$i]=$(calc %.1f "${SUM[$i]} + $rps")
      OUT[$i]="${BUILDS[$i]} $WORKLOAD rps=$rps server_us=$(per_request_us $((t1 - t0)) "$rps" "$DURATION")"
    done
    RATIOS=$(calc %.4f "$RATIOS + ${RPS[1]} / ${RPS[0]}")
    first=A; [ "$order" = "1 0" ] && first=B
    echo "round $r ($first first) A: ${OUT[0]}  B: ${OUT[1]}"
  done
  RATIO=$(calc %.4f "$RATIOS / $ROUNDS")
  echo "mean ${BUILDS[0]} $(calc %.1f "${SUM[0]} / $ROUNDS") ${BUILDS[1]} $(calc %.1f "${SUM[1]} / $ROUNDS") $1 $(calc %.3f "$RATIO")"
  for p in "${NODES[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
}

if [ -z "$SWAP" ]; then half B/A; exit 0; fi
echo "== first half: A as given"
half B/A; FIRST=$RATIO
# The second half: every per-side array exchanged (builds, sources, counts; the copies keep
# their names, so each source lands on the other copy).
BUILDS=("${BUILDS[1]}" "${BUILDS[0]}"); SOURCES=("${SOURCES[1]}" "${SOURCES[0]}"); COUNTS=("${COUNTS[1]}" "${COUNTS[0]}")
echo "== second half: sides exchanged (A is the first half's B)"
half A/B; SECOND=$RATIO
echo "B/A first half $(calc %.3f "$FIRST") second half $(calc %.3f "1 / $SECOND") both $(calc %.3f "sqrt($FIRST / $SECOND)")"
