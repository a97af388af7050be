#!/usr/bin/env bash
# Shards benchmark: W3 (portrait_set of 3 tags on random accounts, durable) on two apps at once,
# with both apps on the home PostgreSQL cluster (configuration A) and with the apps on two clusters
# (configuration B), alternated A B A B … in one run, on one node. The issue's target: B is not
# lower than A on one machine (its cores are shared, so B cannot gain much here; docs/scaling.md
# gives the gain on separate machines).
# Usage: bench/shards.sh [--accounts N] [--duration S] [--connections C] [--rounds R] [--quick]
#   --accounts N     accounts loaded into each app (default 100000)
#   --duration S     seconds per measured run (default 10)
#   --connections C  wrk connections in all, half per app (default 64, as bench/run.sh)
#   --rounds R       A B pairs (default 2: A B A B; a shared VM's speed drifts, so the table
#                    gives each run and the medians)
#   --quick          harness check: 2000 accounts, 2 s per run, 2 rounds
# What it starts: a second PostgreSQL 15 cluster (initdb + pg_ctl, binaries in PG_BIN, default
# /usr/lib/postgresql/15/bin) on a free port in a temp dir, with the home cluster's settings that
# matter for writes (fsync, synchronous_commit, shared_buffers, WAL, …) copied, so that both do the
# same durable work (as root, PostgreSQL runs as the `postgres` OS user); a scratch database on
# the running 127.0.0.1:5432 (the home shard; trust, superuser postgres) and one on the new
# cluster (shard `b`); one `portrait serve` node with `[store] shards = { b = … }`, NATS at
# PORTRAIT_BENCH_NATS_URL (default nats://127.0.0.1:4222, a subject of its own; set it empty for
# none) and three apps from the config file: X and Y on the home shard, Z on shard `b`. A runs X
# and Y, B runs X and Z: the same node, accounts and settings, only the second app's shard
# differs. All of it is stopped and removed on exit; the whole run is bounded by
# PORTRAIT_SHARDS_TIMEOUT seconds (default 1200).
# Each run: one `wrk -t1 -c<C/2>` per app at the same time (bench/w3_set.lua); sets/s is the
# sum, p99 the worse app's. CPU per set, from /proc/<pid>/stat before and after: the node, the
# home cluster (its postmaster, background processes and the backends of this run's database;
# other databases' backends are left out, since other work shares it) and shard b (every process
# of it). PORTRAIT_BENCH_BIN=DIR runs the binaries in DIR (default: target/release, brought up to
# date here with cargo build --release). Needs wrk, curl, psql, ss.
set -euo pipefail
if [ -z "${PORTRAIT_SHARDS_TIMED:-}" ]; then
  PORTRAIT_SHARDS_TIMED=1 exec timeout -k 20 "${PORTRAIT_SHARDS_TIMEOUT:-1200}" bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
BENCH_DIR="$(pwd)/bench"; export BENCH_DIR

ACCOUNTS=100000; DURATION=10; CONNS=64; ROUNDS=2; QUICK=0; WARM_SECS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --accounts) ACCOUNTS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --quick) QUICK=1; ACCOUNTS=2000; DURATION=2; ROUNDS=2; WARM_SECS=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$CONNS" -lt 2 ] || [ "$ROUNDS" -lt 1 ] || [ "$ACCOUNTS" -lt 1 ]; then
  echo "error: need --connections ≥ 2, --rounds ≥ 1, --accounts ≥ 1" >&2; exit 2
fi
for tool in wrk curl psql ss; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
for b in initdb pg_ctl postgres; do
  [ -x "$PG_BIN/$b" ] || { echo "error: no $PG_BIN/$b (Debian package postgresql-15)" >&2; exit 1; }
done
NATS_URL="${PORTRAIT_BENCH_NATS_URL-nats://127.0.0.1:4222}"
if [ -n "$NATS_URL" ] && ! ss -Hltn "sport = :${NATS_URL##*:}" | grep -q .; then
  echo "error: nothing listens on the NATS port of $NATS_URL (PORTRAIT_BENCH_NATS_URL= runs without NATS)" >&2; exit 1
