#!/usr/bin/env bash
# Sets up .venv (if needed), builds the demo library on first run, and opens the application.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fabricsearch gui "$@"
