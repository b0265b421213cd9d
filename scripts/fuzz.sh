#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (RELIABILITY.md, "Fuzzing") for a
# fixed budget each, from the committed seeds (fuzz/seeds/TARGET) and what
# earlier runs found (fuzz/corpus/TARGET, not committed).
#
#   scripts/fuzz.sh                 # every target, 300 s each, AddressSanitizer
#   scripts/fuzz.sh 60              # 60 s each
#   scripts/fuzz.sh 600 report batch
#   FUZZ_SANITIZER=none scripts/fuzz.sh 20   # no sanitizer: faster (what CI runs)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and, on a stable
# toolchain, RUSTC_BOOTSTRAP=1 (set here) for libFuzzer's and the sanitizer's
# flags. A crash stops its target: its input is written to
# fuzz/artifacts/TARGET/ and replayed with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none TARGET fuzz/artifacts/TARGET/crash-...
# Exits non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-300}"
shift || true
sanitizer="${FUZZ_SANITIZER:-address}"
# FUZZ_PROFILE=dev builds without optimisation: much quicker to build,
# slower to run (CI's brief run uses it).
profile=()
if [ "${FUZZ_PROFILE:-release}" = dev ]; then profile=(--dev); fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# Built first (every target, or the ones named), so that a build error
# shows here rather than in each target's log.
if [ "$#" -gt 0 ]; then
  for target in "${targets[@]}"; do cargo fuzz build "${profile[@]}" --sanitizer "$sanitizer" "$target"; done
else
  cargo fuzz build "${profile[@]}" --sanitizer "$sanitizer"
fi
failed=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  log="fuzz/artifacts/$target/last-run.log"
  echo "fuzz: $target for ${seconds}s (sanitizer: $sanitizer)"
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: memory
  # past 2 GiB is a failure; -print_final_stats for the figures.
  if cargo fuzz run "${profile[@]}" --sanitizer "$sanitizer" "$target" \
      "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo '?')
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+' || echo '?')
    echo "fuzz: $target ok: $runs inputs, coverage $cov, corpus $(ls "fuzz/corpus/$target" | wc -l) files"
  else
    echo "fuzz: $target FAILED (log: $log):"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -n 10 || tail -n 30 "$log"
    failed+=("$target")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
