#!/usr/bin/env bash
# Fuzzes Portrait for a bounded time: builds the cargo-fuzz (libFuzzer) targets in fuzz/,
# installing cargo-fuzz if it is missing, then runs each target for SECONDS_PER_TARGET seconds
# (default 10, which keeps CI under 10 minutes) from its seed corpus in fuzz/seeds/<target>/. Prints one line per target (runs,
# executions per second, corpus size, coverage) and exits non-zero if any target crashed; the
# crashing input is then in fuzz/artifacts/<target>/ (see fuzz/README.md to reproduce it).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Runs on the stable toolchain: RUSTC_BOOTSTRAP=1 lets the -Z flags that cargo-fuzz passes
# through. The seed corpus is only read: what a run finds goes to a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

secs="${1:-10}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac

export RUSTC_BOOTSTRAP=1
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# No sanitizer: the code under test is safe Rust, so AddressSanitizer finds nothing that a panic
# would not, and halves the executions per second. 16 codegen units: a quicker cold build.
flags=(--sanitizer none --codegen-units 16)

start=$SECONDS
cargo fuzz build "${flags[@]}"
echo "== fuzz targets built in $((SECONDS - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
printf '%-12s %8s %10s %8s %7s  %s\n' target runs exec/s corpus cov result
for target in $(cargo fuzz list); do
  corpus="$work/$target"
  log="$work/$target.log"
  mkdir -p "$corpus"
  result=ok
  # The first directory receives what the run finds; the seeds are only read.
  if ! cargo fuzz run "${flags[@]}" "$target" "$corpus" "$root/fuzz/seeds/$target" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    result=CRASH
    status=1
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  eps="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
  size="$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
  printf '%-12s %8s %10s %8s %7s  %s\n' "$target" "${runs:-?}" "${eps:-?}" "${size:-?}" \
    "${cov:-?}" "$result"
  if [ "$result" != ok ]; then
    echo "---- $target: the end of libFuzzer's output"
    tail -n 60 "$log"
    echo "----"
  fi
done
echo "== fuzzing took $((SECONDS - start)) s in all ($secs s per target)"
exit "$status"
