"""The storage layer's two engines implement one `Backend` protocol (issue 21;
docs/architecture.md, "Storage"), and a `Library` reaches them only through it."""

from __future__ import annotations

import inspect
import weakref
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.backend import Backend, SQLiteBackend, TeamBackend


def _protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(fn)
        for name, fn in vars(Backend).items()
        if callable(fn) and not name.startswith("_")
    }


def test_both_backends_implement_every_method_of_the_protocol() -> None:
    wanted = _protocol_methods()
    assert len(wanted) >= 20
    for impl in (SQLiteBackend, TeamBackend):
        for name, sig in wanted.items():
            got = getattr(impl, name, None)
            assert callable(got), (impl.__name__, name)
            assert list(inspect.signature(got).parameters) == list(sig.parameters), (
                impl.__name__,
                name,
            )
        assert isinstance(impl.shared, bool)


def test_a_library_folder_runs_on_the_sqlite_backend_and_stores_share_its_db(
    tmp_path: Path,
) -> None:
    lib = Library.create(tmp_path / "lib")
    try:
        assert isinstance(lib.backend, SQLiteBackend)
        assert not lib.backend.shared
        stores = (
            lib.image_store,
            lib.label_store,
            lib.taxonomy_store,
            lib.model_store,
            lib.metadata_store,
            lib.taxonomy_editor,
            lib.edits,
        )
        assert all(store.db is lib.db for store in stores)
        # A rolled-back block forgets the cached taxonomy (it may have changed inside).
        lib.add_categories(fine_ids=["kept"])

        def add_then_fail() -> None:
            with lib.atomic():
                lib.add_categories(fine_ids=["rolled-back"])
                assert "rolled-back" in lib.taxonomy.fine
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError, match="roll back"):
            add_then_fail()
        assert "kept" in lib.taxonomy.fine
        assert "rolled-back" not in lib.taxonomy.fine
    finally:
        lib.close()


def test_a_dropped_library_is_freed_without_the_cycle_collector(tmp_path: Path) -> None:
    """The stores hold the `Db`, never the `Library`, and the `Db` holds its caches weakly:
    no reference cycle keeps an unclosed connection alive until a garbage collection."""
    import gc

    lib = Library.create(tmp_path / "lib")
    lib.set_labels([], coarse=None)
    lib.close()
    refs = [weakref.ref(lib), weakref.ref(lib.db), weakref.ref(lib.model_store)]
    enabled = gc.isenabled()
    gc.disable()
    try:
        del lib
        assert [r() for r in refs] == [None, None, None]
    finally:
        if enabled:
            gc.enable()
