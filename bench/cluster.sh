#!/usr/bin/env bash
# Cluster benchmark: N `portrait serve` nodes on one scratch PostgreSQL database and one NATS
# subject, W1–W3 with one wrk per node at the same time, and what each request costs every
# component in CPU (and, for writes, in PostgreSQL transactions, WAL and disk writes). Its figures
# feed the capacity model in docs/scaling.md.
# Usage: bench/cluster.sh --nodes N [--accounts A] [--duration S] [--connections C]
#                         [--load-nodes K] [--subscribers S] [--fanout-writes K]
#                         [--cache-entries E] [--quick]
#   --nodes N          portrait nodes (default 1)
#   --accounts A       accounts loaded once through node 1 (default 100000)
#   --duration S       seconds per workload (default 10)
#   --connections C    wrk connections in all, split evenly over the loaded nodes (default 64, as
#                      bench/run.sh)
#   --load-nodes K     load only nodes 1..K (default: every node); the others stay in the cluster
#                      (invalidations, wake-ups, change-log reads): what one more node costs the rest
#   --subscribers S    W4 fan-out subscribers on node 1 (default 2000; 0 skips W4)
#   --fanout-writes K  W4 writes whose fan-out is measured (default 40, 100 ms apart)
#   --cache-entries E  each node's read cache (default 1200000; 0: every read goes to PostgreSQL,
#                      which measures what a cache miss costs)
#   --quick            harness check: 5000 accounts, 2 s per workload, W4 with 100 subscribers
# Needs PostgreSQL on 127.0.0.1:5432 (trust; the script creates and drops a database
# portrait_cluster_<pid>), NATS on PORTRAIT_BENCH_NATS_URL (default nats://127.0.0.1:4222; the
# nodes use a subject of their own), wrk, curl, psql, ss; root (or the postgres user) to read the
# PostgreSQL processes' /proc/<pid>/io. PORTRAIT_BENCH_BIN=DIR runs the binaries in DIR (default:
# target/release, brought up to date here with cargo build --release).
#
# CPU is read from /proc/<pid>/stat (utime + stime) right before the wrks start and right after
# the last one ends: the nodes (sum), PostgreSQL (the postmaster's children that serve this
# database, plus its background processes: WAL writer, checkpointer, …; other databases'
# backends are left out, since other work may share the server), nats-server (the process
# listening on the NATS port; others may use it too) and wrk (its own CPU, from `times`). W4 runs
# `portrait-bench push` against node 1 twice, with 1 and with 1 + K fan-out writes, and divides
# the difference (less the idle rate over the extra seconds) by K × S delivered events.
set -euo pipefail
# Bounded: the whole run ends after 10 minutes whatever hangs (the EXIT trap below cleans up).
if [ -z "${PORTRAIT_CLUSTER_TIMED:-}" ]; then PORTRAIT_CLUSTER_TIMED=1 exec timeout 600 bash "$0" "$@"; fi
cd "$(dirname "$0")/.."
BENCH_DIR="$(pwd)/bench"; export BENCH_DIR

NODES=1; ACCOUNTS=100000; DURATION=10; CONNS=64; SUBSCRIBERS=2000; FANOUT_WRITES=40; QUICK=0
IDLE_SECS=5; CACHE_ENTRIES=1200000; LOAD_NODES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES="$2"; shift 2 ;;
    --accounts) ACCOUNTS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    --subscribers) SUBSCRIBERS="$2"; shift 2 ;;
    --cache-entries) CACHE_ENTRIES="$2"; shift 2 ;;
    --load-nodes) LOAD_NODES="$2"; shift 2 ;;
    --fanout-writes) FANOUT_WRITES="$2"; shift 2 ;;
    --quick) QUICK=1; ACCOUNTS=5000; DURATION=2; SUBSCRIBERS=100; FANOUT_WRITES=5; IDLE_SECS=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
LOAD_NODES="${LOAD_NODES:-$NODES}"
if [ "$NODES" -lt 1 ] || [ "$LOAD_NODES" -lt 1 ] || [ "$LOAD_NODES" -gt "$NODES" ] || [ "$CONNS" -lt "$LOAD_NODES" ]; then
  echo "error: need 1 ≤ load nodes ≤ nodes, load nodes ≤ connections" >&2; exit 2
fi
for tool in wrk curl psql ss; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
NATS_URL="${PORTRAIT_BENCH_NATS_URL:-nats://127.0.0.1:4222}"
NATS_PORT="${NATS_URL##*:}"
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
bench_bin
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d)"; PIDS=()
DB="portrait_cluster_$$"; SUBJECT="portrait-cluster.$$"
ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
DB_URL="postgres://postgres@127.0.0.1:5432/$DB"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  psql -q -X "$ADMIN_URL" -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'echo "cluster.sh: stopped" >&2; exit 130' INT TERM

