#!/usr/bin/env bash
# Builds duet and its tests under a sanitizer in a build directory of its own
# and runs the tests through ctest.
#
# usage: scripts/sanitize.sh asan|tsan [CTEST ARGS...]
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on)
#   tsan  ThreadSanitizer
# CTEST ARGS default to `-L unit`; pass e.g. `-L 'unit|e2e'` or `-R engine`.
# Environment: BUILD_DIR (default build-asan / build-tsan), JOBS (all cores).
#
# Every report fails its test (halt_on_error / -fno-sanitize-recover). Reports
# that are not duet's are suppressed in scripts/sanitizers/<kind>.supp, each
# with the reason.
#
# tsan also builds Abseil with -fsanitize=thread: absl::Mutex, which guards
# nearly all of duet's shared state (and gRPC's), keeps its lock and unlock in
# the library, and Debian's build tells TSan nothing about them, so every
# access under one would read as a race. The source is Debian's own package
# of the installed libabsl-dev version (its patches applied by dpkg-source),
# built as shared libraries with Debian's SONAMEs into <build>/abseil-tsan,
# which CMake finds first and LD_LIBRARY_PATH puts first at run time, so
# Debian's gRPC uses the instrumented copy too.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kind="${1:-}"
shift || true
case "$kind" in
  asan) flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined" ;;
  tsan) flags="-fsanitize=thread" ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan [ctest args...]" >&2
    exit 2
    ;;
esac
build_dir="${BUILD_DIR:-build-$kind}"
jobs="${JOBS:-$(nproc)}"
ctest_args=("$@")
((${#ctest_args[@]})) || ctest_args=(-L unit)

bash scripts/setup.sh

prefix_args=()
if [[ "$kind" == tsan ]]; then
  abseil_version="$(dpkg-query -W -f='${Version}' libabsl-dev)"
  abseil_prefix="$root/$build_dir/abseil-tsan"
  if [[ ! -f "$abseil_prefix/.built-$abseil_version" ]]; then
    work="$root/$build_dir/abseil-source"
    rm -rf "$work" "$abseil_prefix"
    mkdir -p "$work"
    pool="https://deb.debian.org/debian/pool/main/a/abseil"
    dsc="abseil_$abseil_version.dsc"
    curl -fsSL -o "$work/$dsc" "$pool/$dsc"
    for file in $(awk '/^Files:/ {files = 1; next} /^[^ ]/ {files = 0} files {print $3}' "$work/$dsc"); do
      curl -fsSL -o "$work/$file" "$pool/$file"
    done
    (cd "$work" && dpkg-source --no-check -x "$dsc" tree)
    # Debian's own configuration (debian/rules), plus the sanitizer.
    cmake -S "$work/tree" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_STANDARD=17 \
      -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF -DCMAKE_INSTALL_PREFIX="$abseil_prefix" \
      -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" -DCMAKE_SHARED_LINKER_FLAGS="$flags"
    cmake --build "$work/build" -j "$jobs"
    cmake --install "$work/build" >/dev/null
    touch "$abseil_prefix/.built-$abseil_version"
  fi
  prefix_args=(-DCMAKE_PREFIX_PATH="$abseil_prefix" -Dabsl_DIR="$abseil_prefix/lib/cmake/absl")
  export LD_LIBRARY_PATH="$abseil_prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# CUDA code and the nested clang fuzz build stay out: neither is what the
# sanitizer checks here (the fuzzers carry ASan + UBSan themselves).
cmake -S . -B "$build_dir" -G Ninja -DDUET_CUDA=OFF -DDUET_FUZZ=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags -fno-omit-frame-pointer" -DCMAKE_C_FLAGS="$flags -fno-omit-frame-pointer" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" "${prefix_args[@]}"
cmake --build "$build_dir" -j "$jobs"

supp="$root/scripts/sanitizers"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure --timeout 1200 "${ctest_args[@]}"
