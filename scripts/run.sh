#!/usr/bin/env bash
# Sets up .venv (if needed), builds the demo library on first run, and opens the application.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# First run: build the demo library with a progress bar here, so the window opens on it at once.
.venv/bin/fabricsearch demo
exec .venv/bin/fabricsearch gui "$@"
