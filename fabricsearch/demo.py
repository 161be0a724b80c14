"""The demo library: generated fabrics with exact labels and the shipped model, ready to search.

Built on first use in the user's data folder (`logging_setup.data_dir() / "demo-library"`), from
the synthetic generator with a fixed seed, so every installation gets the same demo and nothing
non-redistributable is shipped. Building takes well under a minute on a laptop CPU.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from fabricsearch.jobs import CancelToken, ProgressFn

log = logging.getLogger(__name__)

DEMO_SEED = 2022
DEMO_COUNT = 240
DEMO_SIZE = 256
DEMO_DIRNAME = "demo-library"
_READY = ".demo-ready"


def demo_folder() -> Path:
    from fabricsearch.logging_setup import data_dir

    return data_dir() / DEMO_DIRNAME


def build_demo_library(
    folder: str | Path,
    count: int = DEMO_COUNT,
    seed: int = DEMO_SEED,
    size: int = DEMO_SIZE,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Generate `count` fabric photos into `folder/photos`, create the library in `folder`,
    import them with their labels, install the shipped model and encode everything.

    A half-built demo (killed process) is detected by the missing ready-marker and rebuilt."""
    from fabricsearch.synth import write_dataset
    from fabricsearch.workflows import create_library, import_and_encode

    folder = Path(folder)
    if folder.exists() and not (folder / _READY).exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    photos = folder / "photos"
    labels = write_dataset(
        photos, count=count, seed=seed, size=size, progress=progress, cancel=cancel
    )
    with create_library(folder) as lib:
        import_and_encode(lib, photos, labels_csv=labels, progress=progress, cancel=cancel)
    (folder / _READY).write_text("ok\n", encoding="utf-8")
    return folder


def ensure_demo_library(
    progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> Path:
    """The demo library's folder, building it first if needed."""
    folder = demo_folder()
    if (folder / _READY).exists():
        _install_model_if_missing(folder, progress, cancel)
        return folder
    log.info("building the demo library in %s", folder)
    return build_demo_library(folder, progress=progress, cancel=cancel)


def _install_model_if_missing(
    folder: Path, progress: ProgressFn | None, cancel: CancelToken | None
) -> None:
    """A demo built while no shipped model was available gets it once it is there."""
    from fabricsearch.catalogue import Library
    from fabricsearch.pretrain import install_default_model
    from fabricsearch.search import encode_missing

    with Library.open(folder) as lib:
        if lib.active_model() is None and install_default_model(lib) is not None:
            encode_missing(lib, progress=progress, cancel=cancel)