create_db "$ADMIN_URL" "$DB"
POSTMASTER=$(postmaster_of "$ADMIN_URL")
NATS_PID=$(listener_of "$NATS_PORT")
[ -n "$NATS_PID" ] || { echo "error: nothing listens on the NATS port $NATS_PORT" >&2; exit 1; }
# node_config I: the same app and settings as bench/run.sh, on the shared database.
node_config() { node_toml "$WORK/node$1" "url = \"$DB_URL\"
cache_entries = $CACHE_ENTRIES"; }

BASES=(); NODE_PIDS=()
for i in $(seq 1 "$NODES"); do
  node_config "$i" > "$WORK/node$i.toml"
  PORTRAIT_PUSH__NATS_URL="$NATS_URL" PORTRAIT_PUSH__NATS_SUBJECT="$SUBJECT" \
    "$BIN/portrait" serve --config "$WORK/node$i.toml" >"$WORK/node$i.log" 2>&1 & PIDS+=($!); NODE_PIDS+=($!)
  # Node 1 runs the migrations; the others start once it listens.
  BASES+=("$(wait_line "$WORK/node$i.log" "portrait: listening on ")")
done

SIG=$("$BIN/portrait" usersig --sdkappid $APP --key $KEY --user $ADMIN --expire 86400)
Q="sdkappid=$APP&identifier=$ADMIN&usersig=$SIG&random=1&contenttype=json"
GET_PATH="/v4/profile/portrait_get?$Q"; SET_PATH="/v4/profile/portrait_set?$Q"

LOAD_OUT=$(timeout 300 "$BIN/portrait-bench" load --base "${BASES[0]}" --sdkappid $APP --key $KEY --accounts "$ACCOUNTS" --concurrency 4 --fields 5)
LOAD_SECS=$(echo "$LOAD_OUT" | sed -n 's/.* in \([0-9.]*\) s/\1/p')

# Each node answers each workload's request shape with ErrorCode 0 (wrk only sees HTTP 200).
check() { out=$(curl -s -m 5 "$1/v4/profile/$2?$Q" -d "$3"); echo "$out" | grep -q '"ErrorCode":0' || { echo "sanity check failed for $2 on $1: $out" >&2; exit 1; }; }
for b in "${BASES[@]}"; do
  check "$b" portrait_get '{"To_Account":["u1"],"TagList":["Tag_Profile_IM_Nick","Tag_Profile_IM_Image","Tag_Profile_IM_Gender","Tag_Profile_IM_Level"]}'
  check "$b" portrait_set '{"From_Account":"u1","ProfileItem":[{"Tag":"Tag_Profile_IM_Nick","Value":"n"},{"Tag":"Tag_Profile_IM_Level","Value":1},{"Tag":"Tag_Profile_Custom_Hobby","Value":"h"}]}'
done

# Connections and wrk threads per node: the same totals as bench/run.sh (-t2 -c64) split evenly.
THREADS=$(( LOAD_NODES >= 2 ? 1 : 2 ))
conns_of() { echo $(( CONNS / LOAD_NODES + ( $1 <= CONNS % LOAD_NODES ? 1 : 0 ) )); }

# Every node reads every account once, all nodes at the same time (not measured).
# wait_all: waits for the load processes started since the last call (WAITS).
WAITS=()
wait_all() { for j in "${WAITS[@]}"; do wait "$j"; done; WAITS=(); }
for i in $(seq 1 "$NODES"); do
  PATH_Q="$GET_PATH" N="$ACCOUNTS" WRK_THREADS=1 timeout 120 wrk -t1 -c4 -d"$(( ACCOUNTS * NODES / 100000 + 3 ))s" \
    -s "$BENCH_DIR/w0_warm.lua" "${BASES[$((i - 1))]}" >/dev/null & WAITS+=($!)
done
wait_all

# --- measuring -------------------------------------------------------------------------------
wbytes_of() { awk '/^write_bytes/ { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }
# snap FILE: "component pid ticks write_bytes" for every process measured.
snap() {
  {
    for p in "${NODE_PIDS[@]}"; do echo "node $p $(ticks_of "$p") 0"; done
    for p in $(pg_pids "$POSTMASTER" "$DB"); do echo "pg $p $(ticks_of "$p") $(wbytes_of "$p")"; done
    echo "nats $NATS_PID $(ticks_of "$NATS_PID") 0"
  } > "$1"
}
# delta START END COMPONENT COLUMN: what COMPONENT's processes used between the snapshots
# (COLUMN 3 = CPU ticks, 4 = bytes written); a process born between them counts from 0, one that
# ended between them is lost (PostgreSQL's backends of this run live as long as the nodes' pools).
delta() { awk -v c="$3" -v k="$4" 'NR == FNR { if ($1 == c) s[$2] = $k; next } $1 == c { d += $k - ($2 in s ? s[$2] : 0) } END { print d + 0 }' "$1" "$2"; }
sql() { psql -X -A -t "$DB_URL" -c "$1"; }
xacts() { sql "select xact_commit from pg_stat_database where datname = current_database()"; }
wal_lsn() { sql "select pg_current_wal_lsn()"; }
wal_diff() { sql "select pg_wal_lsn_diff('$2', '$1')::bigint"; }
# /proc/stat's first line: steal, all ticks, busy ticks (neither idle nor iowait), for the whole machine.
steal_ticks() { awk 'NR == 1 { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
now() { date +%s.%N; }
# metric NAME: the counter summed over the nodes.
metric() { for b in "${BASES[@]}"; do curl -s -m 5 "$b/metrics"; done | awk -v m="$1" '$1 == m { s += $2 } END { printf "%.0f", s + 0 }'; }
# times_children FILE: CPU seconds of a subshell's children, from its `times` output.
times_children() { sed -n 2p "$1" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } print t }'; }

# Idle: what the cluster costs with no load (heartbeats, membership renewals, polls), per second.
snap "$WORK/idle0"; T0=$(now); sleep "$IDLE_SECS"; snap "$WORK/idle1"; T1=$(now)
IDLE_WALL=$(calc %.3f "$T1 - $T0")
idle_rate() { calc %.2f "$(delta "$WORK/idle0" "$WORK/idle1" "$1" 3) * 10 / $IDLE_WALL"; } # ms CPU per s
IDLE_NODE=$(idle_rate node); IDLE_PG=$(idle_rate pg); IDLE_NATS=$(idle_rate nats)

ROWS=""; RESULTS=""
# workload NAME SCRIPT PATH: one wrk per node at once; sums and per-request costs.
workload() {
  local name=$1 script=$2 path=$3 i load x0 x1 l0 l1 t0 t1 s0 s1 hits0 hits1 miss0 miss1 vc0 vc1
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  x0=$(xacts); l0=$(wal_lsn); s0=$(steal_ticks)
  hits0=$(metric portrait_cache_hits_total); miss0=$(metric portrait_cache_misses_total); vc0=$(metric portrait_cache_version_checks_total)
  snap "$WORK/$name.0"; t0=$(now)
  for i in $(seq 1 "$LOAD_NODES"); do
    ( PATH_Q="$path" N="$ACCOUNTS" timeout $(( DURATION + 60 )) wrk -t"$THREADS" -c"$(conns_of "$i")" -d"${DURATION}s" --latency \
        -s "$BENCH_DIR/$script" "${BASES[$((i - 1))]}" > "$WORK/$name.wrk$i"; times > "$WORK/$name.times$i" ) & WAITS+=($!)
  done
  wait_all
  t1=$(now); snap "$WORK/$name.1"
  x1=$(xacts); l1=$(wal_lsn); s1=$(steal_ticks)
  hits1=$(metric portrait_cache_hits_total); miss1=$(metric portrait_cache_misses_total); vc1=$(metric portrait_cache_version_checks_total)
  local rps=0 reqs=0 p99=0 errs=0 per_node="" wrk_s=0 r
  for i in $(seq 1 "$LOAD_NODES"); do
    r=$(grep '^RESULT' "$WORK/$name.wrk$i") || { echo "wrk failed on node $i: $(cat "$WORK/$name.wrk$i")" >&2; exit 1; }
    rps=$(calc %.1f "$rps + $(field "$r" rps)"); reqs=$(( reqs + $(field "$r" requests) ))
    p99=$(calc %.3f "($(field "$r" p99_ms) > $p99) ? $(field "$r" p99_ms) : $p99")
    errs=$(( errs + $(field "$r" errors) ))
    per_node="$per_node${per_node:+ + }$(calc %.0f "$(field "$r" rps)")"
    wrk_s=$(calc %.3f "$wrk_s + $(times_children "$WORK/$name.times$i")")
  done
  [ "$errs" = 0 ] || echo "warning: $name: wrk reported $errs errors" >&2
  local wall node_t pg_t nats_t us_node us_pg us_nats us_wrk busy commits wal pgw steal
  wall=$(calc %.3f "$t1 - $t0")
  node_t=$(delta "$WORK/$name.0" "$WORK/$name.1" node 3); pg_t=$(delta "$WORK/$name.0" "$WORK/$name.1" pg 3)
  nats_t=$(delta "$WORK/$name.0" "$WORK/$name.1" nats 3)
  us_node=$(calc %.1f "$node_t * 10000 / $reqs"); us_pg=$(calc %.1f "$pg_t * 10000 / $reqs")
  us_nats=$(calc %.1f "$nats_t * 10000 / $reqs"); us_wrk=$(calc %.1f "$wrk_s * 1e6 / $reqs")
  busy=$(calc %.2f "(($node_t + $pg_t + $nats_t) / 100 + $wrk_s) / $wall")
  commits=$(calc %.3f "($x1 - $x0) / $reqs"); wal=$(calc %.0f "$(wal_diff "$l0" "$l1") / $reqs")
  pgw=$(calc %.0f "$(delta "$WORK/$name.0" "$WORK/$name.1" pg 4) / $reqs")
  steal=$(echo "$s0 $s1" | awk '{ t = $5 - $2; if (t > 0) printf "%.1f", 100 * ($4 - $1) / t; else print "n/a" }')
  machine=$(echo "$s0 $s1" | awk -v n="$(nproc)" '{ t = $5 - $2; if (t > 0) printf "%.2f", n * ($6 - $3) / t; else print "n/a" }')
  local unit="req/s"; [ "$name" = w3 ] && unit="sets/s"
  local extra="hits $(( hits1 - hits0 )), misses $(( miss1 - miss0 )), version checks $(( vc1 - vc0 ))"
  ROWS="$ROWS| $name | $(calc %.0f "$rps") $unit ($per_node), p99 ≤ $p99 ms | $us_node | $us_pg | $us_nats | $us_wrk | $(calc %.1f "$us_node + $us_pg + $us_nats + $us_wrk") | $busy of $machine | $commits | $wal | $pgw | $extra | $load; steal $steal% |
"
  RESULTS="${RESULTS}RESULT cluster nodes=$NODES loaded=$LOAD_NODES cache=$CACHE_ENTRIES workload=$name rps=$rps requests=$reqs p99_ms=$p99 errors=$errs node_us=$us_node pg_us=$us_pg nats_us=$us_nats wrk_us=$us_wrk cores_busy=$busy machine_busy=$machine pg_xacts_per_req=$commits wal_bytes_per_req=$wal pg_write_bytes_per_req=$pgw cache_hits=$(( hits1 - hits0 )) cache_misses=$(( miss1 - miss0 )) version_checks=$(( vc1 - vc0 )) loadavg=${load// /,} steal_pct=$steal
"
}

workload w1 w1_get_one.lua "$GET_PATH"
workload w2 w2_get_batch.lua "$GET_PATH"
workload w3 w3_set.lua "$SET_PATH"

# W4: fan-out on node 1 (subscribers and writer there; the other nodes' feeds are woken over
# NATS and read each change from the log, with no subscribers of their own).
W4_TEXT=""
if [ "$SUBSCRIBERS" -gt 0 ]; then
  push_run() { # push_run WRITES TAG: false if the run failed (its error in w4TAG.err)
    local t0 t1
    snap "$WORK/w4$2.0"; t0=$(now)
    # 50 handshakes at a time: under load, a handshake that waits past the server's request
    # deadline is answered 200 with an envelope instead of 101, and the run fails.
    ( rc=0; timeout 300 "$BIN/portrait-bench" push --base "${BASES[0]}" --sdkappid $APP --key $KEY --admin $ADMIN \
        --subscribers "$SUBSCRIBERS" --samples 0 --writes "$1" --spacing-ms 100 --concurrency 50 --read-buffer 4096 \
        > "$WORK/w4$2.out" 2> "$WORK/w4$2.err" || rc=$?; times > "$WORK/w4$2.times"; exit "$rc" ) || return 1
    t1=$(now); snap "$WORK/w4$2.1"
    calc %.3f "$t1 - $t0" > "$WORK/w4$2.wall"
  }
  W4_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  E0=$(metric portrait_push_events_sent_total)
  if ! push_run 1 a || ! { E1=$(metric portrait_push_events_sent_total); push_run $(( FANOUT_WRITES + 1 )) b; }; then
    W4_ERR=$(grep -h -m1 -A3 -i 'error' "$WORK"/w4?.err | tr '\n' ' ' || true)
    echo "warning: W4 failed: $W4_ERR" >&2
    W4_TEXT="
W4 fan-out failed (no figures): $W4_ERR
"
    SUBSCRIBERS=0
  fi
fi
if [ "$SUBSCRIBERS" -gt 0 ]; then
  E2=$(metric portrait_push_events_sent_total); EV_SENT=$(( E2 - E1 - (E1 - E0) ))
  EVENTS=$(( FANOUT_WRITES * SUBSCRIBERS ))
  EXTRA_S=$(calc %.3f "$(cat "$WORK/w4b.wall") - $(cat "$WORK/w4a.wall")")
  # per_unit COMPONENT IDLE_MS_PER_S UNITS: µs per unit, the idle rate over the extra seconds
  # removed. Only the nodes' cost grows with the events; PostgreSQL's and NATS's grow with the
  # writes (each node's feed reads each change once, whatever its subscribers), which W3 measures
  # far better than these few writes can.
  per_unit() {
    local a b
    a=$(delta "$WORK/w4a.0" "$WORK/w4a.1" "$1" 3); b=$(delta "$WORK/w4b.0" "$WORK/w4b.1" "$1" 3)
    calc %.2f "(($b - $a) * 10000 - $2 * 1000 * $EXTRA_S) / $3"
  }
  EV_NODE=$(per_unit node "$IDLE_NODE" "$EVENTS")
  EV_BENCH=$(calc %.2f "($(times_children "$WORK/w4b.times") - $(times_children "$WORK/w4a.times")) * 1e6 / $EVENTS")
  W4F=$(grep '^RESULT w4_fanout' "$WORK/w4b.out")
  W4_TEXT="
W4 fan-out (\`portrait-bench push --subscribers $SUBSCRIBERS --samples 0 --writes 1\`, then \`--writes $(( FANOUT_WRITES + 1 ))\`, 100 ms apart, both against node 1; load average before: $W4_LOAD): $FANOUT_WRITES more writes × $SUBSCRIBERS subscribers = $EVENTS more events took $EXTRA_S s longer and cost (the idle rate over those seconds removed) per delivered event: nodes $EV_NODE µs, the subscribers' client (portrait-bench) $EV_BENCH µs. Events sent by the nodes (\`portrait_push_events_sent_total\`): $EV_SENT more in the second run. All $SUBSCRIBERS delivered $(field "$W4F" all_max_ms) ms after the ack at worst (median $(field "$W4F" all_p50_ms) ms).
"
  RESULTS="${RESULTS}RESULT cluster nodes=$NODES loaded=$LOAD_NODES cache=$CACHE_ENTRIES workload=w4 subscribers=$SUBSCRIBERS events=$EVENTS node_us_per_event=$EV_NODE client_us_per_event=$EV_BENCH events_sent=$EV_SENT all_max_ms=$(field "$W4F" all_max_ms) all_p50_ms=$(field "$W4F" all_p50_ms) loadavg=${W4_LOAD// /,}
"
fi

cat <<TABLE

## Portrait cluster benchmark — $NODES node(s), $(date -u +%Y-%m-%dT%H:%MZ)$( [ $QUICK = 1 ] && echo " (quick mode: harness check, figures not meaningful)")

Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'). $NODES \`portrait serve\` node(s) on one PostgreSQL $(psql -X -A -t "$ADMIN_URL" -c 'show server_version' | cut -d' ' -f1) database and NATS (\`$NATS_URL\`, subject \`$SUBJECT\`), all on this machine; read cache $CACHE_ENTRIES entries per node. $ACCOUNTS accounts × 5 fields loaded through node 1 in $LOAD_SECS s, then read once by every node (warm caches).
Load: one \`wrk -t$THREADS -c<C/$LOAD_NODES> -d${DURATION}s\` per node at the same time$( [ "$LOAD_NODES" != "$NODES" ] && echo " on nodes 1 to $LOAD_NODES only (the others idle)"), $CONNS connections in all; throughput is the sum (per node in brackets), p99 the worst node's.
Idle cluster (no load, ${IDLE_SECS} s): nodes $IDLE_NODE, PostgreSQL $IDLE_PG, NATS $IDLE_NATS ms of CPU per second.

| workload | throughput | CPU µs/req: nodes | PostgreSQL | NATS | wrk | all | cores busy: these processes of the machine | PG xacts/req | WAL B/req | PG disk writes B/req | read cache (all nodes) | load average (1, 5, 15 min) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
$ROWS$W4_TEXT
$RESULTS
TABLE
