#!/usr/bin/env bash
# Checks the built bundle in a temporary data folder: the CLI starts, colour analysis and the
# synthetic generator work, and the self-test builds the demo library (torch, SQLite, the
# importer's process pool), opens it, answers a search by photo (also through the offscreen GUI)
# and exits 0 only if the photo finds itself.
#   bash packaging/check_bundle.sh [path/to/fabricsearch]
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${1:-dist/fabricsearch/fabricsearch}
[ -x "$exe" ] || { echo "no bundle at $exe; run packaging/build.sh first" >&2; exit 1; }
exe=$(realpath "$exe")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FABRICSEARCH_DATA_DIR="$tmp/data" QT_QPA_PLATFORM=offscreen
# Hide the source tree and any venv from the bundle: it must be self-contained.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
cd "$tmp"

step() { echo "== $*"; }
step "--version / --help"
"$exe" --version
"$exe" --help >/dev/null
step "synth"
"$exe" synth "$tmp/synth" --count 4 --size 64 --seed 1 --json
step "colour"
img=$(find "$tmp/synth" -type f \( -name '*.jpg' -o -name '*.png' \) | sort | head -n 1)
[ -n "$img" ] || { echo "synth wrote no image" >&2; exit 1; }
"$exe" colour "$img" --json
step "selftest"
"$exe" selftest --json
step "selftest --gui"
"$exe" selftest --gui --json
echo "bundle self-test passed"
