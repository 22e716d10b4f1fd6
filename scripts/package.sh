#!/usr/bin/env bash
# Builds mongoguard into build/ (through scripts/build.sh; extra arguments go
# to its cmake configure step) and packs the Debian package into dist/ with
# CPack. Prints the .deb's path on the last line. deploy/Dockerfile builds
# its image with this script, and the test command installs what it makes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/build.sh "$@"
rm -rf dist
mkdir -p dist
(cd build && cpack -G DEB -B "$root/dist" >&2)
rm -rf dist/_CPack_Packages
debs=(dist/*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || { echo "package.sh: expected one .deb in dist/" >&2; exit 1; }
echo "$root/${debs[0]}"
