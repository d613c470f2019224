#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and builds duet: every target, or the
# ones named as arguments. Used by scripts/test.sh and scripts/serve.sh.
# Environment: BUILD_DIR (default build), DUET_CUDA (AUTO), JOBS (all cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DDUET_CUDA="${DUET_CUDA:-AUTO}"
if (($#)); then
  cmake --build "$build_dir" -j "$jobs" --target "$@"
else
  cmake --build "$build_dir" -j "$jobs"
fi
