# ruff: noqa: F811 - pytest fixtures imported from backends are redefined as arguments
"""Team libraries on a real PostgreSQL server (issue 16): several clients at once, photos
root per client, model files with checksums, locks, copying to and from a folder, the CLI."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from backends import create_library, location, pg_database, pg_server  # noqa: F401 - fixtures

from fabricsearch.catalogue import Library, LibraryError, ModelInfo, schema, schema_pg
from fabricsearch.catalogue import postgres as pgmod
from fabricsearch.cli import main as cli_main


def _palette(i: int) -> np.ndarray:
    p = np.zeros((10, 4), np.float32)
    p[i % 10] = (10.0, 100.0, 200.0, 1.0)
    return p


def _add(lib: Library, n: int, folder: str = "/photos") -> list[int]:
    with lib.atomic():
        return [
            lib.add_image(
                f"{folder}/img{i}.png",
                hashlib.sha256(f"{folder}{i}".encode()).hexdigest(),
                100,
                1.0,
                8,
                8,
                _palette(i),
            )
            for i in range(n)
        ]


# --- no server needed ------------------------------------------------------------------------


def test_both_schemas_have_the_same_versions() -> None:
    assert [(v, n) for v, n, _ in schema.MIGRATIONS] == [(v, n) for v, n, _ in schema_pg.MIGRATIONS]


def test_display_url_drops_the_password() -> None:
    # The SQL the server gets: tests/test_pg_sql.py.
    assert (
        pgmod.display_url("postgresql://ann:secret@db:5433/lib") == "postgresql://ann@db:5433/lib"
    )


# --- on a server -----------------------------------------------------------------------------


def test_labels_last_writer_wins_per_field_with_audit(pg_database: str) -> None:
    with create_library(pg_database) as a, Library.open(pg_database) as b:
        ids = _add(a, 2)
        a.set_labels([ids[0]], coarse="plaid/tartan", who="ann")
        b.set_labels([ids[0]], fine="twill", who="bob")  # another field: both kept
        r = b.get(ids[0])
        assert (r.coarse, r.fine) == ("plaid/tartan", "twill")
        a.set_labels([ids[0]], tightness=40.0, who="ann")
        b.set_labels([ids[0]], tightness=60.0, who="bob")  # same field: the last one wins
        assert a.get(ids[0]).tightness == 60.0
        history = [(h["field"], h["old"], h["new"], h["who"]) for h in a.label_history(ids[0])]
        assert history == [
            ("coarse", None, "plaid/tartan", "ann"),
            ("fine", None, "twill", "bob"),
            ("tightness", None, "40.0", "ann"),
            ("tightness", "40.0", "60.0", "bob"),
        ]


def test_concurrent_clients_never_lose_a_label_silently(pg_database: str) -> None:
    """Four clients edit the same images at once; per field, the audit is one unbroken chain
    old → new and ends at the stored value: every overwrite is recorded."""
    with create_library(pg_database) as lib:
        ids = _add(lib, 6)
    values = {"coarse": ["solid", "stripe", "plaid/tartan"], "tightness": [10.0, 50.0, 90.0]}
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with Library.open(pg_database) as mine:
                for _ in range(40):
                    field = rng.choice(sorted(values))
                    image_ids = rng.sample(ids, 2)
                    mine.set_labels(image_ids, who=f"c{seed}", **{field: rng.choice(values[field])})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Library.open(pg_database) as lib:
        history = lib.label_history()
        assert len(history) > 0
        for image_id in ids:
            rec = lib.get(image_id)
            for field in values:
                chain = [h for h in history if h["image_id"] == image_id and h["field"] == field]
                for prev, nxt in zip(chain, chain[1:], strict=False):
                    assert nxt["old"] == prev["new"]
                final = getattr(rec, field)
                expected = None if not chain else chain[-1]["new"]
                assert (None if final is None else pgmod_text(final)) == expected


def pgmod_text(value: object) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def test_photos_root_is_mapped_by_each_client(pg_database: str, tmp_path: Path) -> None:
    desk1, desk2 = tmp_path / "mnt" / "archive", tmp_path / "z" / "archive"
    with Library.create(pg_database, photos_root=desk1) as a:
        ids = _add(a, 1, folder=str(desk1 / "wool"))
        stored = a._query("SELECT path FROM images")[0][0]
        assert stored == "wool/img0.png"  # relative to the root, '/'-separated
        with pytest.raises(LibraryError, match="outside the team library's photos root"):
            _add(a, 1, folder=str(tmp_path / "elsewhere"))
    with Library.open(pg_database, photos_root=desk2) as b:
        assert b.get(ids[0]).path == desk2.resolve() / "wool" / "img0.png"
        assert b.find_by_path(desk2 / "wool" / "img0.png").id == ids[0]
    # `fabricsearch library map` remembers the mapping for this computer.
    assert cli_main(["library", "map", pg_database, str(desk2)]) == 0
    with Library.open(pg_database) as c:
        assert c.get(ids[0]).path == desk2.resolve() / "wool" / "img0.png"


def test_model_files_live_in_the_server_with_their_checksum(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "v1.safetensors"
    weights.write_bytes(b"weights" * 1000)
    (tmp_path / "v1.json").write_text('{"method": "dvsh"}')
    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "desk1"))
    with create_library(pg_database) as a:
        a.add_model(ModelInfo("v1", "dvsh", 16, weights, 1.0))
    # Another computer (another cache folder) gets the same bytes, when it fetches them.
    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "desk2"))
    with Library.open(pg_database) as b:
        path = b.fetch_model("v1").path
        assert str(path).startswith(str(tmp_path / "desk2"))
        assert path.read_bytes() == weights.read_bytes()
        assert path.with_suffix(".json").read_text() == '{"method": "dvsh"}'
        path.write_bytes(b"tampered")
    with Library.open(pg_database) as c:  # a changed cached copy is fetched again
        assert c.fetch_model("v1").path.read_bytes() == weights.read_bytes()


def test_listing_models_downloads_nothing_a_search_fetches_the_active_one(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`models()`/`active_model()` are getters (the window calls them on its GUI thread): on a
    client that never used the model they only say where its files would lie; the search
    (off the GUI thread) downloads the active model's files."""
    from fabricsearch.catalogue.copying import copy_library
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library
    from fabricsearch.services.search import Searcher
    from fabricsearch.synth import write_dataset

    photos = tmp_path / "photos"
    labels = write_dataset(photos, count=16, seed=7, size=48)
    folder = tmp_path / "lib"
    with Library.create(folder) as lib:
        import_folder(lib, photos, labels_csv=labels, workers=0)
        cfg = TrainConfig(bits=16, input_size=32, epochs=1, batch_size=8, patience=0, seed=0)
        version = train_library(lib, cfg).version
        query = lib.images()[3]
    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "desk1"))
    copy_library(folder, pg_database, photos_root=tmp_path)
    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "desk2"))  # a fresh client
    with Library.open(pg_database) as team:
        models = team.models()
        active = team.active_model()
        assert [m.version for m in models] == [version] == [active.version]
        assert str(active.path).startswith(str(tmp_path / "desk2"))
        assert not active.present
        assert not team.models_dir.exists() or not any(team.models_dir.iterdir())
        hit = Searcher(team).search(query.path, k=3).hits[0]
        assert (hit.path, hit.exact) == (query.path, True)
        assert team.active_model().present
        fetched = team.active_model().path
        assert fetched.read_bytes() == (folder / "models" / fetched.name).read_bytes()


