#!/usr/bin/env bash
# Property-based API testing of every HTTP API against its OpenAPI document (docs/openapi.json),
# with schemathesis (PyPI, pinned below) against a live Portrait node on an ephemeral port.
# Fails on any 5xx, any answer whose status, content type or body the document does not allow,
# or a checked-in document that differs from the one the server serves.
#
#   bash scripts/schemathesis.sh [SECONDS]      # time budget of the run (default 60)
#
# The node runs on a fresh data directory with one app whose rate limits are off (so generated
# calls reach the handlers instead of 60007) and a few imported accounts; schemathesis signs in
# as its admin, whose UserSig it sends as the document's `UserSig` query key, and to the operator
# API (/admin/v1, on with a random token) with the document's `OperatorToken` bearer scheme. PORTRAIT_BIN picks
# the binary (default: target/release/portrait, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
secs="${1:-60}"
SCHEMATHESIS_VERSION=4.32.5

if ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
if [ -z "${PORTRAIT_BIN:-}" ]; then
  cargo build --release --locked -q -p portrait
  PORTRAIT_BIN="$root/target/release/portrait"
fi

work="$(mktemp -d)"
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
app=1400000001
key="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
token="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
cat >"$work/portrait.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$work/data"
[log]
filter = "warn"
format = "text"
[operator]
token = "$token"
[[apps]]
sdkappid = $app
key = "$key"
admins = ["administrator"]
[apps.rate_limits]
enabled = false
[apps.client_rate_limits]
user_reads = 0
user_writes = 0
app_reads = 0
app_writes = 0
[[apps.custom_fields]]
name = "Tag_Profile_Custom_Hobby"
type = "string"
max_length = 100
[[apps.custom_fields]]
name = "Tag_Profile_Custom_Score"
type = "integer"
TOML
"$PORTRAIT_BIN" serve --config "$work/portrait.toml" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# The served document must be the checked-in one (the API test checks this too).
curl -fsS "$base/openapi.json" | cmp -s - docs/openapi.json \
  || { echo "error: docs/openapi.json differs from the served document; regenerate it with: cargo run -q -- openapi > docs/openapi.json" >&2; exit 1; }

sig="$("$PORTRAIT_BIN" usersig --sdkappid "$app" --key "$key" --user administrator)"
q="sdkappid=$app&identifier=administrator&usersig=$sig&random=1&contenttype=json"
curl -fsS "$base/v4/im_open_login_svc/multiaccount_import?$q" \
  -d '{"Accounts":["administrator","user1","user2","alice"]}' | grep -q '"ErrorCode":0'

cat >"$work/schemathesis.toml" <<TOML
[auth.openapi.UserSig]
api_key = "$sig"

[auth.openapi.OperatorToken]
bearer = "$token"

[parameters]
"query.sdkappid" = $app
"query.identifier" = "administrator"
TOML

# One worker: with two threads, hypothesis's lambda descriptions call ast.parse concurrently,
# which Python 3.11 does not survive ("AST constructor recursion depth mismatch").
echo "== schemathesis $SCHEMATHESIS_VERSION against $base for at most ${secs} s"
status=0
(cd "$work" && st --no-color run "$root/docs/openapi.json" --url "$base" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-time "$secs" --max-examples 40 --workers 1) || status=$?
if grep -q -i "panicked" "$work/server.log"; then
  echo "error: the server panicked during the run:" >&2
  grep -i -A5 "panicked" "$work/server.log" >&2
  status=1
fi
exit $status