fi
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"
bench_bin
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true


WORK="$(mktemp -d)"; PGDIR="$(mktemp -d)"; PIDS=(); PG_STARTED=0
DB="portrait_shards_$$"
HOME_ADMIN="postgres://postgres@127.0.0.1:5432/postgres"
HOME_URL="postgres://postgres@127.0.0.1:5432/$DB"
# as_pg CMD…: runs a PostgreSQL binary as the postgres OS user when we are root (PostgreSQL
# refuses to run as root), from / (which that user can read).
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi; }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$PG_STARTED" = 1 ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -w -t 20 -m immediate stop >/dev/null 2>&1 || true
    # Whatever is left of it (pg_ctl starts the postmaster in a session of its own).
    pm=$(head -1 "$PGDIR/data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pm" ]; then kill -KILL -- "-$pm" 2>/dev/null || true; fi
  fi
  rm -rf "$WORK" "$PGDIR"
  psql -q -X "$HOME_ADMIN" -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'echo "shards.sh: stopped" >&2; exit 130' INT TERM

# --- the two PostgreSQL clusters ---------------------------------------------------------------
create_db "$HOME_ADMIN" "$DB"
HOME_POSTMASTER=$(postmaster_of "$HOME_ADMIN")
HOME_VERSION=$(psql -X -A -t "$HOME_ADMIN" -c 'show server_version' | cut -d' ' -f1)

if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDIR"; fi
chmod 700 "$PGDIR"
as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust --no-sync --no-instructions >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log" >&2; echo "error: initdb failed" >&2; exit 1; }
# The home cluster's settings that shape a durable write, so that both shards do the same work.
COPIED=$(psql -X -A -t -F' ' "$HOME_ADMIN" -c "select name, setting from pg_settings where name in
  ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'wal_buffers', 'wal_compression',
   'commit_delay', 'commit_siblings', 'shared_buffers', 'max_wal_size', 'min_wal_size',
   'checkpoint_timeout', 'checkpoint_completion_target', 'wal_writer_delay', 'max_connections')
  order by name")
{
  echo "listen_addresses = '127.0.0.1'"
  echo "unix_socket_directories = '$PGDIR'"
  echo "$COPIED" | awk '{ printf "%s = '\''%s'\''\n", $1, $2 }'
} | as_pg tee -a "$PGDIR/data/postgresql.conf" >/dev/null
# A free port: one nothing listens on; if another process takes it before PostgreSQL binds it,
# pg_ctl fails and the next is tried.
PORT=""
for _ in 1 2 3 4 5; do
  p=$(( 20000 + RANDOM % 20000 ))
  ss -Hltn "sport = :$p" | grep -q . && continue
  echo "port = $p" | as_pg tee -a "$PGDIR/data/postgresql.conf" >/dev/null
  PG_STARTED=1
  if as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 start >/dev/null 2>&1; then
    PORT=$p; break
  fi
done
[ -n "$PORT" ] || { tail -20 "$PGDIR/server.log" >&2; echo "error: the second PostgreSQL cluster did not start" >&2; exit 1; }
B_ADMIN="postgres://postgres@127.0.0.1:$PORT/postgres"
B_URL="postgres://postgres@127.0.0.1:$PORT/$DB"
psql -q -X "$B_ADMIN" -c "create database $DB" >/dev/null
B_POSTMASTER=$(head -1 "$PGDIR/data/postmaster.pid")

