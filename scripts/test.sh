#!/usr/bin/env bash
# Runs Portrait's whole test suite. Idempotent set-up first: Tencent's official UserSig generators
# (PyPI + npm `tls-sig-api-v2`, pinned) that the UserSig compatibility tests check against.
set -euo pipefail
cd "$(dirname "$0")/.."

bash crates/portrait-core/tests/official/install.sh
cargo test --workspace --locked "$@"
