#!/usr/bin/env bash
# The short fuzzing run of CI: installs cargo-fuzz if it is missing, builds the four targets
# and runs each for FUZZ_SECONDS (default 30) from its committed seeds (seeds/<target>) plus
# whatever an earlier run left in corpus/<target>. Exits non-zero on the first crash, after
# printing the input that caused it and the command that replays it.
#
# Stable Rust, no sanitizer (`--sanitizer none`): cargo-fuzz's default AddressSanitizer needs
# `-Zsanitizer`, a nightly-only flag; the coverage instrumentation libFuzzer needs is stable.
# See README.md for why that is enough here and for longer runs by hand.
set -euo pipefail
cd "$(dirname "$0")"

FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
TARGETS=(command_json catalogue export_verify proof_verify)
FLAGS=(--sanitizer none)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

echo "== building the fuzz targets (release, coverage-instrumented, debug assertions on)"
cargo fuzz build "${FLAGS[@]}"

mkdir -p logs
total_runs=0
for target in "${TARGETS[@]}"; do
  mkdir -p "corpus/$target"
  log="logs/$target.log"
  echo "== $target: ${FUZZ_SECONDS} s"
  # -timeout: one input taking this long is reported as a hang. The corpus directory comes
  # first: libFuzzer writes new inputs there and only reads the seeds.
  if ! cargo fuzz run "${FLAGS[@]}" "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$FUZZ_SECONDS" -timeout=25 -print_final_stats=1 >"$log" 2>&1; then
    echo "FAILED: $target found a crash, a hang or a broken property; the end of $log:"
    tail -n 60 "$log"
    crash="$(ls -t "artifacts/$target"/* 2>/dev/null | head -n 1 || true)"
    if [ -n "$crash" ]; then
      echo "replay: (cd fuzz && cargo fuzz run --sanitizer none $target $crash)"
    fi
    exit 1
  fi
  runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)"
  coverage="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 | sed 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*//')"
  echo "$target: ${runs:-?} executions, no crash (${coverage})"
  total_runs=$((total_runs + ${runs:-0}))
done
echo "== fuzzing: ${total_runs} executions over ${#TARGETS[@]} targets, no crash"
