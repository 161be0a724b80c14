#!/usr/bin/env bash
# Starts the built bundle in self-test mode: builds the demo library in a temporary data folder,
# opens it, answers a search by photo (offscreen GUI), and exits 0 only if the photo finds itself.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=dist/fabricsearch/fabricsearch
[ -x "$exe" ] || { echo "no bundle at $exe; run packaging/build.sh first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FABRICSEARCH_DATA_DIR="$tmp" QT_QPA_PLATFORM=offscreen
"$exe" selftest --json
"$exe" selftest --gui --json
echo "bundle self-test passed"