# --- the node and its apps -----------------------------------------------------------------------
APP_X=1400000101; APP_Y=1400000102; APP_Z=1400000103
TOKEN="shards-bench-$$-$RANDOM$RANDOM"
# app_toml SDKAPPID [SHARD]: the benchmark app of bench/lib.sh (no rate limits, one custom field)
# with its own SDKAppID, on SHARD (default: home).
app_toml() {
  local shard=""
  [ -n "${2:-}" ] && shard="shard = \"$2\""
  cat <<TOML
[[apps]]
sdkappid = $1
key = "$KEY"
admins = ["$ADMIN"]
rate_limits = { enabled = false }
client_rate_limits = { user_reads = 0, user_writes = 0, app_reads = 0, app_writes = 0 }
$shard
[[apps.custom_fields]]
name = "Tag_Profile_Custom_Hobby"
type = "string"
max_length = 100
TOML
}
{
  cat <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$WORK/node"
[store]
url = "$HOME_URL"
shards = { b = "$B_URL" }
cache_entries = 1200000
[log]
filter = "warn"
[operator]
token = "$TOKEN"
TOML
  app_toml $APP_X; app_toml $APP_Y; app_toml $APP_Z b
} > "$WORK/node.toml"
PORTRAIT_PUSH__NATS_URL="$NATS_URL" PORTRAIT_PUSH__NATS_SUBJECT="portrait-shards.$$" \
  "$BIN/portrait" serve --config "$WORK/node.toml" >"$WORK/node.log" 2>&1 & PIDS+=($!); NODE_PID=$!
BASE=$(wait_line "$WORK/node.log" "portrait: listening on ")

# Every app has the same key, and a UserSig names its app: one per app.
for a in $APP_X $APP_Y $APP_Z; do
  s=$("$BIN/portrait" usersig --sdkappid "$a" --key "$KEY" --user "$ADMIN" --expire 86400)
  eval "SIG_$a=\$s"
done
set_path() { local s; eval "s=\$SIG_$1"; echo "/v4/profile/portrait_set?sdkappid=$1&identifier=$ADMIN&usersig=$s&random=1&contenttype=json"; }

LOAD_T0=$(date +%s.%N)
for a in $APP_X $APP_Y $APP_Z; do
  timeout 600 "$BIN/portrait-bench" load --base "$BASE" --sdkappid "$a" --key "$KEY" --accounts "$ACCOUNTS" \
    --concurrency 4 --fields 5 >"$WORK/load$a.log" 2>&1 \
    || { cat "$WORK/load$a.log" >&2; echo "error: loading app $a failed" >&2; exit 1; }
