#!/usr/bin/env bash
# Installs what the tests need, builds with warnings as errors, and runs every
# test: unit tests, integration tests against the embedded FerretDB backend
# and a scripted fake server through real drivers, and a fuzz smoke run.
# FUZZ_SECONDS (default 60) sets the fuzz run's length.
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

step "benchmark harness smoke (no timing thresholds)"
scripts/bench.sh --smoke

step "fuzz smoke (${FUZZ_SECONDS:-60}s)"
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

step "all tests passed"
