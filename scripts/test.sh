#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the whole test suite headless, with a throwaway
# PostgreSQL server for the team-library tests (scripts/postgres.sh; stopped at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
# A server that cannot be started (no PostgreSQL and no way to install it) leaves
# FABRICSEARCH_TEST_PG unset: the PostgreSQL tests then try once more and skip, saying why.
# A server of this run's own (its own state file), so parallel runs never stop each other's.
FABRICSEARCH_PG_STATE="$(mktemp -u /tmp/fabricsearch-pg-test.XXXXXX.env)"
export FABRICSEARCH_PG_STATE
if url="$(bash scripts/postgres.sh start)"; then
    export FABRICSEARCH_TEST_PG="$url"
    trap 'bash scripts/postgres.sh stop' EXIT
else
    echo "test.sh: no PostgreSQL server; team-library tests will skip" >&2
fi
.venv/bin/python -m pytest -q "$@"
