"""Records: the metadata CSV in and out (and its cells, for a front end's own CSV), copying a
library, relocating a team library's photos, putting removed images back (`restore_removed`,
`removal_batches`). Removing and relabelling a record are `catalogue.Library` methods a front
end calls on the library it holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fabricsearch.catalogue import LibraryError
from fabricsearch.catalogue.copying import copy_library
from fabricsearch.catalogue.edits import RemovalBatch, RestoreReport
from fabricsearch.catalogue.labels_csv import _escape as csv_cell
from fabricsearch.catalogue.metadata_csv import (
    MetadataCsvError,
    export_metadata,
    import_metadata,
    metadata_cells,
)
from fabricsearch.catalogue.team import map_photos_root
from fabricsearch.jobs import report
from fabricsearch.taxonomy import TaxonomyError

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library
    from fabricsearch.jobs import CancelToken, ProgressFn

__all__ = [
    "MetadataCsvError",
    "RemovalBatch",
    "RestoreReport",
    "TaxonomyError",
    "copy_library",
    "csv_cell",
    "export_metadata",
    "import_metadata",
    "make_missing_thumbnails",
    "map_photos_root",
    "metadata_cells",
    "removal_batches",
    "restore_removed",
]


def removal_batches(lib: Library) -> list[RemovalBatch]:
    """What `Library.remove_paths` removed and kept in the library's ``removed/`` folder,
    newest first (`Library.removal_batches`)."""
    return lib.removal_batches()


def restore_removed(
    lib: Library,
    record: str,
    encode: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[RestoreReport, int]:
    """Put back the images, labels, records, codes and label history a removal kept in
    ``record``; (report, images encoded). Codes come back from the record, but a model
    trained since has none for them: with ``encode`` those are encoded now, as an import does,
    so every restored image is searchable at once. Without it (the window's undo, on its own
    thread) the next search encodes them (`search.ensure_codes`)."""
    from fabricsearch.services.search import encode_missing

    rep = lib.restore_removed(record)
    active = lib.active_model()
    if not encode or active is None or not rep.restored:
        return rep, 0
    if not set(lib.ids_without_codes(active.version)) & {r["id"] for r in rep.restored}:
        return rep, 0
    return rep, encode_missing(lib, progress=progress, cancel=cancel)


def make_missing_thumbnails(
    lib: Library,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_error: Callable[[LibraryError], None] | None = None,
) -> tuple[int, int]:
    """Make every thumbnail that is missing, in every size; (made, failed). A cancel stops
    after the current image; each failure is passed to ``on_error`` and the work goes on."""
    from fabricsearch.imaging import THUMB_SIZES

    made = failed = 0
    records = lib.images()
    for k, rec in enumerate(records):
        if cancel is not None and cancel.cancelled:
            break
        for size in THUMB_SIZES:
            if lib.thumb_path(rec.sha256, size).is_file():
                continue
            try:
                lib.thumbnail(rec, size)
                made += 1
            except LibraryError as exc:
                failed += 1
                if on_error is not None:
                    on_error(exc)
        report(progress, "thumbnails", k + 1, len(records), "images")
    return made, failed
