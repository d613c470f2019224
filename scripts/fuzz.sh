#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and fuzzes each for a
# given time, one after another, then prints one line per target.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  per target (default 600); TARGETs default to every fuzzer built
#            (names as in tests/fuzz/CMakeLists.txt: openai_request,
#            http_server, grpc_request, step_request, gguf, ...).
# Environment: BUILD_DIR (default build), JOBS (fuzzing processes per target,
# default 1).
#
# Each target starts from its committed seeds (tests/fuzz/corpus/<name>, or
# the one beside its CMakeLists.txt) plus what earlier runs of this script
# found (kept in <build>/fuzz-runs/long/<name>/corpus). A crash, leak,
# sanitizer report or timeout leaves its input in <build>/fuzz-runs/long/<name>/
# and makes the script exit non-zero; add that input to the seed corpus as
# regression_<what> once fixed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-600}"
shift || true
build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-1}"

bash scripts/build.sh duet_fuzzers_build
fuzzers_dir="$build_dir/fuzz/fuzzers"
if [[ ! -d "$fuzzers_dir" ]]; then
  echo "no fuzzers were built (libFuzzer needs clang++ with compiler-rt)" >&2
  exit 1
fi

targets=("$@")
if ((${#targets[@]} == 0)); then
  for binary in "$fuzzers_dir"/*_fuzzer; do
    name="$(basename "$binary")"
    targets+=("${name%_fuzzer}")
  done
fi

# The seed corpus and dictionary of a target, from ctest's registration.
seeds_of() {
  ctest --test-dir "$build_dir" -N -V -R "^fuzz\.$1\$" 2>/dev/null |
    sed -n 's/.*-DCORPUS=\([^ "]*\).*/\1/p' | head -n 1
}
dict_of() {
  ctest --test-dir "$build_dir" -N -V -R "^fuzz\.$1\$" 2>/dev/null |
    sed -n 's/.*-DDICT=\([^ "]*\).*/\1/p' | head -n 1
}

failed=0
summary=()
for name in "${targets[@]}"; do
  binary="$fuzzers_dir/${name}_fuzzer"
  if [[ ! -x "$binary" ]]; then
    echo "no fuzzer $binary" >&2
    failed=1
    continue
  fi
  work="$build_dir/fuzz-runs/long/$name"
  mkdir -p "$work/corpus"
  seeds="$(seeds_of "$name")"
  [[ -n "$seeds" && -d "$seeds" ]] && cp -n "$seeds"/* "$work/corpus/"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$work/")
  dict="$(dict_of "$name")"
  [[ -n "$dict" && -f "$dict" ]] && args+=(-dict="$dict")
  ((jobs > 1)) && args+=(-fork="$jobs")
  echo "== fuzzing $name for ${seconds}s (log: $work/fuzz.log)"
  status=0
  "$binary" "${args[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log" | tail -n 1)"
  coverage="$(grep -o 'cov: [0-9]*' "$work/fuzz.log" | tail -n 1 | cut -d' ' -f2)"
  inputs="$(find "$work/corpus" -type f | wc -l)"
  result="ok"
  if ((status != 0)); then
    result="FAILED (exit $status; see $work/fuzz.log)"
    failed=1
  fi
  summary+=("$(printf '%-20s %8ss %12s runs %8s/s  cov %6s  corpus %6s  %s' "$name" "$seconds" \
    "${runs:-?}" "${speed:-?}" "${coverage:-?}" "$inputs" "$result")")
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
