#!/usr/bin/env bash
# Builds the fuzz targets (frame decoder, admin API) with clang (libFuzzer,
# ASan, UBSan) in build-fuzz/ and runs each for SECONDS (default 60) on a
# copy of its seed corpus. Exits non-zero if a fuzzer finds a crash, leak or
# UB.
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build-fuzz"
targets=(frame_decoder admin_api)

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: clang++ not found; installing clang" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

CC=clang CXX=clang++ cmake -S "${root}" -B "${build}" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMONGOGUARD_FUZZ=ON -DMONGOGUARD_TESTS=OFF >/dev/null
cmake --build "${build}" --target "${targets[@]/%/_fuzz}" -j 2

for target in "${targets[@]}"; do
  # The fuzzer writes new inputs into its first corpus directory: give it a
  # scratch copy so the committed seeds stay as they are.
  work="$(mktemp -d)"
  mkdir -p "${work}/corpus" "${work}/artifacts"
  cp "${root}/tests/fuzz/corpus/${target}"/* "${work}/corpus/"

  echo "fuzz.sh: running ${target}_fuzz for ${seconds}s"
  status=0
  "${build}/fuzz/${target}_fuzz" "${work}/corpus" \
    -max_total_time="${seconds}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="${work}/artifacts/" -print_final_stats=1 || status=$?

  if [ "${status}" -ne 0 ]; then
    mkdir -p "${build}/crashes/${target}"
    cp "${work}/artifacts/"* "${build}/crashes/${target}/" 2>/dev/null || true
    rm -rf "${work}"
    echo "fuzz.sh: ${target}_fuzz failed (exit ${status}); reproducers in ${build}/crashes/${target}/" >&2
    exit "${status}"
  fi
  rm -rf "${work}"
  echo "fuzz.sh: ${target}_fuzz: no crashes in ${seconds}s"
done
