#!/usr/bin/env bash
# The services the tests need, started only when nothing answers: PostgreSQL on 127.0.0.1:5432
# (trust auth for local TCP, database `test`), NATS with JetStream on 127.0.0.1:4222 and Redis on
# 127.0.0.1:6379 (the cluster-wide limits; the tests also start private `redis-server`s). Sourced
# by `scripts/test.sh` and `.ci/run`; run on its own (`bash scripts/services.sh`) it ensures all
# three and prints one status line. Where a service is missing it is installed from Debian's
# packages (needs root and apt-get); where all already run, nothing changes.

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if need apt-get; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: $* missing and apt-get unavailable" >&2; exit 1
  fi
}

PG_PORT=5432
NATS_PORT=4222
REDIS_PORT=6379
export PATH="$PATH:/usr/sbin:/sbin"

as_postgres() {
  if need runuser; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
}
pg_ready() { need pg_isready && pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_sql() { PGCONNECT_TIMEOUT=5 psql -w -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$1"; }

ensure_postgres() {
  if ! pg_ready; then
    echo "== PostgreSQL: nothing answers on 127.0.0.1:$PG_PORT, starting it"
    need pg_ctlcluster || apt_install postgresql
    local ver="" name="" rest
    read -r ver name rest < <(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p') || true
    if [ -z "$ver" ]; then
      ver="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
      name=main
      [ -d "/etc/postgresql/$ver/main" ] && name=portrait
      pg_createcluster -p "$PG_PORT" "$ver" "$name" >/dev/null
    fi
    pg_ctlcluster "$ver" "$name" start 2>/dev/null || service postgresql start >/dev/null 2>&1 || true
    for _ in $(seq 60); do pg_ready && break; sleep 0.5; done
    pg_ready || { echo "error: PostgreSQL $ver/$name did not start; see /var/log/postgresql/" >&2; exit 1; }
  fi
  if ! pg_sql 'select 1' >/dev/null 2>&1; then
    echo "== PostgreSQL: allowing trust authentication for local TCP connections"
    local hba
    hba="$(as_postgres psql -X -A -t -p "$PG_PORT" -c 'show hba_file')" \
      || { echo "error: cannot reach PostgreSQL as the postgres OS user to allow trust auth" >&2; exit 1; }
    sed -i '1i # added by Portrait .ci/run: the tests connect as postgres without a password\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_postgres psql -X -q -p "$PG_PORT" -c 'select pg_reload_conf()' >/dev/null
    pg_sql 'select 1' >/dev/null || { echo "error: PostgreSQL still refuses postgres@127.0.0.1 without a password" >&2; exit 1; }
  fi
  if [ "$(pg_sql "select 1 from pg_database where datname = 'test'")" != 1 ]; then
    echo "== PostgreSQL: creating database test"
    pg_sql 'create database test' >/dev/null
  fi
}

nats_ready() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT" 2>/dev/null; }

ensure_nats() {
  nats_ready && return 0
  echo "== NATS: nothing listens on 127.0.0.1:$NATS_PORT, starting nats-server with JetStream"
  need nats-server || apt_install nats-server
  local dir="${TMPDIR:-/tmp}/portrait-ci-nats-$NATS_PORT"
  mkdir -p "$dir"
  # Detached from this script's output, so that a CI runner reading it is not kept waiting.
  nohup nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$dir/jetstream" \
    </dev/null >"$dir/nats-server.log" 2>&1 &
  for _ in $(seq 30); do nats_ready && break; sleep 0.5; done
  nats_ready || { echo "error: nats-server did not start; see $dir/nats-server.log" >&2; exit 1; }
}

redis_ready() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && head -c 5 <&3" 2>/dev/null \
    | grep -q '+PONG'
}

ensure_redis() {
  # The tests start private servers too, so the binary must be there even when Redis answers.
  need redis-server || apt_install redis-server
  redis_ready && return 0
  echo "== Redis: nothing answers on 127.0.0.1:$REDIS_PORT, starting redis-server"
  local dir="${TMPDIR:-/tmp}/portrait-ci-redis-$REDIS_PORT"
  mkdir -p "$dir"
  # No persistence: it holds only counters that expire within seconds.
  nohup redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$dir" \
    </dev/null >"$dir/redis-server.log" 2>&1 &
  for _ in $(seq 30); do redis_ready && break; sleep 0.5; done
  redis_ready || { echo "error: redis-server did not start; see $dir/redis-server.log" >&2; exit 1; }
}

ensure_services() {
  ensure_postgres
  ensure_nats
  ensure_redis
  echo "== services: PostgreSQL 127.0.0.1:$PG_PORT (database test), NATS 127.0.0.1:$NATS_PORT, Redis 127.0.0.1:$REDIS_PORT"
}

# Run directly rather than sourced: ensure all three now.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_services
fi
