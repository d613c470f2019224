#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), builds duet and serves a model on
# this machine: `duet serve` with CPU workers and the router, the OpenAI API
# on http://127.0.0.1:8000/v1 and gRPC on 127.0.0.1:50051. With no --model it
# serves SmolLM2-135M-Instruct (Q4_1 GGUF), a small real instruct model that
# scripts/setup.sh installs. Extra arguments go to `duet serve`, e.g.
#   scripts/serve.sh --model /models/Qwen3-0.6B --max-model-len 4096
# Environment: BUILD_DIR (default build), DUET_CUDA (AUTO), JOBS (all cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/build.sh duet duet-worker duet-router smollm2-135m-instruct
exec "${BUILD_DIR:-build}/tools/duet/duet" serve "$@"
