#!/usr/bin/env bash
# Installs the Debian package on this machine, starts its service and checks that it serves:
# /healthz answers, the development app was written to /var/lib/portrait/dev-app.toml (mode 0600,
# owned by the service's user) and a REST call signed with its key works, and the operator token
# was written to /var/lib/portrait/operator-token (mode 0600) and signs in to the operator API. Then purges the
# package and removes what the test made, leaving the machine as it was. Needs root.
#
#   bash scripts/deb-test.sh [path/to/portrait_*.deb]     # default: builds it (scripts/deb.sh)
#
# Where systemd runs (a VM, a real host), the service is started with systemctl. In a container
# without systemd, the unit's own ExecStart line is run as its User in its WorkingDirectory, so
# the test still exercises the installed files, the user and the permissions the unit relies on.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "error: deb-test needs root (it installs a package)" >&2; exit 1; }
if dpkg -s portrait >/dev/null 2>&1; then
  echo "error: a portrait package is already installed here; not touching it" >&2
  exit 1
fi
if [ -e /var/lib/portrait ] || getent passwd portrait >/dev/null; then
  echo "error: /var/lib/portrait or a user 'portrait' already exists; not touching them" >&2
  exit 1
fi

deb="${1:-$(bash scripts/deb.sh | tail -n 1)}"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
pid=""
fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -d /run/systemd/system ]; then
    systemctl stop portrait 2>/dev/null || true
    rm -rf /etc/systemd/system/portrait.service.d
  fi
  dpkg --purge portrait >/dev/null 2>&1 || true
  rm -rf /var/lib/portrait /etc/portrait
}
trap 'rc=$?; cleanup; exit $rc' EXIT

echo "== deb-test: installing $(basename "$deb")"
dpkg -i "$deb" >/dev/null

getent passwd portrait >/dev/null || fail "no system user portrait"
[ "$(stat -c %U:%a /var/lib/portrait)" = portrait:750 ] || fail "/var/lib/portrait is $(stat -c %U:%a /var/lib/portrait)"
[ "$(stat -c %U:%G:%a /etc/portrait/portrait.toml)" = root:portrait:640 ] \
  || fail "/etc/portrait/portrait.toml is $(stat -c %U:%G:%a /etc/portrait/portrait.toml)"
[ -x /usr/bin/portrait ] || fail "/usr/bin/portrait missing"
unit=/lib/systemd/system/portrait.service
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" 2>&1 | grep -v -e 'Cannot add dependency job' -e 'Failed to connect' || true
fi

if [ -d /run/systemd/system ]; then
  mkdir -p /etc/systemd/system/portrait.service.d
  printf '[Service]\nEnvironment=PORTRAIT_SERVER__LISTEN=127.0.0.1:%s\n' "$port" \
    >/etc/systemd/system/portrait.service.d/test.conf
  systemctl daemon-reload
  systemctl restart portrait
  how="systemctl"
else
  exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
  user="$(sed -n 's/^User=//p' "$unit")"
  workdir="$(sed -n 's/^WorkingDirectory=//p' "$unit")"
  # shellcheck disable=SC2086 # the unit's command line, split into words as systemd does
  (cd "$workdir" && exec runuser -u "$user" -- env NO_COLOR=1 PORTRAIT_SERVER__LISTEN="127.0.0.1:$port" $exec_start) \
    >/tmp/portrait-deb-test.log 2>&1 &
  pid=$!
  how="the unit's ExecStart as $user (no systemd here)"
fi

for _ in $(seq 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || { cat /tmp/portrait-deb-test.log 2>/dev/null || true; fail "/healthz does not answer"; }

dev=/var/lib/portrait/dev-app.toml
[ "$(stat -c %U:%a "$dev")" = portrait:600 ] || fail "$dev is $(stat -c %U:%a "$dev")"
app="$(sed -n 's/^sdkappid = //p' "$dev")"
key="$(sed -n 's/^key = "\(.*\)"/\1/p' "$dev")"
admin="$(sed -n 's/^admins = \["\([^"]*\)".*/\1/p' "$dev")"
sig="$(/usr/bin/portrait usersig --sdkappid "$app" --key "$key" --user "$admin")"
q="sdkappid=$app&identifier=$admin&usersig=$sig&random=1&contenttype=json"
curl -fsS "$base/v4/im_open_login_svc/account_import?$q" -d '{"UserID":"deb_test","Nick":"Deb"}' \
  | grep -q '"ErrorCode":0' || fail "account_import did not answer ErrorCode 0"
curl -fsS "$base/v4/profile/portrait_get?$q" -d '{"To_Account":["deb_test"],"TagList":["Tag_Profile_IM_Nick"]}' \
  | grep -q '"Value":"Deb"' || fail "portrait_get did not return the nick just imported"
[ -s /var/lib/portrait/portrait.db ] || fail "no database in /var/lib/portrait"
# The operator token was written on first start, private to the service's user, and signs in.
tok=/var/lib/portrait/operator-token
[ "$(stat -c %U:%a "$tok")" = portrait:600 ] || fail "$tok is $(stat -c %U:%a "$tok")"
curl -fsS -H "Authorization: Bearer $(cat "$tok")" "$base/admin/v1/apps" \
  | grep -q "\"sdkappid\":$app" || fail "the operator API with $tok does not list the dev app"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$base/admin/v1/apps")" = 401 ] \
  || fail "the operator API took a wrong token"

# Stop the service as systemd would (prerm does it where systemd runs), then purge.
if [ -n "$pid" ]; then kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; fi
dpkg --purge portrait >/dev/null
getent passwd portrait >/dev/null && fail "purge left the user portrait"
[ -d /var/lib/portrait ] || fail "purge removed the data directory (it must keep it)"
echo "deb-test: ok — installed, started ($how), /healthz, dev app, import + get, operator token on 127.0.0.1:$port"
