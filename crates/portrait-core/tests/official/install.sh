#!/usr/bin/env bash
# Installs Tencent's official TLSSigAPIv2 generators (PyPI and npm `tls-sig-api-v2`, pinned here)
# that crates/portrait-core/tests/official_generators.rs checks our UserSig code against.
# Idempotent; safe to run from any directory. Uses the same `python3` and `node` the tests run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# `python3 -m pip` rather than `pip`, so the module lands in the interpreter the tests invoke.
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q -r "$here/requirements.txt"
npm ci --prefix "$here" --no-audit --no-fund --loglevel=error

python3 -c 'import TLSSigAPIv2' >/dev/null
node -e "require(process.argv[1])" "$here/node_modules/tls-sig-api-v2" >/dev/null
