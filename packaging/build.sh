#!/usr/bin/env bash
# Builds the standalone one-folder bundle into dist/fabricsearch/ with PyInstaller.
# Reproducible: pinned PyInstaller, the project's pinned .venv, SOURCE_DATE_EPOCH from git.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install -q "pyinstaller==6.22.3"
export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export PYTHONHASHSEED=0
.venv/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/fabricsearch.spec
echo "bundle: dist/fabricsearch/fabricsearch"