done
LOAD_SECS=$(awk -v t0="$LOAD_T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }')

# Each app answers W3's request shape with ErrorCode 0, and its data is where it should be: the
# accounts of X and Y only on the home cluster, Z's only on shard b.
for a in $APP_X $APP_Y $APP_Z; do
  out=$(curl -s -m 5 "$BASE$(set_path "$a")" -d '{"From_Account":"u1","ProfileItem":[{"Tag":"Tag_Profile_IM_Nick","Value":"n"},{"Tag":"Tag_Profile_IM_Level","Value":1},{"Tag":"Tag_Profile_Custom_Hobby","Value":"h"}]}')
  echo "$out" | grep -q '"ErrorCode":0' || { echo "sanity check failed for app $a: $out" >&2; exit 1; }
done
count_on() { psql -X -A -t "$1" -c "select count(*) from accounts where app_id = $2"; }
for a in $APP_X $APP_Y $APP_Z; do
  h=$(count_on "$HOME_URL" "$a"); z=$(count_on "$B_URL" "$a")
  if [ "$a" = $APP_Z ]; then want_h=0; want_b=$(( ACCOUNTS + 1 )); else want_h=$(( ACCOUNTS + 1 )); want_b=0; fi
  # + 1: the admin account, imported at start.
  if [ "$h" != "$want_h" ] || [ "$z" != "$want_b" ]; then
    echo "error: app $a has $h accounts on the home cluster and $z on shard b (want $want_h, $want_b)" >&2; exit 1
  fi
done
PLACEMENT=$(curl -s -m 5 -H "Authorization: Bearer $TOKEN" "$BASE/admin/v1/apps/$APP_Z")
echo "$PLACEMENT" | grep -q '"shard":"b"' || { echo "error: the operator API does not show app $APP_Z on shard b: $PLACEMENT" >&2; exit 1; }

# --- measuring ----------------------------------------------------------------------------------
# snap FILE: "component pid ticks" for every process measured.
snap() {
  local p
  {
    echo "node $NODE_PID $(ticks_of "$NODE_PID")"
    for p in $(pg_pids "$HOME_POSTMASTER" "$DB"); do echo "home $p $(ticks_of "$p")"; done
    for p in $(pg_pids "$B_POSTMASTER"); do echo "b $p $(ticks_of "$p")"; done
  } > "$1"
}
# delta START END COMPONENT: CPU ticks of COMPONENT's processes between the snapshots (a process
# born between them counts from 0).
delta() { awk -v c="$3" 'NR == FNR { if ($1 == c) s[$2] = $3; next } $1 == c { d += $3 - ($2 in s ? s[$2] : 0) } END { print d + 0 }' "$1" "$2"; }
steal_ticks() { awk 'NR == 1 { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

HALF=$(( CONNS / 2 ))
# w3 TAG SECS APP1 APP2: one wrk per app at once; sets "rps p99 per_app errors requests" in
# $WORK/TAG.sum and the CPU snapshots in $WORK/TAG.{0,1}.
w3() {
  local tag=$1 secs=$2 a w rps=0 reqs=0 p99=0 errs=0 per="" r waits=()
  snap "$WORK/$tag.0"
  for a in "$3" "$4"; do
    PATH_Q="$(set_path "$a")" N="$ACCOUNTS" timeout $(( secs + 60 )) wrk -t1 -c"$HALF" -d"${secs}s" --latency \
      -s "$BENCH_DIR/w3_set.lua" "$BASE" > "$WORK/$tag.$a.wrk" 2>&1 & waits+=($!)
  done
  for w in "${waits[@]}"; do wait "$w" || true; done
  snap "$WORK/$tag.1"
  for a in "$3" "$4"; do
    r=$(grep '^RESULT' "$WORK/$tag.$a.wrk") || { echo "wrk failed on app $a: $(cat "$WORK/$tag.$a.wrk")" >&2; exit 1; }
    rps=$(calc %.1f "$rps + $(field "$r" rps)"); reqs=$(( reqs + $(field "$r" requests) ))
    p99=$(calc %.3f "($(field "$r" p99_ms) > $p99) ? $(field "$r" p99_ms) : $p99")
    errs=$(( errs + $(field "$r" errors) ))
    per="$per${per:+ + }$(calc %.0f "$(field "$r" rps)")"
  done
  [ "$reqs" -gt 0 ] || { echo "error: $tag: no set was answered" >&2; exit 1; }
  [ "$errs" = 0 ] || echo "warning: $tag: wrk reported $errs errors" >&2
  echo "$rps $p99 $per $errs $reqs" > "$WORK/$tag.sum"
}

# Not measured: both configurations once, so that neither runs first on cold caches.
w3 warm-a "$WARM_SECS" $APP_X $APP_Y
w3 warm-b "$WARM_SECS" $APP_X $APP_Z

# us COMPONENT / cores COMPONENT: the current run's ($tag, $reqs, $t0, $t1) CPU µs per set, and
# the cores busy on average.
us() { calc %.1f "$(delta "$WORK/$tag.0" "$WORK/$tag.1" "$1") * 10000 / $reqs"; }
cores() { calc %.2f "$(delta "$WORK/$tag.0" "$WORK/$tag.1" "$1") / 100 / ($t1 - $t0)"; }
ROWS=""; RESULTS=""; A_RPS=(); B_RPS=(); A_P99=(); B_P99=(); PAIRS=""
for round in $(seq 1 "$ROUNDS"); do
  for cfg in A B; do
    second=$APP_Y; [ "$cfg" = B ] && second=$APP_Z
    tag="$cfg$round"
    load=$(cut -d' ' -f1-3 /proc/loadavg); s0=$(steal_ticks); t0=$(date +%s.%N)
    w3 "$tag" "$DURATION" $APP_X "$second"
    t1=$(date +%s.%N); s1=$(steal_ticks)
    read -r rps p99 per errs reqs < <(sed 's/ + /+/g' "$WORK/$tag.sum")
    per=${per//+/ + }
    steal=$(echo "$s0 $s1" | awk '{ t = $4 - $2; if (t > 0) printf "%.1f", 100 * ($3 - $1) / t; else print "n/a" }')
    where="X home, Y home"; [ "$cfg" = B ] && where="X home, Z shard b"
    ROWS="$ROWS| $round | $cfg ($where) | $(calc %.0f "$rps") ($per) | $p99 | $(us node) | $(us home) ($(cores home)) | $(us b) ($(cores b)) | $(calc %.1f "$(us home) + $(us b)") | $load; steal $steal% |
"
    RESULTS="${RESULTS}RESULT shards config=$cfg round=$round rps=$rps p99_ms=$p99 requests=$reqs errors=$errs node_us=$(us node) pg_home_us=$(us home) pg_b_us=$(us b) pg_us=$(calc %.1f "$(us home) + $(us b)") loadavg=${load// /,} steal_pct=$steal
"
    if [ "$cfg" = A ]; then A_RPS+=("$rps"); A_P99+=("$p99"); else B_RPS+=("$rps"); B_P99+=("$p99"); fi
  done
  PAIRS="$PAIRS${PAIRS:+, }$(calc %.2f "${B_RPS[$((round - 1))]} / ${A_RPS[$((round - 1))]}")"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
MA=$(median "${A_RPS[@]}"); MB=$(median "${B_RPS[@]}")
MA99=$(median "${A_P99[@]}"); MB99=$(median "${B_P99[@]}")
RATIO=$(calc %.3f "$MB / $MA")
# Lower only if every round says so; a median below 1 with rounds on both sides is this run's spread.
VERDICT="B is not lower than A"
if awk -v r="$RATIO" 'BEGIN { exit !(r < 1) }'; then
  if echo "$PAIRS" | tr ',' '\n' | awk '$1 >= 1 { up = 1 } END { exit !up }'; then
    VERDICT="B below A in the medians, but not in every round: within this run's spread"
  else
    VERDICT="B is lower than A in every round"
  fi
fi
RESULTS="${RESULTS}RESULT shards median_a_rps=$MA median_b_rps=$MB ratio_b_a=$RATIO pair_ratios=${PAIRS//, /,}
"

cat <<TABLE

## Portrait shards benchmark — W3 on two apps, one shard or two, $(date -u +%Y-%m-%dT%H:%MZ)$( [ $QUICK = 1 ] && echo " (quick mode: harness check, figures not meaningful)")

Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), shared by everything below. One \`portrait serve\` node (read cache 1,200,000 entries$( [ -n "$NATS_URL" ] && echo ", NATS \`$NATS_URL\`")) with \`[store] url\` = the running PostgreSQL $HOME_VERSION on 127.0.0.1:5432 (home, a scratch database) and \`shards = { b = … }\` = a second PostgreSQL cluster started by the script on port $PORT (same binaries; the home cluster's write settings copied: $(echo "$COPIED" | awk '$1 ~ /^(fsync|synchronous_commit|shared_buffers|full_page_writes)$/ { printf "%s%s=%s", (n++ ? ", " : ""), $1, $2 }')), both on the same disk. Three apps from the config file, each loaded with $ACCOUNTS accounts × 5 fields ($LOAD_SECS s for the three): X and Y on home, Z on b (checked in both databases and through the operator API).
Each run: W3 (\`bench/w3_set.lua\`, portrait_set of 3 tags on random accounts, durable) on two apps at once for ${DURATION} s, one \`wrk -t1 -c$HALF --latency\` per app ($CONNS connections in all); **A** = X and Y, both on the home cluster; **B** = X and Z, one app per cluster. Sets/s is the sum (per app in brackets), p99 the worse app's. CPU µs per set: the node, the home cluster (postmaster, background processes and this database's backends) and shard b (all its processes), with the cores each cluster kept busy in brackets. After ${WARM_SECS} s of each configuration, not measured.

| round | configuration | sets/s | p99 ms | CPU µs/set: node | home PostgreSQL (cores) | shard b PostgreSQL (cores) | both PostgreSQL | load average (1, 5, 15 min); CPU steal |
|---|---|---|---|---|---|---|---|---|
$ROWS
| configuration | median sets/s | median p99 ms |
|---|---|---|
| A: both apps on the home shard | $(calc %.0f "$MA") | $MA99 |
| B: apps on two shards | $(calc %.0f "$MB") | $MB99 |

B / A (medians): **$RATIO** — $VERDICT. Per round: $PAIRS.

$RESULTS
TABLE
