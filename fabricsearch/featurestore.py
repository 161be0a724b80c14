"""Cached backbone features: each image's pretrained-backbone feature, computed once.

Layout, one folder per backbone version inside the library folder::

    features/<backbone version>/meta.json   {"dim": 1280, "views": 4, "dtype": "float16",
                                             "format": 2, "checksum": "crc32"}
    features/<backbone version>/keys.bin    32-byte SHA-256 digests, one per row
    features/<backbone version>/feats.bin   float16 rows of views × dim values
    features/<backbone version>/sums.bin    CRC-32 of each row's bytes, uint32 little-endian

Rows are keyed by the image's content hash, so a renamed or moved photo keeps its feature and
a path whose bytes changed gets a new one (the row describes bytes, not paths). The files are
append-only: features are written first, then the checksum, then the key, each batch flushed
and fsynced, so a killed process leaves at most a ragged tail that the next writer trims.
Reading is a memory map of the features (100k images: well under a second;
`benchmarks/bench_features.py`; the row checks below add about 0.2 s, once per row and store).

A row is used only if its bytes match its checksum and every value is finite: a damaged row
(a flipped bit, a NaN) counts as missing, so it is computed again and appended; the key's
newest row wins. Format 1 stores (no ``sums.bin``, written before checksums existed, or rows
appended by such a version) stay readable: their rows are checked for finite values only until
the next write gives them checksums.

The store only stores: the features are computed by `hashing.extract` (the one input recipe
and the network pass), which appends them here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

KEY_BYTES = 32
SUM_BYTES = 4
FORMAT = 2  # 1: keys + rows; 2: + a CRC-32 per row (sums.bin)
_VERIFY_CHUNK = 4096  # rows checked per block (a few MB read at a time)

log = logging.getLogger(__name__)
#: Views of a photo: 0 centre crop (encoding and search), then the training views: mirrored, a
#: 0.8 zoom, rotated 90° (geometry only, never colour: colour is a label, §3.2).
VIEW_NAMES = ("centre", "mirror", "zoom", "rot90")
MAIN_VIEWS = (0,)
AUG_VIEWS = (1, 2, 3)
DEFAULT_VIEWS = 1


# --------------------------------------------------------------------------- input recipe


# --------------------------------------------------------------------------- the store


_UNKNOWN, _GOOD, _BAD = 0, 1, 2


class FeatureStore:
    """Append-only feature rows keyed by content hash (see the module docstring)."""

    def __init__(
        self, folder: str | os.PathLike[str], dim: int, views: int = DEFAULT_VIEWS
    ) -> None:
        self.folder = Path(folder)
        self.dim = int(dim)
        self.views = int(views)
        self._set_paths()
        self._index: dict[bytes, int] | None = None
        self._mm: np.ndarray | None = None
        self._sums = np.zeros(0, np.uint32)
        self._state = np.zeros(0, np.uint8)  # per row: unknown / good / bad (damaged)
        self._n = 0
        if self._meta_path.exists():
            meta = self._read_meta()
            if meta is None or meta.get("dim") != self.dim or meta.get("views") != self.views:
                # Another layout (older version) or an unreadable meta.json: start a fresh
                # folder beside it.
                self.folder = self.folder.with_name(f"{self.folder.name}-v{self.views}")
                self._set_paths()

    def _set_paths(self) -> None:
        self._keys_path = self.folder / "keys.bin"
        self._feats_path = self.folder / "feats.bin"
        self._sums_path = self.folder / "sums.bin"
        self._meta_path = self.folder / "meta.json"

    def _read_meta(self) -> dict[str, Any] | None:
        try:
            meta = json.loads(self._meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("feature cache %s has an unreadable meta.json (%s)", self.folder, exc)
            return None
        return meta if isinstance(meta, dict) else None

    @property
    def row_bytes(self) -> int:
        return self.views * self.dim * 2

    def _rows_on_disk(self) -> int:
        try:
            nk = self._keys_path.stat().st_size // KEY_BYTES
            nf = self._feats_path.stat().st_size // self.row_bytes
        except FileNotFoundError:
            return 0
        return min(nk, nf)

    def _load_index(self) -> dict[bytes, int]:
        n = self._rows_on_disk()
        if self._index is not None and n == self._n:
            return self._index
        index: dict[bytes, int] = {}
        if n:
            keys = np.fromfile(self._keys_path, dtype=np.uint8, count=n * KEY_BYTES)
            keys = keys.reshape(n, KEY_BYTES)
            index = {keys[i].tobytes(): i for i in range(n)}  # a key's newest row wins
        try:
            sums = np.fromfile(self._sums_path, dtype="<u4", count=n)
        except FileNotFoundError:
            sums = np.zeros(0, np.uint32)
        # Rows keep their verdict while the store grows (rows are never rewritten in place).
        state = np.zeros(n, np.uint8)
        keep = min(n, len(self._state), len(sums), len(self._sums))
        state[:keep] = self._state[:keep]
        self._index, self._n, self._mm, self._sums, self._state = index, n, None, sums, state
        return index

    def __len__(self) -> int:
        return len(self._load_index())

    def rows(self, shas: Sequence[str]) -> np.ndarray:
        """Row of each hash, −1 where not cached or where the cached row is damaged (its
        checksum does not match, or it holds NaN/infinity): such a row is computed again."""
        index = self._load_index()
        rows = np.array([index.get(bytes.fromhex(s), -1) for s in shas], dtype=np.int64)
        found = rows >= 0
        if found.any():
            good = self._verified(rows[found])
            rows[np.flatnonzero(found)[~good]] = -1
        return rows

    def _verified(self, rows: np.ndarray) -> np.ndarray:
        """Whether each row is intact (checked once per row and store object)."""
        todo = np.unique(rows[self._state[rows] == _UNKNOWN])
        if len(todo):
            mm = self._memmap()
            bad = 0
            for start in range(0, len(todo), _VERIFY_CHUNK):
                chunk = todo[start : start + _VERIFY_CHUNK]
                block = np.ascontiguousarray(mm[chunk])
                # float16 is finite unless all five exponent bits are set (inf, NaN)
                ok = ((block.view(np.uint16) & 0x7C00) != 0x7C00).all(axis=(1, 2))
                for j, r in enumerate(chunk.tolist()):
                    if ok[j] and r < len(self._sums):
                        ok[j] = zlib.crc32(block[j]) == int(self._sums[r])
                self._state[chunk] = np.where(ok, _GOOD, _BAD)
                bad += int((~ok).sum())
            if bad:
                log.warning(
                    "%d cached features in %s are damaged (checksum or NaN); "
                    "they are computed again",
                    bad,
                    self.folder,
                )
        return self._state[rows] == _GOOD

    def _memmap(self) -> np.ndarray:
        self._load_index()
        if self._mm is None or self._mm.shape[0] != self._n:
            if self._n == 0:
                return np.zeros((0, self.views, self.dim), np.float16)
            self._mm = np.memmap(
                self._feats_path, dtype=np.float16, mode="r", shape=(self._n, self.views, self.dim)
            )
        return self._mm

    def get(self, shas: Sequence[str], views: bool = True, dtype: Any = np.float32) -> np.ndarray:
        """(N, views, dim) (or (N, dim) of view 0) in `dtype` (float16 is the stored type and
        costs no conversion); raises KeyError for a missing hash or a damaged row."""
        rows = self.rows(shas)
        if (rows < 0).any():
            raise KeyError(f"{int((rows < 0).sum())} images have no (intact) cached feature")
        mm = self._memmap()
        out = mm[rows] if views else mm[rows, 0]
        return np.asarray(out, dtype=dtype)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "lock"
        from fabricsearch import locks

        with contextlib.ExitStack() as stack:
            try:
                if path.exists() and not path.is_file():
                    raise IsADirectoryError(path)
                # One writer at a time, across processes, on every OS (`locks`).
                stack.enter_context(locks.hold(path, wait=True, poll_s=0.01, note=False))
            except IsADirectoryError as exc:
                from fabricsearch.catalogue.errors import LibraryError

                raise LibraryError(
                    f"cannot lock the feature cache: {path} is a folder (or another thing that "
                    "is not a file); remove it and try again"
                ) from exc
            yield

    def _write_meta(self) -> None:
        from fabricsearch.atomicio import write_text_atomic

        meta = {"dim": self.dim, "views": self.views, "dtype": "float16"}
        meta.update({"format": FORMAT, "checksum": "crc32"})
        write_text_atomic(self._meta_path, json.dumps(meta))

    def _repair_tail(self, n: int) -> None:
        """Under the lock: trim a killed writer's ragged tail, so rows, checksums and keys
        line up again, and give checksums to rows that have none (a format 1 store, or rows
        appended by a version before checksums); those rows are trusted as they are."""
        for path, size in (
            (self._feats_path, n * self.row_bytes),
            (self._keys_path, n * KEY_BYTES),
        ):
            if path.exists() and path.stat().st_size != size:
                os.truncate(path, size)
        ns = self._sums_path.stat().st_size // SUM_BYTES if self._sums_path.exists() else 0
        if self._sums_path.exists() and self._sums_path.stat().st_size != min(ns, n) * SUM_BYTES:
            os.truncate(self._sums_path, min(ns, n) * SUM_BYTES)
        if ns < n:
            mm = np.memmap(self._feats_path, dtype=np.uint8, mode="r", shape=(n, self.row_bytes))
            sums = np.fromiter((zlib.crc32(mm[r]) for r in range(ns, n)), "<u4", n - ns)
            del mm
            self._append(self._sums_path, sums.tobytes())
            log.info("feature cache %s: checksums given to %d older rows", self.folder, n - ns)
        meta = (self._read_meta() if self._meta_path.exists() else None) or {}
        if meta.get("format") != FORMAT:
            self._write_meta()

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        with open(path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def add(self, shas: Sequence[str], feats: np.ndarray) -> None:
        """Append rows (N, views, dim) for hashes not yet stored, or whose stored row is
        damaged (concurrent writers are safe). Rows that are not finite are not stored."""
        feats = np.asarray(feats, dtype=np.float16).reshape(len(shas), self.views, self.dim)
        if not len(shas):
            return
        with self._locked():
            n = self._rows_on_disk()
            try:
                self._repair_tail(n)
            except OSError as exc:
                self._give_back(n, exc)
                raise
            self._index = None
            rows = self.rows(shas)  # −1: not stored, or damaged
            finite = np.isfinite(feats).all(axis=(1, 2))
            # Rows for hashes not stored yet, each once (the first occurrence).
            first = {sha: i for i, sha in reversed(list(enumerate(shas)))}
            keep = sorted(i for i in first.values() if rows[i] < 0 and finite[i])
            if not keep:
                return
            block = np.ascontiguousarray(feats[keep])
            sums = np.array([zlib.crc32(row) for row in block], dtype="<u4")
            try:
                self._append(self._feats_path, block.tobytes())
                self._append(self._sums_path, sums.tobytes())
                self._append(self._keys_path, b"".join(bytes.fromhex(shas[i]) for i in keep))
            except OSError as exc:
                self._give_back(n, exc)
                raise
            finally:
                self._index = None

    def _give_back(self, n: int, exc: OSError) -> None:
        """After a failed write: cut the files back to `n` rows at once (a full disk stays
        full otherwise) and raise `DiskFullError` where the disk is full."""
        from fabricsearch.atomicio import DiskFullError, failed_for_space

        for path, size in (
            (self._feats_path, n * self.row_bytes),
            (self._sums_path, n * SUM_BYTES),
            (self._keys_path, n * KEY_BYTES),
        ):
            with contextlib.suppress(OSError):
                if path.exists() and path.stat().st_size > size:
                    os.truncate(path, size)
        if failed_for_space(exc, self.folder):
            raise DiskFullError(self.folder) from exc


def store_for(
    library_folder: str | os.PathLike[str], backbone: str, view_ids: Sequence[int] = MAIN_VIEWS
) -> FeatureStore:
    """The library's store of `backbone` features for these views (centre crop by default)."""
    from fabricsearch.backbone_specs import get_spec

    spec = get_spec(backbone)
    name = spec.version
    if tuple(view_ids) != MAIN_VIEWS:
        name += "-views" + "".join(str(v) for v in view_ids)
    return FeatureStore(Path(library_folder) / "features" / name, spec.feature_dim, len(view_ids))
