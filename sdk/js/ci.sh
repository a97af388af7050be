#!/usr/bin/env bash
# Web SDK CI: installs what the SDK tests need on a fresh machine (Node.js + npm, Debian's
# chromium, the npm devDependencies from package-lock.json), builds the Portrait server binary the
# tests start, then runs the SDK build, the vendor-typings check (compat/: apps written against
# @tencentcloud/chat and @yxim/nim-web-sdk compile, then compile again with only the import swapped
# to this SDK), the unit/integration tests (including the vendor documents' examples,
# test/seeds.test.mjs) and the browser e2e tests (the web demo, and the web console served by
# the binary: test/e2e/console.test.mjs).
# Called from .ci/run as `bash sdk/js/ci.sh`.
set -euo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if need apt-get; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: $* missing and apt-get unavailable" >&2
    exit 1
  fi
}

{ need node && need npm; } || apt_install nodejs npm
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || apt_install chromium

if [ -z "${PORTRAIT_BIN:-}" ]; then
  (cd "$repo" && cargo build --release --locked -q -p portrait)
  export PORTRAIT_BIN="$repo/target/release/portrait"
fi

echo "== web SDK: node $(node --version), npm $(npm --version), $("${CHROMIUM_PATH:-/usr/bin/chromium}" --version 2>/dev/null | head -1)"
npm ci --no-audit --no-fund --loglevel=error
npm run build
echo "== vendor typings: compat/ (tsc --strict against the vendor packages, then against this SDK)"
(cd compat && npm ci --no-audit --no-fund --loglevel=error && node check.mjs && node count.mjs)
# One runner over every file, so the output ends with its totals (unit + integration + e2e).
node --test --test-concurrency=1 test/*.test.mjs test/e2e/*.test.mjs