def test_one_training_at_a_time(location: str) -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library

    with create_library(location) as a, Library.open(location) as b:
        with (
            a.exclusive("training"),
            pytest.raises(LibraryError, match="a training is already running"),
        ):
            train_library(b, TrainConfig(method="lsh", backbone="compact"))
        with b.exclusive("training"):  # released by the first holder
            pass


def test_two_clients_importing_one_folder_add_nothing_twice(location: str, tmp_path: Path) -> None:
    from fabricsearch import synth
    from fabricsearch.catalogue.importer import import_folder

    photos = tmp_path / "photos"
    synth.write_dataset(photos, 8, seed=3, size=48)
    with create_library(location):
        pass
    reports: list[object] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def client() -> None:
        try:
            with Library.open(location) as lib:
                start.wait()
                reports.append(import_folder(lib, photos, workers=0))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.added for r in reports) == [0, 8]
    assert sorted(r.unchanged for r in reports) == [0, 8]
    with Library.open(location) as lib:
        assert lib.count() == 8


def test_lost_connection_is_reopened(pg_database: str) -> None:
    import psycopg

    with create_library(pg_database) as lib:
        ids = _add(lib, 2)
        pid = lib._query("SELECT pg_backend_pid()")[0][0]
        admin_url = pg_database
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert lib.count() == 2  # outside a transaction: reconnected and retried
        pid = lib._query("SELECT pg_backend_pid()")[0][0]
        with pytest.raises(LibraryError, match="connection .* was lost"), lib.atomic():  # noqa: PT012
            lib.set_labels([ids[0]], coarse="solid")
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            lib.set_labels([ids[1]], coarse="solid")
        assert lib.count(labelled=True) == 0  # the transaction was not half applied
        lib.set_labels([ids[0]], coarse="solid")
        assert lib.count(labelled=True) == 1


