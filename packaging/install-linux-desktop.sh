#!/usr/bin/env bash
# Installs the .desktop entry and icons for the current user (Linux), pointing at the bundle
# (or at .venv/bin/fabricsearch when run from a source checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
exe="$(pwd)/dist/fabricsearch/fabricsearch"
[ -x "$exe" ] || exe="$(pwd)/.venv/bin/fabricsearch"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"
mkdir -p "$apps"
for s in 32 64 128 256; do
    mkdir -p "$icons/${s}x${s}/apps"
    cp "fabricsearch/resources/icons/fabricsearch-$s.png" "$icons/${s}x${s}/apps/fabricsearch.png"
done
# Quoted: the Desktop Entry Specification splits Exec on spaces, and install paths may have some.
sed "s|^Exec=fabricsearch|Exec=\"$exe\"|" packaging/fabricsearch.desktop >"$apps/fabricsearch.desktop"
echo "installed $apps/fabricsearch.desktop"
