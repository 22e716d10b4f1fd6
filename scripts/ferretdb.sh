#!/usr/bin/env bash
# Builds the embedded test backend, FerretDB (a MongoDB-compatible server
# with SQLite storage), once per machine, and prints the absolute path of
# the binary as the last line on stdout. Progress goes to stderr.
#
# Why a build from source: `go install .../cmd/ferretdb@v1.24.2` panics at
# start-up because the module zip lacks the generated
# build/version/version.txt. So the module source is copied to a scratch
# folder, that file is written, and the binary is built there the way
# FerretDB's production Dockerfile does (CGO off, -trimpath, no debug tags:
# debug builds crash on internal errors instead of answering them).
#
# Cache: ${MONGOGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mongoguard}/ferretdb-v1.24.2/ferretdb
set -euo pipefail

readonly FERRETDB_VERSION=v1.24.2
readonly MODULE=github.com/FerretDB/FerretDB

cache_root="${MONGOGUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mongoguard}"
dest_dir="${cache_root}/ferretdb-${FERRETDB_VERSION}"
dest="${dest_dir}/ferretdb"

log() { printf 'ferretdb.sh: %s\n' "$*" >&2; }

if [[ -x "$dest" ]]; then
  printf '%s\n' "$dest"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "go not found; installing golang-go with apt-get"
  if [[ $(id -u) -ne 0 ]]; then
    log "need root to install golang-go; install Go (>= 1.24) and retry"
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go >&2; }
fi

mkdir -p "$dest_dir"

# Two builds may race (parallel test runs on a fresh machine); a lock keeps
# the second one waiting and then it finds the finished binary.
exec 9>"${dest_dir}/.build.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [[ -x "$dest" ]]; then
  printf '%s\n' "$dest"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mongoguard-ferretdb-build.XXXXXX")"
tmp_bin="${dest_dir}/.ferretdb.tmp.$$"
cleanup() {
  rm -f "$tmp_bin"
  # The Go module cache marks files read-only; make them removable first.
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
log "downloading ${MODULE}@${FERRETDB_VERSION} from the Go module proxy"
module_json="$(go mod download -json "${MODULE}@${FERRETDB_VERSION}")"
module_dir="$(printf '%s\n' "$module_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
if [[ -z "$module_dir" || ! -d "$module_dir" ]]; then
  log "could not find the module directory in:"
  printf '%s\n' "$module_json" >&2
  exit 1
fi

log "copying module source from ${module_dir}"
cp -R "$module_dir" "$work/src"
chmod -R u+w "$work/src"
printf '%s\n' "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
printf '%s\n' "mongoguard-test" >"$work/src/build/version/package.txt"

log "building cmd/ferretdb (this takes a few minutes the first time)"
(
  cd "$work/src"
  # GOFLAGS=-mod=mod would let go touch go.sum; the module's own go.sum is
  # complete, so use it as is. GOTOOLCHAIN=local: never fetch a toolchain.
  CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
    go build -trimpath -o "$tmp_bin" ./cmd/ferretdb
) >&2
"$tmp_bin" --version >&2
mv -f "$tmp_bin" "$dest"
log "built ${dest} in $(($(date +%s) - start))s"

printf '%s\n' "$dest"