def test_text_search_on_both_backends(location: str) -> None:
    with create_library(location) as lib:
        ids = _add(lib, 3)
        lib.set_metadata([ids[0]], {"supplier": "Acme Textiles", "weight": 250})
        lib.set_metadata([ids[1]], {"supplier": "Borg", "composition": "merino wool"})
        lib.set_labels([ids[2]], coarse="plaid/tartan")
        assert lib.text_search("supplier:acm") == [ids[0]]
        assert lib.text_search('composition:"merino wool"') == [ids[1]]
        assert lib.text_search("wool") == [ids[1]]
        assert lib.text_search("tartan") == [ids[2]]
        assert lib.text_search("weight:200..300") == [ids[0]]
        assert lib.text_search("name:img1") == [ids[1]]
        # Accents do not matter on either engine (FTS5's remove_diacritics; translate on
        # PostgreSQL, which matched "Crêpe" only when typed with its accent).
        lib.set_metadata([ids[2]], {"notes": "Crêpe de Chine, TRÈS fin"})
        assert lib.text_search("crepe tres") == [ids[2]]
        assert lib.text_search("notes:très") == [ids[2]]
        assert lib.text_search("Crêpe") == [ids[2]]


def test_copy_folder_to_team_library_and_back(pg_database: str, tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"w" * 5000)
    with Library.create(folder) as lib:
        ids = _add(lib, 5, folder=str(tmp_path / "photos"))
        lib.set_labels(ids[:3], coarse="stripe", tightness=30.0, who="ann")
        lib.set_labels(ids[:1], fine="twill", who="bob")
        lib.set_metadata([ids[1]], {"supplier": "Acme"})
        lib.add_model(ModelInfo("v1", "dvsh", 16, weights, 5.0, {"mAP": 0.5}, "note"))
        lib.store_codes("v1", ids, np.arange(10, dtype=np.uint8).reshape(5, 2))
        lib.record_failure(str(tmp_path / "photos" / "bad.jpg"), "broken")
        lib.add_categories(fine_ids=["leno"])
    assert (
        cli_main(["library", "copy", str(folder), pg_database, "--photos-root", str(tmp_path)]) == 0
    )
    back = tmp_path / "back"
    assert cli_main(["library", "copy", pg_database, str(back), "--json"]) == 0
    for dest in (pg_database, str(back)):
        with Library.open(folder) as src, Library.open(dest) as copy:
            assert [
                (r.id, r.path, r.sha256, r.coarse, r.fine, r.tightness) for r in copy.images()
            ] == [(r.id, r.path, r.sha256, r.coarse, r.fine, r.tightness) for r in src.images()]
            assert copy.label_history() == src.label_history()
            assert copy.metadata() == src.metadata()
            assert "leno" in copy.taxonomy.fine
            assert copy.active_model().version == "v1"
            assert copy.active_model().metrics == {"mAP": 0.5}
            assert copy.active_model().path.read_bytes() == weights.read_bytes()
            np.testing.assert_array_equal(copy.load_codes("v1")[1], src.load_codes("v1")[1])
            assert copy.failed_files() == src.failed_files()
            with copy.atomic():  # new ids continue after the copied ones
                new = copy.add_image(
                    "/x" if copy.team is None else str(tmp_path / "n.png"),
                    "f" * 64,
                    1,
                    1.0,
                    8,
                    8,
                    _palette(0),
                )
            assert new > max(ids)
    with pytest.raises(LibraryError, match="already holds a library"):
        cli_main_raises(["library", "copy", str(folder), str(back)])


def cli_main_raises(argv: list[str]) -> None:
    from fabricsearch.catalogue.copying import copy_library

    copy_library(argv[2], argv[3])


