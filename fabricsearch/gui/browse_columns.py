"""What the library grid filters and sorts on, as numpy columns (issue 23).

A library opens with its count and first screen of records; the grid then loads these columns
in a worker (`BrowseColumns.load`: one SELECT, no `ImageRecord` per image) and filters and
sorts on them. Full records are fetched by page as rows come into view (`LibraryModel`).
Qt-free."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COLOUR_PRESENT = 0.05  # a colour "is in" an image when it covers at least 5 % of it


def _digest(sha256: str) -> np.ndarray:
    out = np.zeros(32, np.uint8)
    try:
        raw = bytes.fromhex(sha256)[:32]
    except ValueError:
        return out
    out[: len(raw)] = np.frombuffer(raw, np.uint8)
    return out


def _codes(values: Sequence[str | None]) -> tuple[np.ndarray, list[str | None]]:
    """Label values → int32 codes into a list of the distinct values (None is code 0)."""
    uniques: list[str | None] = [None]
    index: dict[str | None, int] = {None: 0}
    for v in dict.fromkeys(values):
        if v not in index:
            index[v] = len(uniques)
            uniques.append(v)
    codes = np.fromiter(map(index.__getitem__, values), np.int32, len(values))
    return codes, uniques


@dataclass
class BrowseColumns:
    """Every image of a library by ascending id: labels and colour, no paths."""

    ids: np.ndarray  # int64 (N,), ascending
    coarse: np.ndarray  # int32 codes into coarse_values
    coarse_values: list[str | None]
    fine: np.ndarray  # int32 codes into fine_values
    fine_values: list[str | None]
    tightness: np.ndarray  # float64, NaN = unknown
    coverage: np.ndarray  # float32 (N, 10): how much of the image each colour class covers
    hue: np.ndarray  # float32: the dominant colour's hue
    content: np.ndarray  # int64: the first 8 bytes of the SHA-256 (changed content)
    _extra: dict[str, np.ndarray] = field(default_factory=dict)  # lazily loaded sort keys

    @classmethod
    def empty(cls) -> BrowseColumns:
        return cls.from_catalogue(None)

    @classmethod
    def load(cls, library: Any) -> BrowseColumns:
        """One snapshot of the catalogue (`Library.columns` without paths)."""
        return cls.from_catalogue(library.columns(paths=False))

    @classmethod
    def from_catalogue(cls, cols: Any) -> BrowseColumns:
        if cols is None or len(cols.ids) == 0:
            z = np.zeros(0, np.int32)
            return cls(
                np.zeros(0, np.int64),
                z,
                [None],
                z.copy(),
                [None],
                np.zeros(0),
                np.zeros((0, 10), np.float32),
                np.zeros(0, np.float32),
                np.zeros(0, np.int64),
            )
        collecting = gc.isenabled()
        gc.disable()
        try:
            coarse, coarse_values = _codes(cols.coarse)
            fine, fine_values = _codes(cols.fine)
            tight = np.array([np.nan if t is None else t for t in cols.tightness], np.float64)
        finally:
            if collecting:
                gc.enable()
        pal = cols.palettes
        coverage = np.ascontiguousarray(pal[:, :, 3])
        dominant = np.argmax(coverage, axis=1)
        hue = pal[np.arange(len(pal)), dominant, 0].astype(np.float32)
        content = np.ascontiguousarray(cols.sha[:, :8]).view(np.int64).ravel().copy()
        return cls(
            np.asarray(cols.ids, np.int64),
            coarse,
            coarse_values,
            fine,
            fine_values,
            tight,
            coverage,
            hue,
            content,
        )

    @classmethod
    def from_records(cls, records: Sequence[Any]) -> BrowseColumns:
        """The columns of a few records (sorted by id), their lazy sort keys included."""
        from types import SimpleNamespace

        records = sorted(records, key=lambda r: r.id)
        if not records:
            return cls.empty()
        cols = cls.from_catalogue(
            SimpleNamespace(
                ids=np.array([r.id for r in records], np.int64),
                coarse=[r.coarse for r in records],
                fine=[r.fine for r in records],
                tightness=[r.tightness for r in records],
                palettes=np.stack([np.asarray(r.palette, np.float32) for r in records]),
                sha=np.stack([_digest(r.sha256) for r in records]),
            )
        )
        keys = [(r.path.name.lower(), str(r.path)) for r in records]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        name = np.empty(len(keys), np.float64)
        name[order] = np.arange(len(keys))
        cols._extra = {
            "name": name,
            "added": np.array([r.added for r in records], np.float64),
            "mtime": np.array([r.mtime for r in records], np.float64),
        }
        return cols

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labelled(self) -> np.ndarray:
        """As `ImageRecord.labelled`: any of coarse, fine, tightness known."""
        return (self.coarse != 0) | (self.fine != 0) | ~np.isnan(self.tightness)

    def rows_of(self, ids: Iterable[int]) -> np.ndarray:
        """Rows of the ids present (ids are ascending: a binary search)."""
        want = np.fromiter((int(i) for i in ids), np.int64)
        rows = np.searchsorted(self.ids, want)
        ok = rows < len(self.ids)
        ok[ok] = self.ids[rows[ok]] == want[ok]
        return rows[ok]

    def _code(self, values: list[str | None], value: str | None) -> int:
        try:
            return values.index(value)
        except ValueError:
            values.append(value)
            return len(values) - 1

    def update(self, records: Iterable[Any]) -> None:
        """Take the labels of changed records (after labelling in the window)."""
        for r in records:
            rows = self.rows_of([r.id])
            if not len(rows):
                continue
            row = rows[0]
            self.coarse[row] = self._code(self.coarse_values, r.coarse)
            self.fine[row] = self._code(self.fine_values, r.fine)
            self.tightness[row] = np.nan if r.tightness is None else float(r.tightness)

    # --- filters ------------------------------------------------------------------------------
    def mask(self, f: Any, colour_i: int | None) -> np.ndarray:
        """Rows passing a `BrowseFilter` (as `facets.record_passes`)."""
        keep = np.ones(len(self.ids), bool)
        if f.labelled is not None:
            keep &= self.labelled == f.labelled
        if f.coarse:
            ok = [
                i
                for i, v in enumerate(self.coarse_values)
                if v is not None and (v == f.coarse or v.startswith(f.coarse + "/"))
            ]
            keep &= np.isin(self.coarse, ok)
        if f.fine:
            keep &= np.isin(self.fine, [i for i, v in enumerate(self.fine_values) if v == f.fine])
        if f.tightness_restricted:
            t = self.tightness
            with np.errstate(invalid="ignore"):
                keep &= (t >= f.tightness_min) & (t <= f.tightness_max)  # NaN fails
        if colour_i is not None:
            keep &= self.coverage[:, colour_i] >= COLOUR_PRESENT
        return keep

    # --- sort keys ------------------------------------------------------------------------------
    def value_rank(self, values: list[str | None], missing: str = "~") -> np.ndarray:
        """Each code's rank when its values are sorted as text (None as ``missing``)."""
        order = sorted(range(len(values)), key=lambda i: values[i] or missing)
        rank = np.empty(len(values), np.int64)
        rank[order] = np.arange(len(values))
        return rank

    def extra(self, name: str, library: Any) -> np.ndarray:
        """A sort key read when first needed: ``added``, ``mtime`` (floats) or ``name`` (the
        rank of (file name lower-cased, path)). Ids not in these columns (changed since) get
        the last rank."""
        got = self._extra.get(name)
        if got is not None:
            return got
        column = "path" if name == "name" else name
        ids, values = library.image_column(column)
        if name == "name":
            import os

            keys = [(os.path.basename(p).lower(), p) for p in values]
            order = sorted(range(len(keys)), key=keys.__getitem__)
            by_id = np.empty(len(keys), np.float64)
            by_id[order] = np.arange(len(keys))
        else:
            by_id = np.asarray(values, np.float64)
        out = np.full(len(self.ids), np.inf)
        pos = np.searchsorted(ids, self.ids)
        pos = np.minimum(pos, max(len(ids) - 1, 0))
        hit = (ids[pos] == self.ids) if len(ids) else np.zeros(len(self.ids), bool)
        out[hit] = by_id[pos[hit]]
        self._extra[name] = out
        return out

    def label_counts(self) -> dict[str, int]:
        """'coarse:<id>' / 'fine:<id>' → number of images, as `taxonomy_dialog.label_counts`."""
        out: dict[str, int] = {}
        for values, codes, kind in (
            (self.coarse_values, self.coarse, "coarse"),
            (self.fine_values, self.fine, "fine"),
        ):
            counts = np.bincount(codes, minlength=len(values))
            for value, n in zip(values, counts.tolist(), strict=True):
                if not value or not n:
                    continue
                keys = {f"{kind}:{value}"}
                if kind == "coarse":
                    keys.add(f"coarse:{value.split('/')[0]}")
                for key in keys:
                    out[key] = out.get(key, 0) + n
        return out

    def changed_since(self, before: BrowseColumns) -> list[int]:
        """Ids whose labels or content differ from ``before``, then ids gone (as the old
        per-record comparison)."""
        common, bi, ai = np.intersect1d(before.ids, self.ids, return_indices=True)
        old_c = np.asarray(before.coarse_values, object)[before.coarse[bi]]
        new_c = np.asarray(self.coarse_values, object)[self.coarse[ai]]
        old_f = np.asarray(before.fine_values, object)[before.fine[bi]]
        new_f = np.asarray(self.fine_values, object)[self.fine[ai]]
        ot, nt = before.tightness[bi], self.tightness[ai]
        diff = (
            (old_c != new_c)
            | (old_f != new_f)
            | ~((ot == nt) | (np.isnan(ot) & np.isnan(nt)))
            | (before.content[bi] != self.content[ai])
        )
        changed = np.union1d(common[diff], np.setdiff1d(self.ids, before.ids))
        gone = np.setdiff1d(before.ids, self.ids)
        return [int(i) for i in changed] + [int(i) for i in gone]
