#!/usr/bin/env bash
# Installs what the proxy needs, builds it and runs it in the foreground.
# Arguments are mongoguard's own flags. Without --upstream, an embedded
# FerretDB backend (SQLite storage in .data/) is built and started on
# 127.0.0.1:${MONGOGUARD_BACKEND_PORT:-27018} and the proxy is put in front of it.
set -euo pipefail
cd "$(dirname "$0")/.."

listen="127.0.0.1:27017"
admin_listen="127.0.0.1:9901"  # the example policy's admin.listen
have_upstream=0
have_config=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --upstream|--upstream=*) have_upstream=1 ;;
    --listen) listen="${args[$((i + 1))]:-$listen}" ;;
    --listen=*) listen="${args[$i]#--listen=}" ;;
    --admin-listen) admin_listen="${args[$((i + 1))]:-$admin_listen}" ;;
    --admin-listen=*) admin_listen="${args[$i]#--admin-listen=}" ;;
    --config|--config=*) have_config=1 ;;
    --help|--version) have_upstream=1 ;;
  esac
done

scripts/deps.sh build
# A first build skips the test programs; an existing build keeps its settings.
if [[ -f build/CMakeCache.txt ]]; then scripts/build.sh; else scripts/build.sh -DMONGOGUARD_TESTS=OFF; fi

extra=()
if ((!have_config)); then
  # The example policy; its audit log goes to .data/ unless told otherwise.
  mkdir -p .data
  export MONGOGUARD_AUDIT_PATH="${MONGOGUARD_AUDIT_PATH:-$PWD/.data/audit.jsonl}"
  export MONGOGUARD_JOURNAL_PATH="${MONGOGUARD_JOURNAL_PATH:-$PWD/.data/journal.db}"
  # The admin API's token: made once, kept in .data/ (mode 600).
  export MONGOGUARD_ADMIN_TOKEN_FILE="${MONGOGUARD_ADMIN_TOKEN_FILE:-$PWD/.data/admin.token}"
  if [[ ! -s "$MONGOGUARD_ADMIN_TOKEN_FILE" ]]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$MONGOGUARD_ADMIN_TOKEN_FILE")
  fi
  echo "admin page: http://$admin_listen/  (token in $MONGOGUARD_ADMIN_TOKEN_FILE)" >&2
  extra+=(--config deploy/examples/policy.yaml)
fi
if ((!have_upstream)); then
  ferretdb="$(scripts/ferretdb.sh | tail -n 1)"
  port="${MONGOGUARD_BACKEND_PORT:-27018}"
  data="${MONGOGUARD_DATA:-$PWD/.data}/ferretdb"
  # Something else on that port would be put behind the proxy unnoticed.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "scripts/run.sh: 127.0.0.1:$port, the embedded backend's port, is already in use;" \
      "set MONGOGUARD_BACKEND_PORT to a free port, or give --upstream" >&2
    exit 2
  fi
  mkdir -p "$data/sqlite" "$data/state"
  "$ferretdb" --handler=sqlite --sqlite-url="file:$data/sqlite/" --state-dir="$data/state" \
    --listen-addr="127.0.0.1:$port" --debug-addr=- --telemetry=disable --log-level=warn \
    >"$data/ferretdb.log" 2>&1 &
  backend=$!
  trap 'kill "$backend" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$backend" 2>/dev/null || { cat "$data/ferretdb.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "embedded backend: FerretDB (SQLite in $data) on 127.0.0.1:$port" >&2
  extra+=(--upstream "mongodb://127.0.0.1:$port")
fi

echo "connect with: mongodb://$listen/?directConnection=true" >&2
# What this run uses, for scripts/demo.sh (and anyone else) to read back.
# Blank: not known here (an upstream or a configuration of one's own).
admin_used=""
((have_config)) || admin_used="$admin_listen"
mkdir -p "${MONGOGUARD_DATA:-$PWD/.data}"
{
  echo "MONGOGUARD_PROXY=$listen"
  echo "MONGOGUARD_BACKEND=${port:+127.0.0.1:$port}"
  echo "MONGOGUARD_ADMIN=$admin_used"
  echo "MONGOGUARD_ADMIN_TOKEN_FILE=${MONGOGUARD_ADMIN_TOKEN_FILE:-}"
} >"${MONGOGUARD_DATA:-$PWD/.data}/run.env"
build/mongoguard "${extra[@]}" "$@" &
proxy=$!
trap 'kill "$proxy" 2>/dev/null || true; kill "${backend:-}" 2>/dev/null || true' EXIT INT TERM
wait "$proxy"
