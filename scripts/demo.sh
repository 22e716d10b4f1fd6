#!/usr/bin/env bash
# Replays the incident mongoguard exists for against a proxy started by
# scripts/run.sh (in another terminal): a mongoengine loop deleting every
# Family, stalled by the delete budget until the on-call operator decides;
# then `mongoguard ctl restore` puts the deleted families back from the
# journal and every one is compared, as BSON, with what was there before.
# Extra arguments go to deploy/demo/incident.py (e.g. --auto-reject).
#
# The addresses are the ones scripts/run.sh used (it writes them to
# $MONGOGUARD_DATA/run.env, default .data/run.env); it installs only what
# the demo needs: a Python venv with pymongo and mongoengine.
set -euo pipefail
cd "$(dirname "$0")/.."
run_env="${MONGOGUARD_DATA:-$PWD/.data}/run.env"
if [[ ! -f $run_env ]]; then
  echo "scripts/demo.sh: $run_env not found: start scripts/run.sh (without --upstream) first" >&2
  exit 2
fi
# shellcheck disable=SC1090
source "$run_env"
if [[ -z ${MONGOGUARD_BACKEND:-} || -z ${MONGOGUARD_ADMIN:-} ]]; then
  echo "scripts/demo.sh: the demo needs scripts/run.sh's embedded backend and example policy" \
    "(run it without --upstream and --config)" >&2
  exit 2
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
if [[ ! -x .venv-demo/bin/python ]]; then python3 -m venv .venv-demo; fi
.venv-demo/bin/python -m pip install -q --disable-pip-version-check "pymongo>=4.6,<5" \
  "mongoengine>=0.28,<1"
exec .venv-demo/bin/python deploy/demo/incident.py \
  --proxy "mongodb://$MONGOGUARD_PROXY" \
  --direct "mongodb://$MONGOGUARD_BACKEND" \
  --admin "http://$MONGOGUARD_ADMIN" \
  --token-file "$MONGOGUARD_ADMIN_TOKEN_FILE" \
  --restore "$PWD/build/mongoguard" "$@"
