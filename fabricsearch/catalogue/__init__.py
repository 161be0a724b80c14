"""The fabric library: one folder holding a SQLite catalogue, thumbnails, models and indexes.

All SQL lives in this package. Public API (other packages use only this):

    lib = Library.create(folder)            # new library (folder may exist and be empty)
    lib = Library.open(folder)              # existing one; raises LibraryError if not a library
                                            # (DamagedCatalogueError: empty, damaged, newer schema)
    lib = Library.open(folder, read_only=True)   # search only (automatic when not writable);
                                            # changes raise ReadOnlyLibraryError
    with Library.open(folder) as lib: ...   # closes its connection(s)

    lib = Library.create("postgresql://USER@HOST/DB", photos_root="/mnt/archive")  # team library
    lib = Library.open("postgresql://USER@HOST/DB", photos_root=None)  # on PostgreSQL; see
                                            # catalogue/team.py and docs/team-library.md
    lib.folder, lib.db_path, lib.models_dir, lib.thumbs_dir, lib.indexes_dir
    lib.location                            # the folder, or the URL (without password)
    lib.team                                # TeamInfo (url, uuid, photos_root) or None
    with lib.exclusive("training"): ...     # one holder per library across processes/clients
    lib.label_history(image_id=None) -> list[dict]   # label_audit: image_id, field, old, new, who, at
    lib.change_token() -> tuple             # changes whenever anyone commits (poll it)
    with lib.atomic(): ...                  # one transaction (nested blocks are savepoints)
    lib.taxonomy -> Taxonomy                # stored in the library; extended by add_categories()
    lib.add_categories(coarse_ids=(), fine_ids=()) -> list[str]   # the ids that were new

    lib.count(labelled: bool | None = None) -> int
    lib.image_ids(labelled: bool | None = None) -> list[int]   # ascending id
    lib.images(ids: Sequence[int] | None = None) -> list[ImageRecord]
    lib.get(image_id) -> ImageRecord
    lib.find_by_path(path) -> ImageRecord | None
    lib.set_labels(ids, coarse=UNSET, fine=UNSET, tightness=UNSET, who=None)  # one transaction
    lib.label_arrays(ids) -> similarity.LabelArrays             # aligned with ids
    lib.splits() -> dict[int, str]          # image id -> "train" | "val" | "test" (stored, deterministic)
    lib.thumbnail(record_or_id, size=256) -> Path   # cached on disk by content hash, regenerated if missing
    lib.thumb_path(sha256, size=256) -> Path        # where it is cached (may not exist)
    lib.label_counts() -> dict[str, int]    # labelled images per coarse category
    lib.failed_files() -> list[FailedFile]  # files the last imports could not use, with reasons
    lib.info() -> dict                      # what `fabricsearch info --json` prints
    lib.integrity_check() -> str            # "ok" or SQLite's description

    # models and codes (ModelInfo.kind: "trained" | "automatic" | "shipped" | "adapted" |
    # "imported", the models.kind column; never read a kind off the version string)
    lib.add_model(info: ModelInfo) -> None
    lib.models() -> list[ModelInfo]         # newest first
    lib.active_model() -> ModelInfo | None
    lib.set_active_model(version: str) -> None
    lib.store_codes(version, ids, packed: np.ndarray uint8 (N, bits/8)) -> None   # replaces
    lib.load_codes(version) -> tuple[np.ndarray int64 ids, np.ndarray uint8 packed]
    lib.remove_model(version)

Import and labels CSV live in `catalogue.importer` and `catalogue.labels_csv`:

    importer.import_folder(lib, folder, labels_csv=None, add_categories=False, workers=None,
                           progress=None, cancel=None) -> ImportReport
    labels_csv.import_labels(lib, csv, add_categories=False) -> LabelsReport
    labels_csv.export_labels(lib, csv) -> int

Errors (catalogue/errors.py) are `fabricsearch.errors.UserError`s: LibraryError and its
DamagedCatalogueError, ReadOnlyLibraryError, DiskFullError, MissingImageError (also a
KeyError: image ids not in the catalogue) and NoLibraryThereError (a team database with no
library yet: one can be created there).

A `Library` may be used from any thread (one connection behind a lock); see docs/library.md.
"""

from fabricsearch.catalogue.errors import (
    DamagedCatalogueError,
    DiskFullError,
    LibraryError,
    MissingImageError,
    NoLibraryThereError,
    ReadOnlyLibraryError,
)
from fabricsearch.catalogue.library import (
    MODEL_KINDS,
    UNSET,
    FailedFile,
    ImageRecord,
    Library,
    ModelInfo,
)

__all__ = [
    "MODEL_KINDS",
    "UNSET",
    "DamagedCatalogueError",
    "DiskFullError",
    "FailedFile",
    "ImageRecord",
    "Library",
    "LibraryError",
    "MissingImageError",
    "ModelInfo",
    "NoLibraryThereError",
    "ReadOnlyLibraryError",
]
