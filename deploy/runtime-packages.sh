#!/usr/bin/env bash
# Prints, one per line, the Debian/Ubuntu packages that provide the shared
# libraries the given binaries load (per ldd), so a runtime image installs
# exactly those packages from its own distribution. Libraries that no
# package owns (a toolkit unpacked by hand) are named on stderr and skipped.
# Usage: deploy/runtime-packages.sh BINARY...
set -euo pipefail
(($#)) || { echo "usage: $0 BINARY..." >&2; exit 2; }

mapfile -t libs < <(for binary in "$@"; do
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u)

# dpkg records the path a package installed, and /lib may be a link to
# /usr/lib: ask about each library under every name it may be recorded as,
# in one query.
declare -A names_of
candidates=()
for lib in "${libs[@]}"; do
  real=$(readlink -f "$lib")
  names_of[$lib]="$lib $real ${lib#/usr} ${real#/usr}"
  candidates+=("$lib" "$real" "${lib#/usr}" "${real#/usr}")
done
declare -A owner_of
while IFS= read -r line; do
  # "package:arch: /path" or "package: /path"
  path="${line##*: }"
  owner_of[$path]="${line%%:*}"
done < <(dpkg-query -S "${candidates[@]}" 2>/dev/null || true)

for lib in "${libs[@]}"; do
  owner=""
  for name in ${names_of[$lib]}; do
    if [[ -n ${owner_of[$name]:-} ]]; then owner=${owner_of[$name]}; break; fi
  done
  if [[ -z $owner ]]; then
    echo "runtime-packages: no package owns $lib" >&2
    continue
  fi
  echo "$owner"
done | sort -u
