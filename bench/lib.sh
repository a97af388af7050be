# shellcheck shell=bash
# Shared by bench/run.sh, ab.sh, interleaved.sh, cluster.sh and shards.sh (sourced): the
# benchmark app and a node's configuration, waiting for a line a process prints, reading wrk's
# RESULT lines, and the processes and CPU time that the cluster benchmarks measure.

APP=1400000001; KEY=bench-secret-key; ADMIN=administrator

# node_toml DATA_DIR STORE_LINES: a node's configuration (listening on a free port, the benchmark
# app without rate limits, one custom field), with STORE_LINES (newline-separated) under [store].
node_toml() {
  cat <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$1"
[store]
$2
[log]
filter = "warn"
[[apps]]
sdkappid = $APP
key = "$KEY"
admins = ["$ADMIN"]
rate_limits = { enabled = false }
client_rate_limits = { user_reads = 0, user_writes = 0, app_reads = 0, app_writes = 0 }
[[apps.custom_fields]]
name = "Tag_Profile_Custom_Hobby"
type = "string"
max_length = 100
TOML
}

# bench_bin: sets BIN to the directory of the `portrait` and `portrait-bench` binaries to run:
# PORTRAIT_BENCH_BIN if set (an A/B of two builds, or CI's own build), else target/release after
# `cargo build --release` (a no-op when they are up to date). Stops if either is missing.
bench_bin() {
  if [ -n "${PORTRAIT_BENCH_BIN:-}" ]; then
    BIN="$PORTRAIT_BENCH_BIN"
  else
    cargo build --release --locked -q -p portrait -p portrait-bench
    BIN=target/release
  fi
  [ -x "$BIN/portrait" ] && [ -x "$BIN/portrait-bench" ] || { echo "error: no portrait and portrait-bench in $BIN" >&2; exit 1; }
}

# wait_line FILE PREFIX: prints the rest of the first line of FILE starting with PREFIX.
wait_line() { for _ in $(seq 1 600); do l=$(grep -m1 "^$2" "$1" 2>/dev/null || true); [ -n "$l" ] && { echo "${l#"$2"}"; return; }; sleep 0.1; done; echo "timeout waiting for $2 in $1" >&2; exit 1; }

# field RESULT NAME: a value of a wrk `RESULT name=value …` line.
field() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }

# calc FORMAT EXPR: EXPR computed by awk, printed with FORMAT.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# pg_pids POSTMASTER [DB]: the postmaster and its children; with DB, only the backends of DB
# (client backends of other databases are left out) and the background processes.
pg_pids() {
  local p cmd
  echo "$1"
  for p in $(pgrep -P "$1"); do
    if [ -z "${2:-}" ]; then echo "$p"; continue; fi
    cmd=$(tr "\\0" " " 2>/dev/null < "/proc/$p/cmdline" || true)
    case "$cmd" in
      *" $2 "*) echo "$p" ;;
      *"("*|*"[local]"*) ;;
      ?*) echo "$p" ;;
    esac
  done
}

# create_db ADMIN_URL DB: creates the scratch database DB on the server of ADMIN_URL, or stops.
create_db() {
  psql -q -X "$1" -c "create database $2" >/dev/null \
    || { echo "error: cannot create database $2 on ${1#*@} (is PostgreSQL running?)" >&2; exit 1; }
}

# postmaster_of ADMIN_URL: the server's postmaster (the first line of postmaster.pid in its data
# directory).
postmaster_of() { head -1 "$(psql -X -A -t "$1" -c 'show data_directory')/postmaster.pid"; }

# listener_of PORT: the process listening on TCP port PORT here (empty if none).
listener_of() { ss -Hltnp "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }

# per_request_us TICKS RATE SECS: CPU µs per request, for TICKS clock ticks over SECS s at RATE/s.
per_request_us() { calc %.1f "$1 * 1e6 / $(getconf CLK_TCK) / ($2 * $3)"; }

# measured RESULT: stops with an error unless the wrk RESULT line counted some requests.
measured() { awk -v r="$(field "$1" rps)" 'BEGIN { exit !(r > 0) }' || { echo "error: wrk measured no requests: $1" >&2; exit 1; }; }

# ticks_of PID: the process's CPU time so far (utime + stime, in clock ticks; 0 once it is gone).
ticks_of() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
