#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the whole test suite headless.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check --quiet .
.venv/bin/python -m pytest -q "$@"
