#!/usr/bin/env bash
# Configures and builds one preset of CMakePresets.json (default: build/,
# whose executable is build/mongoguard; asan: build-asan/; tsan: build-tsan/;
# fuzz: build-fuzz/). Ninja when installed.
#
#   scripts/build.sh [--preset NAME] [--target T...] [cmake -D arguments...]
#
# Extra arguments go to cmake's configure step, e.g. -DMONGOGUARD_WERROR=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=default
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    --target) targets+=(--target "$2"); shift 2 ;;
    *) break ;;
  esac
done
# The presets' folders (CMakePresets.json): build/ and build-<preset>/.
dir=build
[[ $preset == default ]] || dir=build-$preset
generator=()
# The generator is chosen once, when the folder is first configured.
if [[ ! -f $dir/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake --preset "$preset" "${generator[@]}" "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${targets[@]}" >&2