def test_cli_on_a_team_library(
    pg_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch import synth

    photos = tmp_path / "archive"
    synth.write_dataset(photos, 12, seed=5, size=64)
    assert cli_main(["init", pg_database, "--photos-root", str(photos)]) == 0
    assert "created team library" in capsys.readouterr().out
    assert cli_main(["import", pg_database, str(photos), "--workers", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 12
    assert cli_main(["labels", "import", pg_database, str(photos / "labels.csv")]) == 0
    capsys.readouterr()
    assert cli_main(["info", pg_database, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["team"], info["images"], info["labelled"]) == (True, 12, 12)
    assert info["location"] == pg_database
    query = sorted(photos.rglob("*.jpg"))[0]
    assert cli_main(["search", pg_database, str(query), "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert Path(hits[0]["path"]) == query.resolve()
    assert cli_main(["init", pg_database, "--photos-root", str(photos)]) == 1
    assert "already holds a library" in capsys.readouterr().err


def test_remove_and_relocate_on_both_backends(location: str, tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
        for i in range(2):
            (folder / f"{i}.jpg").write_bytes(f"photo {i}".encode())
    with create_library(location) as lib:
        with lib.atomic():
            ids = [
                lib.add_image(
                    str(old / f"{i}.jpg"),
                    hashlib.sha256(f"photo {i}".encode()).hexdigest(),
                    7,
                    1.0,
                    8,
                    8,
                    _palette(i),
                )
                for i in range(2)
            ]
        rep = lib.relocate(old, new)
        assert len(rep.moved) == 2
        assert lib.get(ids[0]).path == new / "0.jpg"
        rep = lib.remove_paths([new / "1.jpg"])
        assert [r["id"] for r in rep.removed] == [ids[1]]
        assert lib.image_ids() == [ids[0]]


def test_training_progress_is_shared_with_other_clients(
    pg_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from fabricsearch import synth
    from fabricsearch.catalogue import jobprogress, team
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library
    from fabricsearch.jobs import Progress

    photos = tmp_path / "archive"
    synth.write_dataset(photos, 8, seed=3, size=48)
    with create_library(pg_database) as a, Library.open(pg_database) as b:
        # Recorded at most once per INTERVAL_S (a clock of our own), read by another client
        # and by `info --json`; cleared at the end.
        now = [0.0]
        writes: list[str] = []
        real_write = jobprogress.write
        monkeypatch.setattr(
            jobprogress,
            "write",
            lambda lib, n, stage, *r: (writes.append(stage), real_write(lib, n, stage, *r)),
        )
        with (
            a.exclusive("training"),
            jobprogress.recording(a, "training", None, clock=lambda: now[0]) as record,
        ):
            assert record is not None
            assert b.job_progress("training")["stage"] == "start"
            for k in range(20):  # a burst within one second: not written
                now[0] = 0.01 * k
                record(Progress("epoch", k, 20))
            now[0] = 1.5
            record(Progress("epoch", 9, 20))
            assert writes == ["start", "epoch"]
            seen = b.job_progress("training")
            assert (seen["stage"], seen["done"], seen["total"], seen["percent"]) == (
                "epoch",
                9,
                20,
                45,
            )
            assert seen["who"] == team.holder()
            assert cli_main(["info", pg_database, "--json"]) == 0
            assert json.loads(capsys.readouterr().out)["training"]["percent"] == 45
        assert b.job_progress("training") is None
        assert b.info()["training"] is None

        # A row left by a client killed mid-training (no lock held) is not reported.
        jobprogress.write(a, "training", "epoch", 1, 2, "gone@nowhere", 0.0)
        assert b.job_progress("training") is None
        jobprogress.clear(a, "training")

        # The training workflow records through its progress callback, and clears the row
        # also when it fails.
        import_folder(a, photos, workers=0)
        during: list[object] = []

        def progress(p: Progress) -> None:
            during.append(b.job_progress("training"))

        train_library(a, TrainConfig(method="lsh", backbone="compact", bits=16), progress)
        assert during
        assert all(d is not None and d["who"] == team.holder() for d in during)
        assert b.job_progress("training") is None

        def failing(p: Progress) -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            train_library(a, TrainConfig(method="lsh", backbone="compact", bits=16), failing)
        assert b.job_progress("training") is None
        with b.exclusive("training"):  # and the lock is free again
            pass
