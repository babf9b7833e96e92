#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (docs/testing.md): `scripts/fuzz.sh [TARGET] [SECONDS]`.
# Default: every target, 600 s each, one after the other, at low priority. Prints libFuzzer's
# final statistics per target (executions per second, total executions) and exits non-zero
# when a target found a crash (the input is kept under fuzz/artifacts/TARGET/).
#
# Needs cargo-fuzz and a nightly toolchain (`cargo install cargo-fuzz`; `rustup toolchain
# install nightly`). Without nightly, RUSTC_BOOTSTRAP=1 lets stable build the sanitizer flags:
# FERRY_FUZZ_TOOLCHAIN=stable scripts/fuzz.sh.
set -euo pipefail
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/../fuzz"
toolchain="${FERRY_FUZZ_TOOLCHAIN:-nightly}"
if [ "$toolchain" = stable ]; then
  export RUSTC_BOOTSTRAP=1
fi
seconds="${2:-600}"
if [ -n "${1:-}" ] && [ "${1:-}" != all ]; then
  targets=("$1")
else
  mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
flags=(-O -a -s none)
cargo "+$toolchain" fuzz build "${flags[@]}"
mkdir -p logs
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="logs/$t.log"
  echo "== $t: $seconds s =="
  # -rss_limit_mb: a target that needs more than this is a bug (unbounded input handling).
  if nice -n 10 cargo "+$toolchain" fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$t")
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  echo "$t: $status, ${runs:-?} executions, ${rate:-?} exec/s (log: fuzz/$log)"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
