"""User operations that span several core modules, shared by the CLI and the GUI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fabricsearch.jobs import CancelToken, ProgressFn

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import ImportReport


@dataclass
class ImportOutcome:
    report: ImportReport
    encoded: int  # new images given a code by the active model (searchable at once)


def import_and_encode(
    lib: Library,
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str] | None = None,
    add_categories: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportOutcome:
    """Import a folder, then encode the new and changed images with the active model, so a
    library is searchable right after an import (with the shipped model on day one)."""
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.search import encode_missing

    report = import_folder(
        lib,
        folder,
        labels_csv=labels_csv,
        add_categories=add_categories,
        workers=workers,
        progress=progress,
        cancel=cancel,
    )
    encoded = 0
    if (report.added or report.updated) and lib.active_model() is not None:
        encoded = encode_missing(lib, progress=progress, cancel=cancel)
    return ImportOutcome(report, encoded)


def create_library(folder: str | os.PathLike[str], default_model: bool = True) -> Library:
    """A new library, with the shipped search model installed and active (if available)."""
    from fabricsearch.catalogue import Library
    from fabricsearch.pretrain import install_default_model

    lib = Library.create(folder)
    if default_model:
        install_default_model(lib)
    return lib


def model_advice(lib: Library) -> str:
    """One line telling the user what would improve search now."""
    active = lib.active_model()
    if active is None:
        return "No search model: train one (Model ▸ Retrain…)"
    labelled = lib.count(labelled=True)
    if active.version.startswith("pretrained-"):
        if labelled == 0:
            return "Shipped model: label some fabrics and retrain, or Model ▸ Adapt, to improve results"
        return "Shipped model: retrain on your labels (Model ▸ Retrain…) to improve results"
    if active.version.startswith("adapted-") and labelled:
        return "Adapted model: retrain on your labels to improve it further"
    return ""
