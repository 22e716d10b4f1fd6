#!/usr/bin/env bash
# Configures and builds into build/ (the executable is build/mongoguard).
# Extra arguments go to cmake's configure step, e.g. -DMONGOGUARD_WERROR=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [[ ! -f build/CMakeCache.txt ]]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2
else
  cmake -S . -B build "$@" >/dev/null
fi
cmake --build build -j "$(nproc)" >&2
