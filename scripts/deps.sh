#!/usr/bin/env bash
# Installs the Debian packages mongoguard needs. Usage: scripts/deps.sh [build|test]
# "build" is what compiling and running the proxy needs; "test" adds what the
# test suite needs (clang for the fuzzer, Python venv, Node.js, Go).
set -euo pipefail

want=(build-essential cmake ninja-build pkg-config git ca-certificates
      libboost-dev libbson-dev libmongoc-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
      libsnappy-dev libzstd-dev zlib1g-dev libssl-dev nlohmann-json3-dev libhiredis-dev)
if [[ "${1:-build}" == test ]]; then
  want+=(haproxy jq libgtest-dev libbenchmark-dev clang libclang-rt-14-dev clang-format
         python3 python3-venv python3-pip chromium openssl redis-server)
  command -v node >/dev/null 2>&1 || want+=(nodejs npm)
fi
command -v go >/dev/null 2>&1 || want+=(golang-go)

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
