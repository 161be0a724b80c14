#!/usr/bin/env bash
# The GPU check of issue 23 (benchmarks/gpu_check.py): CUDA tests, inference throughput with
# AMP, the product's encode path, training on cached features and fine-tuning, in one run
# under 10 minutes. `--dry-run` does every step on the CPU with tiny sizes (the suite runs it).
# Uses .venv when there is one, else the machine's python3 (a lent GPU machine has its own
# torch; PYTHONPATH makes the checkout importable without installing it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" benchmarks/gpu_check.py "$@"
