#!/usr/bin/env bash
# Installs the Debian packages mongoguard needs. Usage: scripts/deps.sh [build|package|test]
# "build" is what compiling and running the proxy needs; "package" is what
# scripts/package.sh needs to build the .deb (no Go: the container image uses
# it); "test" adds what the test suite needs (clang for the fuzzer, Python
# venv, Node.js, Go, promtool, logrotate and systemd-analyze for deploy/).
set -euo pipefail

want=(build-essential cmake ninja-build ccache pkg-config git ca-certificates
      libboost-dev libbson-dev libmongoc-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
      libsnappy-dev libzstd-dev zlib1g-dev libssl-dev nlohmann-json3-dev libhiredis-dev
      libcli11-dev libsqlite3-dev file dpkg-dev)
mode=${1:-build}
if [[ $mode == test ]]; then
  want+=(haproxy jq valgrind python3-matplotlib iproute2 libgtest-dev libbenchmark-dev clang
         libclang-rt-14-dev clang-format python3 python3-venv python3-pip chromium openssl
         prometheus logrotate systemd redis-server)
  command -v node >/dev/null 2>&1 || want+=(nodejs npm)
fi
[[ $mode == package ]] || command -v go >/dev/null 2>&1 || want+=(golang-go)

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  # The prometheus package is here for promtool only: its maintainer scripts
  # must not start a Prometheus server. policy-rc.d (Debian's switch for
  # that) is put in place for the install if the machine has none.
  block_services=""
  if [[ " ${missing[*]} " == *" prometheus "* && ! -e /usr/sbin/policy-rc.d ]]; then
    block_services=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$block_services" >/dev/null
    $SUDO chmod 0755 "$block_services"
    trap '$SUDO rm -f "$block_services"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
