#!/usr/bin/env bash
# ThreadSanitizer run of the multi-threaded tests: builds everything with
# -fsanitize=thread into build-tsan/, then runs the unit tests (the budget
# book, the hold registry and the policy store are shared between worker
# threads) and the integration tests that drive several worker threads at
# once: holds decided from the admin thread, budgets and breakers under
# concurrent clients, reload while serving, webhooks, and the load test
# (TSAN_LOAD_SECONDS, default 30). A data race or lock-order report fails
# the run. Not part of scripts/test.sh: it takes a while.
#
#   scripts/tsan.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/deps.sh test
scripts/build.sh --preset tsan

# shellcheck source=scripts/sanitize_env.sh
. scripts/sanitize_env.sh
echo "== unit tests under TSan" >&2
(sanitizer_options && build-tsan/tests/unit_tests --gtest_brief=1)

echo "== multi-threaded integration tests under TSan" >&2
export MONGOGUARD_FERRETDB="${MONGOGUARD_FERRETDB:-$(scripts/ferretdb.sh | tail -n 1)}"
if [[ ! -x .venv/bin/python ]]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/integration/requirements.txt
logs=$(mktemp -d)
status=0
(
  export MONGOGUARD_SANITIZER_LOG_DIR="${logs}" MONGOGUARD_BUILD_DIR="${root}/build-tsan"
  export LOAD_SECONDS="${TSAN_LOAD_SECONDS:-30}"
  sanitizer_options
  tests=(tests/integration/test_holds.py tests/integration/test_budgets.py
         tests/integration/test_admin_api.py tests/integration/test_policy_reload.py
         tests/integration/test_webhooks.py tests/integration/test_load_consistency.py)
  if [[ $# -gt 0 ]]; then tests=("$@"); fi
  .venv/bin/python -m pytest "${tests[@]}" -q -p no:cacheprovider
) || status=$?
if compgen -G "${logs}/*" >/dev/null; then
  cat "${logs}"/* >&2
  echo "tsan.sh: ThreadSanitizer reports (above)" >&2
  status=1
fi
rm -rf "${logs}"
[[ ${status} -eq 0 ]] && echo "tsan.sh: no ThreadSanitizer reports" >&2
exit "${status}"
