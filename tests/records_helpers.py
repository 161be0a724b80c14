"""A library of catalogued fake photos (rows only, no decoding) for record and text tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fabricsearch.catalogue import Library


def fake_library(root: Path, names: list[str]) -> Library:
    """A library under root/lib with one row per name under root/photos (files hold their
    own name as bytes, so each has a distinct, correct sha256)."""
    photos = root / "photos"
    lib = Library.create(root / "lib")
    with lib.atomic():
        for name in names:
            path = photos / name
            path.parent.mkdir(parents=True, exist_ok=True)
            data = name.encode()
            path.write_bytes(data)
            st = path.stat()
            lib.add_image(
                str(path.resolve()),
                hashlib.sha256(data).hexdigest(),
                st.st_size,
                st.st_mtime,
                8,
                8,
                np.zeros((10, 4), np.float32),
            )
    return lib


def ids_by_name(lib: Library) -> dict[str, int]:
    return {r.path.name: r.id for r in lib.images()}
