#!/usr/bin/env bash
# Creates .venv at the repository root and installs fabricsearch with its pinned dependencies.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.fabricsearch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first, exactly pinned: these wheels are the platform's (CUDA build, runs on CPU too).
    .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
    .venv/bin/python -m pip install -q -e ".[dev]"
    touch "$stamp"
fi
# The window needs Qt's X11 libraries from the system, which pip cannot install: name the
# missing ones and their Debian/Ubuntu packages (a warning; the CLI works without them).
if [ "$(uname -s)" = Linux ]; then
    .venv/bin/python -m fabricsearch.gui.qtcheck || true
fi
