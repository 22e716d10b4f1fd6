#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# runs each for SECONDS (default 60) on a scratch copy of its seed corpus.
# Exits non-zero if any target finds a crash, leak, timeout or UB; the
# reproducers are kept in build-fuzz/crashes/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# TARGET is a fuzz target's short name (frame_decoder, classifier, ...);
# without one, every tests/fuzz/<name>_fuzz.cc runs. A new target is a new
# tests/fuzz/<name>_fuzz.cc (listed in tests/CMakeLists.txt) with seeds in
# tests/fuzz/corpus/<name>/.
# FUZZ_JOBS=N runs N targets at a time (default 1). The figures of each run
# (executions, corpus size) end up in build-fuzz/stats/<target>.txt.
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${root}/build-fuzz"

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for src in "${root}"/tests/fuzz/*_fuzz.cc; do
    name="$(basename "${src}" .cc)"
    targets+=("${name%_fuzz}")
  done
fi
for t in "${targets[@]}"; do
  if [ ! -f "${root}/tests/fuzz/${t}_fuzz.cc" ]; then
    echo "fuzz.sh: no fuzz target ${t} (tests/fuzz/${t}_fuzz.cc)" >&2
    exit 2
  fi
done

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz.sh: clang++ not found; installing clang" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi

build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "${t}_fuzz"); done
"${root}/scripts/build.sh" --preset fuzz "${build_targets[@]}"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
mkdir -p "${build}/stats"

# Runs one target; its output goes to ${work}/<target>.log.
run_target() {
  local t="$1"
  # The fuzzer writes new inputs into its first corpus directory: give it a
  # scratch copy so the committed seeds stay as they are.
  mkdir -p "${work}/${t}/corpus" "${work}/${t}/artifacts"
  cp "${root}/tests/fuzz/corpus/${t}"/* "${work}/${t}/corpus/"
  local status=0
  "${build}/fuzz/${t}_fuzz" "${work}/${t}/corpus" \
    -max_total_time="${seconds}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="${work}/${t}/artifacts/" -print_final_stats=1 \
    >"${work}/${t}.log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "${work}/${t}.log" >"${build}/stats/${t}.txt" || true
  echo "corpus_files: $(find "${work}/${t}/corpus" -type f | wc -l)" >>"${build}/stats/${t}.txt"
  if [ "${status}" -ne 0 ]; then
    mkdir -p "${build}/crashes/${t}"
    cp "${work}/${t}/artifacts/"* "${build}/crashes/${t}/" 2>/dev/null || true
  fi
  return "${status}"
}

failed=()
jobs_max="${FUZZ_JOBS:-1}"
# Batches of FUZZ_JOBS targets at a time.
for ((start = 0; start < ${#targets[@]}; start += jobs_max)); do
  batch=("${targets[@]:start:jobs_max}")
  pids=()
  for t in "${batch[@]}"; do
    echo "fuzz.sh: running ${t}_fuzz for ${seconds}s" >&2
    run_target "${t}" &
    pids+=("$!")
  done
  for i in "${!batch[@]}"; do
    t="${batch[$i]}"
    if wait "${pids[$i]}"; then
      echo "fuzz.sh: ${t}: no crashes in ${seconds}s ($(tr '\n' ' ' <"${build}/stats/${t}.txt"))" >&2
    else
      tail -n 60 "${work}/${t}.log" >&2
      echo "fuzz.sh: ${t}: FAILED; reproducers in ${build}/crashes/${t}/" >&2
      failed+=("${t}")
    fi
  done
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz.sh: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s without a finding" >&2
