#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), builds duet and runs the whole test
# suite through ctest. Extra arguments go to ctest (e.g. `-L unit`).
# Environment: BUILD_DIR (default build), DUET_CUDA (AUTO), JOBS (all cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" -j "${JOBS:-$(nproc)}" --output-on-failure --timeout 600 "$@"
