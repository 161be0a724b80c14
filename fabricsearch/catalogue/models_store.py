"""Models and their hash codes: the ``models`` and ``codes`` tables, and the model files.

`ModelsStore` is one of the stores a `Library` is made of (docs/architecture.md, "Storage"):
it runs its statements through the library's `Db` and asks the backend where a model's files
live (a library folder's ``models/``; a team library's server, downloaded into this client's
cache by `fetch_model`). It knows the folders it writes beside the catalogue and nothing else
of the library.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.errors import LibraryError

#: What a model is (``models.kind``, schema migration 5): trained on labels, the label-free
#: head fitted on its own (autohead.py), the shipped pretrained default, a self-supervised
#: adaptation, or a model file brought in from elsewhere. Never guessed from the version.
MODEL_KINDS = ("trained", "automatic", "shipped", "adapted", "imported")
#: Kinds the library may replace on its own (`autohead.is_automatic`): no label went into them.
REPLACEABLE_KINDS = ("automatic", "shipped")


_MODEL_COLUMNS = "version, method, bits, path, created, metrics, note, kind"


@dataclass(frozen=True)
class ModelInfo:
    version: str  # unique, e.g. "20261123-141500-dvsh-64"
    method: str
    bits: int
    path: Path  # checkpoint file (weights); metadata JSON beside it
    created: float
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""
    kind: str = "trained"  # one of MODEL_KINDS

    @property
    def present(self) -> bool:
        """Whether the weights are on this machine (a team library's client downloads them
        with `Library.fetch_model`, not when listing models)."""
        return Path(self.path).is_file()


class ModelsStore:
    """The models of one catalogue and their codes."""

    def __init__(self, db: Db, folder: Path, models_dir: Path, indexes_dir: Path) -> None:
        self.db = db
        self.folder = folder  # model paths are stored relative to it
        self.models_dir = models_dir  # where a team library's model files are cached
        self.indexes_dir = indexes_dir  # saved Hamming indexes, dropped when codes change

    def add_model(self, info: ModelInfo, activate: bool | None = None) -> None:
        """Record a trained model. It becomes active if ``activate`` is true, or (by default)
        when no model is active yet, so a first training run is searchable at once."""
        self.db.require_writable("add a model")
        if info.kind not in MODEL_KINDS:
            raise ValueError(f"model kind {info.kind!r} is not one of {', '.join(MODEL_KINDS)}")
        with self.db.atomic():
            if activate is None:
                activate = self.active_model() is None
            if activate:
                self.db.execute("UPDATE models SET active = 0")
            try:
                self.db.execute(
                    "INSERT INTO models"
                    " (version, method, bits, path, created, metrics, note, active, kind)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        info.version,
                        info.method,
                        int(info.bits),
                        self._store_path(info.path),
                        float(info.created),
                        json.dumps(info.metrics),
                        info.note,
                        int(bool(activate)),
                        info.kind,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise LibraryError(f"a model {info.version!r} already exists") from exc
            self.db.backend.store_model_files(self.db, self.models_dir, info)

    def models(self) -> list[ModelInfo]:
        """All models, newest first. A getter: on a team library a model's ``path`` is where
        this client keeps its files, downloaded or not (`ModelInfo.present`; `fetch_model`)."""
        rows = self.db.query(
            f"SELECT {_MODEL_COLUMNS} FROM models ORDER BY created DESC, version DESC"
        )
        served = self._served_models()
        return [self._model(r, served) for r in rows]

    def active_model(self) -> ModelInfo | None:
        """The search model (None: none yet); a getter, like `models`."""
        rows = self.db.query(f"SELECT {_MODEL_COLUMNS} FROM models WHERE active = 1")
        return self._model(rows[0], self._served_models()) if rows else None

    def fetch_model(self, version: str) -> ModelInfo:
        """The model ``version`` with its files on this machine: a team library downloads them
        from the server into this client's cache (checked by SHA-256) when missing or
        different; a library folder has them already. The step before a model is loaded
        (search, encoding, activation, suggestions, adaptation); it may take seconds, so never
        on the GUI thread."""
        rows = self.db.query(f"SELECT {_MODEL_COLUMNS} FROM models WHERE version = ?", (version,))
        if not rows:
            raise LibraryError(f"no model {version!r} in this library")
        self.db.backend.fetch_model_files(self.db, self.models_dir, version)
        return self._model(rows[0], self._served_models())

    def sync_models(self) -> list[ModelInfo]:
        """Every model with its files on this machine (`fetch_model` of each), newest first."""
        return [self.fetch_model(m.version) for m in self.models()]

    def _served_models(self) -> frozenset[str]:
        """A team library's models whose files the server holds (none for a folder)."""
        return self.db.backend.served_models(self.db)

    def set_active_model(self, version: str) -> None:
        with self.db.atomic():
            if not self.db.query("SELECT 1 FROM models WHERE version = ?", (version,)):
                raise LibraryError(f"no model {version!r}")
            self.db.execute(
                "UPDATE models SET active = CASE WHEN version = ? THEN 1 ELSE 0 END", (version,)
            )

    def remove_model(self, version: str) -> None:
        """Forget a model and its codes (the checkpoint file is left alone)."""
        with self.db.atomic():
            self.db.execute("DELETE FROM models WHERE version = ?", (version,))

    def store_codes(self, version: str, ids: Sequence[int], packed: np.ndarray) -> None:
        """Replace all codes of model ``version`` with ``packed`` (N, bits/8) uint8 for ``ids``."""
        ids, packed = self._checked_codes(version, ids, packed)
        with self.db.atomic():
            self.db.execute("DELETE FROM codes WHERE model_version = ?", (version,))
            self.db.executemany(
                "INSERT INTO codes (model_version, image_id, code) VALUES (?, ?, ?)",
                ((version, i, packed[k].tobytes()) for k, i in enumerate(ids)),
            )
        self.drop_index_files(version)

    def load_codes(
        self, version: str, ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 ascending, packed uint8 (N, bits/8)) for model ``version``; with ``ids``,
        only those images' codes (the ones that have one)."""
        rows = self.db.query("SELECT bits FROM models WHERE version = ?", (version,))
        if not rows:
            raise LibraryError(f"no model {version!r}")
        nbytes = (int(rows[0][0]) + 7) // 8
        sql = "SELECT image_id, code FROM codes WHERE model_version = ?"
        if ids is None:
            data = self.db.query(sql + " ORDER BY image_id", (version,))
        else:
            wanted = sorted({int(i) for i in ids})
            data = []
            for k in range(0, len(wanted), 500):  # bounded parameter lists
                chunk = wanted[k : k + 500]
                marks = ", ".join("?" * len(chunk))
                data += self.db.query(
                    f"{sql} AND image_id IN ({marks}) ORDER BY image_id", (version, *chunk)
                )
        ids = np.array([r[0] for r in data], dtype=np.int64)
        packed = np.frombuffer(b"".join(r[1] for r in data), dtype=np.uint8).reshape(
            len(data), nbytes
        )
        return ids, packed.copy()

    def _checked_codes(
        self, version: str, ids: Sequence[int], packed: np.ndarray
    ) -> tuple[list[int], np.ndarray]:
        """Ids as ints and codes as contiguous uint8, checked against the model's code length."""
        packed = np.ascontiguousarray(packed, dtype=np.uint8)
        id_list = [int(i) for i in ids]
        rows = self.db.query("SELECT bits FROM models WHERE version = ?", (version,))
        if not rows:
            raise LibraryError(f"no model {version!r}")
        nbytes = (int(rows[0][0]) + 7) // 8
        if packed.ndim != 2 or packed.shape != (len(id_list), nbytes):
            raise ValueError(f"codes shape {packed.shape} != ({len(id_list)}, {nbytes})")
        return id_list, packed

    def add_codes(self, version: str, ids: Sequence[int], packed: np.ndarray) -> None:
        """Insert or replace the codes of ``ids`` under model ``version`` (others are kept)."""
        ids, packed = self._checked_codes(version, ids, packed)
        with self.db.atomic():
            self.db.executemany(
                "INSERT INTO codes (model_version, image_id, code) VALUES (?, ?, ?)"
                " ON CONFLICT (model_version, image_id) DO UPDATE SET code = excluded.code",
                ((version, i, packed[k].tobytes()) for k, i in enumerate(ids)),
            )
        self.drop_index_files(version)

    def drop_index_files(self, version: str) -> None:
        # The saved Hamming index of this model no longer matches its codes; search rebuilds it.
        for f in self.indexes_dir.glob(f"{version}.*"):
            f.unlink(missing_ok=True)

    def ids_without_codes(self, version: str) -> list[int]:
        """Ids (ascending) of the images that have no code under model ``version``."""
        rows = self.db.query(
            "SELECT i.id FROM images i WHERE NOT EXISTS (SELECT 1 FROM codes c"
            " WHERE c.model_version = ? AND c.image_id = i.id) ORDER BY i.id",
            (version,),
        )
        return [r[0] for r in rows]

    def count_codes(self, version: str) -> int:
        """How many images have a code under model ``version``."""
        rows = self.db.query("SELECT COUNT(*) FROM codes WHERE model_version = ?", (version,))
        return int(rows[0][0])

    def _store_path(self, path: Path) -> str:
        # Relative inside the library so the whole folder can be moved or copied.
        p = Path(path)
        try:
            return Path(os.path.abspath(p)).relative_to(self.folder).as_posix()
        except ValueError:
            return str(p)

    def _model(self, r: tuple[Any, ...], served: frozenset[str] = frozenset()) -> ModelInfo:
        p = Path(r[3])
        if r[0] in served:  # a team library: the server's bytes, cached in this client's folder
            p = self.models_dir / p.name
        return ModelInfo(
            version=r[0],
            method=r[1],
            bits=int(r[2]),
            path=p if p.is_absolute() else self.folder / p,
            created=float(r[4]),
            metrics=json.loads(r[5] or "{}"),
            note=r[6] or "",
            kind=r[7],
        )
