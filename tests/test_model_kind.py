# ruff: noqa: F811 - pytest fixtures imported from backends are redefined as arguments
"""A model's kind is a column (`models.kind`, schema migration 5; issue 21 item 6), not a
prefix of its version string: the migration backfills it on both engines, every check reads
it, and a library copy carries it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from backends import create_library, location, pg_database, pg_server  # noqa: F401 - fixtures

from fabricsearch.catalogue import MODEL_KINDS, Library, ModelInfo, schema

#: version → the kind the migration must give it (the prefixes used before the column).
OLD_MODELS = {
    "auto-20261201-000000-itq-64": "automatic",
    "pretrained-dvsh-64": "shipped",
    "adapted-20261201-000000-dvsh-64": "adapted",
    "20261201-000000-dvsh-64": "trained",
    "Auto-mixed-case": "trained",  # the prefixes were case-sensitive
}


def _weights(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.safetensors"
    path.write_bytes(version.encode() * 10)
    return path


def _add_old_models(lib: Library, folder: Path, kinds: bool = False) -> None:
    """The models of `OLD_MODELS`, all recorded as trained unless `kinds`."""
    for k, (version, kind) in enumerate(OLD_MODELS.items()):
        weights = _weights(folder, version)
        lib.add_model(
            ModelInfo(version, "dvsh", 64, weights, float(k), kind=kind if kinds else "trained")
        )


def _downgrade_to_schema_4(loc: str) -> None:
    """Make the catalogue what schema 4 left: no ``models.kind``, migration 5 unrecorded."""
    if loc.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(loc, autocommit=True) as conn:
            conn.execute("ALTER TABLE models DROP COLUMN kind")
            conn.execute("DELETE FROM schema_migrations WHERE version >= 5")
        return
    conn = sqlite3.connect(Path(loc) / "catalogue.sqlite", isolation_level=None)
    try:
        conn.execute("ALTER TABLE models DROP COLUMN kind")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 5")
    finally:
        conn.close()


def test_migration_backfills_kinds_from_version_prefixes(location: str, tmp_path: Path) -> None:
    with create_library(location) as lib:
        _add_old_models(lib, tmp_path / "weights")
    _downgrade_to_schema_4(location)
    with Library.open(location, photos_root="/") as lib:
        assert lib.schema_version() == schema.SCHEMA_VERSION
        assert {m.version: m.kind for m in lib.models()} == OLD_MODELS
        # The first model added was made active; its kind comes back with it.
        assert lib.active_model().kind == "automatic"


def test_kind_round_trips_and_is_checked(location: str, tmp_path: Path) -> None:
    with create_library(location) as lib:
        for k, kind in enumerate(MODEL_KINDS):
            version = f"m{k}"
            lib.add_model(ModelInfo(version, "dvsh", 64, _weights(tmp_path, version), k, kind=kind))
        assert {m.version: m.kind for m in lib.models()} == {
            f"m{k}": kind for k, kind in enumerate(MODEL_KINDS)
        }
        with pytest.raises(ValueError, match="kind"):
            lib.add_model(ModelInfo("bad", "dvsh", 64, _weights(tmp_path, "bad"), 9.0, kind="x"))
        assert "bad" not in {m.version for m in lib.models()}


def test_a_trained_model_named_like_an_automatic_one_is_trained(tmp_path: Path) -> None:
    """Only the kind counts: an 'auto-…' or 'pretrained-…' version trained on labels is never
    replaced by the label-free head nor described as the shipped model."""
    from fabricsearch import workflows
    from fabricsearch.autohead import is_automatic

    with Library.create(tmp_path / "lib") as lib:
        weights = _weights(tmp_path / "w", "auto-mine")
        lib.add_model(ModelInfo("auto-mine", "dvsh", 64, weights, 1.0), activate=True)
        active = lib.active_model()
        assert active.kind == "trained"
        assert not is_automatic(active)
        weights = _weights(tmp_path / "w", "pretrained-mine")
        lib.add_model(ModelInfo("pretrained-mine", "dvsh", 64, weights, 2.0), activate=True)
        assert not is_automatic(lib.active_model())
        assert not workflows.model_advice(lib).startswith("Shipped model")
        # And the other way round: a model recorded as automatic is one, whatever its name.
        weights = _weights(tmp_path / "w", "head")
        lib.add_model(ModelInfo("head", "itq", 64, weights, 3.0, kind="automatic"), activate=True)
        assert is_automatic(lib.active_model())


def test_the_automatic_head_keeps_a_trained_auto_named_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fit_auto_head` removes earlier automatic heads only: a trained model whose version
    starts with 'auto-' stays."""
    import fabricsearch.autohead as autohead
    from fabricsearch.hashing import train as trainmod
    from tests.records_helpers import fake_library

    with fake_library(tmp_path, ["a.jpg", "b.jpg", "c.jpg"]) as lib:
        for k, (version, kind) in enumerate(
            (("auto-trained", "trained"), ("auto-old-head", "automatic"))
        ):
            weights = _weights(lib.models_dir, version)
            lib.add_model(ModelInfo(version, "itq", 64, weights, float(k), kind=kind))

        published: dict[str, str] = {}

        def fake_publish(lib: Library, method, version: str, **kw):  # type: ignore[no-untyped-def]
            info = ModelInfo(
                version, "itq", 64, _weights(lib.models_dir, version), 9.0, kind=kw["kind"]
            )
            lib.add_model(info, activate=True)
            published[version] = kw["kind"]
            return info

        class Result:
            method = None
            config = None
            fingerprint = ""

        Result.config = type("C", (), {"to_dict": staticmethod(dict)})()
        monkeypatch.setattr(trainmod, "publish_model", fake_publish)
        monkeypatch.setattr(trainmod, "train", lambda *a, **k: Result())
        monkeypatch.setattr(trainmod, "library_training_data", lambda *a, **k: None)
        info = autohead.fit_auto_head(lib)
        assert info is not None
        assert info.kind == "automatic"
        assert list(published.values()) == ["automatic"]
        assert {m.version for m in lib.models()} == {"auto-trained", info.version}


def test_shipped_model_is_installed_as_shipped(tmp_path: Path) -> None:
    from fabricsearch.pretrain import install_default_model, shipped_model_path

    if not shipped_model_path().exists():
        pytest.skip("no shipped model in this checkout")
    with Library.create(tmp_path / "lib") as lib:
        info = install_default_model(lib)
        assert info is not None
        assert info.kind == "shipped"
        assert lib.active_model().kind == "shipped"


def test_library_copy_carries_the_kind(location: str, tmp_path: Path) -> None:
    from fabricsearch.catalogue.copying import copy_library

    src = tmp_path / "src"
    with Library.create(src) as lib:
        _add_old_models(lib, lib.models_dir, kinds=True)
        lib.add_model(
            ModelInfo("auto-x", "itq", 64, _weights(lib.models_dir, "auto-x"), 7.0, kind="trained")
        )
    copy_library(src, location, photos_root="/")
    with Library.open(location, photos_root="/") as copy:
        assert {m.version: m.kind for m in copy.models()} == {**OLD_MODELS, "auto-x": "trained"}
