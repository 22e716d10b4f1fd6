#!/usr/bin/env bash
# Replays the incident mongoguard exists for against a proxy started by
# scripts/run.sh (in another terminal): a mongoengine loop deleting every
# Family, stalled by the delete budget until the on-call operator decides;
# then `mongoguard ctl restore` puts the deleted families back from the
# journal and every one is compared, as BSON, with what was there before.
# Extra arguments go to deploy/demo/incident.py (e.g. --auto-reject).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test >/dev/null
if [[ ! -x .venv/bin/python ]]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/integration/requirements.txt
exec .venv/bin/python deploy/demo/incident.py \
  --proxy "mongodb://127.0.0.1:${MONGOGUARD_PORT:-27017}" \
  --direct "mongodb://127.0.0.1:${MONGOGUARD_BACKEND_PORT:-27018}" \
  --admin "http://127.0.0.1:9901" \
  --token-file "${MONGOGUARD_ADMIN_TOKEN_FILE:-$PWD/.data/admin.token}" \
  --restore "$PWD/build/mongoguard" "$@"
