"""User operations that span several core modules, shared by the CLI and the GUI."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fabricsearch.jobs import Cancelled, CancelToken, ProgressFn

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import ImportReport
    from fabricsearch.featurefeed import FeatureFeed
    from fabricsearch.stages import StagePlan


@dataclass
class ImportOutcome:
    report: ImportReport
    encoded: int  # images given a code by the active model now (searchable at once)


def import_and_encode(
    lib: Library,
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str] | None = None,
    add_categories: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    only: Collection[str | os.PathLike[str]] | None = None,
    overlap_features: bool = True,
) -> ImportOutcome:
    """Import a folder, then encode with the active model every image that has no code in it,
    so a library is searchable right after an import (with the shipped model on day one).

    While the label-free head is the search model, each new photo is decoded once: the import
    workers also prepare its backbone input, and the network runs on those while the import
    goes on (`featurefeed.FeatureFeed`; ``overlap_features=False``: the features are computed
    after the import, decoding every photo again, as before).

    Every image lacking a code is encoded, not only the new ones: an import interrupted
    during its encoding (kill, Ctrl-C) or images added while another model was trained are
    finished by running the import again. Cancelling raises `jobs.Cancelled` whose
    ``partial`` is the `ImportOutcome` of what was committed."""
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.search import encode_missing

    try:
        with contextlib.ExitStack() as stack:
            feed = _feature_feed(lib) if overlap_features else None
            if feed is not None:
                stack.enter_context(feed)
            report = import_folder(
                lib,
                folder,
                labels_csv=labels_csv,
                add_categories=add_categories,
                workers=workers,
                progress=progress,
                cancel=cancel,
                only=only,
                features=feed,
            )
            if feed is not None:
                feed.close(progress, cancel)  # a cancel here is caught by encoding below
    except Cancelled as exc:
        raise Cancelled(exc.kept, partial=ImportOutcome(exc.partial, 0)) from exc
    # Codes per model before: `encoded` counts what this call made searchable in the model
    # active at the end, also when that is a label-free head fitted (and encoded) just now.
    before = {m.version: lib.count_codes(m.version) for m in lib.models()}
    try:
        _refit_auto_head(lib, report, progress, cancel)
    except Cancelled as exc:
        report.cancelled = True
        raise Cancelled(
            f"the import finished ({_summary(report)}), but fitting the label-free search "
            "model was cancelled: run the import again to finish it",
            partial=ImportOutcome(report, 0),
        ) from exc
    encoded = 0
    active = lib.active_model()
    if active is not None:
        try:
            encode_missing(lib, progress=progress, cancel=cancel)
        except Cancelled as exc:
            report.cancelled = True
            waiting = lib.count() - lib.count_codes(lib.active_model().version)
            raise Cancelled(
                f"the import finished ({_summary(report)}), but {waiting} images are not yet "
                "searchable: run the import again to encode them",
                partial=ImportOutcome(report, 0),
            ) from exc
        encoded = max(0, lib.count_codes(active.version) - before.get(active.version, 0))
    return ImportOutcome(report, encoded)


#: What each step of `import_and_encode` costs, in seconds: fixed + per photo read, measured
#: on the 2-core test machine (synthetic 256–512 px photos under load, docs/gui.md). Only the
#: shares matter to the bar; the time left comes from the import's own pace.
_COST_SCAN = 0.5
_COST_READ = (1.5, 0.09)  # start the decoding processes; decode, measure, thumbnails
_COST_FEATURES = 0.05  # the network's pass left when reading ends (it runs alongside)
_COST_FIT = (5.0, 0.02)  # fit the label-free head and publish it (partly silent)
_COST_ENCODE_CACHED = 0.01  # codes from stored features
_COST_ENCODE_DECODED = 0.08  # codes from the photos: decode and network
_COST_ENCODE_OTHER = 0.045  # the model active before: codes of the new photos, to compare


def import_plan(lib: Library) -> StagePlan:
    """The stages of `import_and_encode` on ``lib`` as the user reads them, with their
    expected costs (`stages.StagePlan`), for one progress across the whole import."""
    # Called on the window's thread: nothing here may import torch (seconds on first use),
    # so the rule of `featurefeed.feature_backbone` is asked without the backbone's check.
    from fabricsearch.autohead import is_automatic
    from fabricsearch.stages import Stage, StagePlan

    active = lib.active_model()
    looking = Stage(("wait", "scan"), "Looking for photos", fixed=_COST_SCAN)
    reading = Stage(("import",), "Reading photos", _COST_READ[1], _COST_READ[0])
    preparing = "Preparing search"
    if lib.folder is not None and (active is None or is_automatic(active)):
        rest: tuple[Stage, ...] = (
            Stage(("features", "training views"), "Learning what they look like", _COST_FEATURES),
            Stage(("train", "decode images"), preparing, _COST_FIT[1], _COST_FIT[0]),
            Stage(("encode",), preparing, _COST_ENCODE_CACHED),
            Stage(("encode new images",), preparing, _COST_ENCODE_OTHER),
        )
    elif active is not None:
        rest = (
            Stage(("features", "encode", "encode new images"), preparing, _COST_ENCODE_DECODED),
        )
    else:
        rest = ()
    return StagePlan((looking, reading, *rest), count_stage="import")


def _feature_feed(lib: Library) -> FeatureFeed | None:
    """A feed of the import's decoded photos into the feature cache, where features are what
    the search model is fitted on (`featurefeed.feature_backbone`); None on a read-only or
    otherwise featureless library."""
    from fabricsearch.featurefeed import FeatureFeed, feature_backbone

    if lib.folder is None:
        return None
    backbone = feature_backbone(lib)
    return FeatureFeed(lib.folder, backbone) if backbone is not None else None


def _refit_auto_head(
    lib: Library,
    report: ImportReport | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> None:
    """While no trained model is active, the pretrained backbone + a label-free head fitted on
    the library's own features is the search model: refit it when photos arrive (autohead.py),
    or (``report`` None) only when it is not the active model yet."""
    from fabricsearch.autohead import fit_auto_head, wants_auto_head

    if not wants_auto_head(lib):
        return
    active = lib.active_model()
    stale = active is None or active.kind != "automatic"
    arrived = report is not None and (report.added or report.updated or report.moved)
    if stale or arrived:
        fit_auto_head(lib, progress=progress, cancel=cancel)


def encode_catalogued(
    lib: Library, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> int:
    """Finish what an interrupted import left undone: when some catalogued image has no code
    under the active model (an import or a watcher killed or cancelled after committing its
    rows, before or during encoding), fit the label-free head if it should be the model and
    is not yet, then encode every image lacking a code. Returns how many images got a code
    under the model active at the end (0 when nothing was missing)."""
    from fabricsearch.search import encode_missing

    if lib.count() == 0:
        return 0
    active = lib.active_model()
    if active is not None and not lib.ids_without_codes(active.version):
        return 0
    before = {m.version: lib.count_codes(m.version) for m in lib.models()}
    _refit_auto_head(lib, None, progress, cancel)
    active = lib.active_model()
    if active is None:
        return 0
    encode_missing(lib, progress=progress, cancel=cancel)
    return max(0, lib.count_codes(active.version) - before.get(active.version, 0))


def _summary(report: ImportReport) -> str:
    return (
        f"added {report.added}, moved {report.moved}, updated {report.updated}, "
        f"failed {len(report.failed)}"
    )


def create_library(
    folder: str | os.PathLike[str],
    default_model: bool = True,
    photos_root: str | os.PathLike[str] | None = None,
) -> Library:
    """A new library (a folder, or a team library at a ``postgresql://`` URL with its
    ``photos_root``), with the shipped search model installed and active (if available)."""
    from fabricsearch.catalogue import Library
    from fabricsearch.pretrain import install_default_model

    lib = Library.create(folder, photos_root=photos_root)
    if default_model:
        install_default_model(lib)
    return lib


def model_advice(lib: Library) -> str:
    """One line telling the user what would improve search now."""
    active = lib.active_model()
    if active is None:
        return "No search model: train one (Model ▸ Retrain…)"
    labelled = lib.count(labelled=True)
    if active.kind == "shipped":
        if labelled == 0:
            return "Shipped model: label some fabrics and retrain, or Model ▸ Adapt, to improve results"
        return "Shipped model: retrain on your labels (Model ▸ Retrain…) to improve results"
    if active.kind == "adapted" and labelled:
        return "Adapted model: retrain on your labels to improve it further"
    return ""
