#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), builds duet and runs the whole test
# suite through ctest. Extra arguments go to ctest (e.g. `-L unit`).
# Environment: BUILD_DIR (default build), DUET_CUDA (AUTO), JOBS (all cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DDUET_CUDA="${DUET_CUDA:-AUTO}"
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure --timeout 600 "$@"
