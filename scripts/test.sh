#!/usr/bin/env bash
# Installs what the tests need, builds with warnings as errors, and runs every
# test: unit tests, integration tests against the embedded FerretDB backend
# and a scripted fake server through real drivers; the same unit and
# integration tests again on an AddressSanitizer + UndefinedBehaviorSanitizer
# build (build-asan/); and a fuzz smoke run of every fuzz target.
# FUZZ_SECONDS (default 60) sets each fuzz target's run length;
# ASAN_LOAD_SECONDS (default 20) the load test's length in the sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)
step() { echo "== $* ($(($(date +%s) - start))s)" >&2; }

step "system packages"
scripts/deps.sh test

step "build (warnings are errors)"
scripts/build.sh -DMONGOGUARD_WERROR=ON -DMONGOGUARD_TESTS=ON

step "unit tests"
build/tests/unit_tests --gtest_brief=1

step "embedded backend (FerretDB)"
export MONGOGUARD_FERRETDB="$(scripts/ferretdb.sh | tail -n 1)"

step "Python venv"
if [[ ! -x .venv/bin/python ]]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/integration/requirements.txt

step "Node.js packages"
if [[ -f tests/node/package-lock.json ]]; then
  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error >&2
else
  npm install --prefix tests/node --no-audit --no-fund --loglevel=error >&2
fi

step "integration tests"
.venv/bin/python -m pytest tests/integration -q -p no:cacheprovider --durations=10

step "sanitizer build (ASan + UBSan, build-asan/)"
scripts/build.sh --preset asan

# shellcheck source=scripts/sanitize_env.sh
. scripts/sanitize_env.sh
step "unit tests under ASan + UBSan"
(sanitizer_options && build-asan/tests/unit_tests --gtest_brief=1)

step "integration tests under ASan + UBSan"
# Reports also land in a folder the suite checks after every test, so a
# report from any process (the proxy, mongoguard ctl, libmongoc) fails it.
# The driver programs (Go, Java) do not change with the sanitizer: reuse them.
if [[ -d build/drivers && ! -d build-asan/drivers ]]; then cp -r build/drivers build-asan/; fi
sanitizer_logs=$(mktemp -d)
(
  export MONGOGUARD_SANITIZER_LOG_DIR="${sanitizer_logs}" MONGOGUARD_BUILD_DIR="${root}/build-asan"
  export LOAD_SECONDS="${ASAN_LOAD_SECONDS:-20}"
  sanitizer_options
  .venv/bin/python -m pytest tests/integration -q -p no:cacheprovider --durations=10
)
if compgen -G "${sanitizer_logs}/*" >/dev/null; then
  cat "${sanitizer_logs}"/* >&2
  echo "sanitizer reports (above)" >&2
  exit 1
fi
rm -rf "${sanitizer_logs}"

step "benchmark harness smoke (no timing thresholds)"
scripts/bench.sh --smoke

step "fuzz smoke (${FUZZ_SECONDS:-60}s per target)"
FUZZ_JOBS="${FUZZ_JOBS:-2}" scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

step "all tests passed"
