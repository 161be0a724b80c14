"""Text search (FTS5) over metadata, file names and labels; combined with a photo query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library, LibraryError
from fabricsearch.catalogue.textsearch import (
    FREE_COLUMNS,
    QUERY_BUILDERS,
    TextQueryError,
    fts_expression,
    parse_query,
    postgresql_query,
    sqlite_query,
    text_search,
)
from fabricsearch.cli import main as cli_main
from tests.records_helpers import fake_library, ids_by_name


def test_parse_fields_words_quotes_and_ranges() -> None:
    q = parse_query('supplier:Acme composition:"merino wool" soft weight:200..300 price:..12.5')
    assert q.terms == [("supplier", "Acme"), ("composition", "merino wool"), (None, "soft")]
    assert q.ranges == [("weight", 200.0, 300.0), ("price", None, 12.5)]
    assert parse_query("File:x WIDTH:150").terms == [("name", "x")]
    assert parse_query("width:150").ranges == [("width", 150.0, 150.0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour:red", "unknown field 'colour'"),
        ('supplier:"Acme', "cannot read"),
        ("", "empty"),
        ("   ", "empty"),
        ("weight:heavy", "not a number"),
        ("weight:300..200", "is empty"),
        ("weight:..", "give a value"),
        ("supplier:%%", "nothing to search for"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(TextQueryError, match=message):
        parse_query(text)


def test_fts_syntax_in_words_is_quoted() -> None:
    expr = fts_expression(parse_query('AND OR "NEAR(" x*'))
    assert expr.count('"') == 8  # four quoted phrases, no bare operators


def test_each_engine_has_its_own_sql_with_named_parameters() -> None:
    q = parse_query("supplier:acm wool weight:100.. weight:..300")
    sql, params = sqlite_query(q)
    assert "fabric_text MATCH :match" in sql
    assert "~*" not in sql
    assert "?" not in sql
    assert params == {"match": fts_expression(q), "lo0": 100.0, "hi1": 300.0}
    assert "m.weight >= :lo0" in sql
    assert "m.weight <= :hi1" in sql
    sql, params = postgresql_query(q)
    assert "fabric_text" not in sql
    assert "?" not in sql
    assert "translate(m.supplier, :fold_from, :fold_to) ~* :t0" in sql
    assert sql.count(":t1") == len(FREE_COLUMNS)  # one parameter for every column of a word
    assert params["t0"] == r"\macm"
    assert params["t1"] == r"\mwool"
    assert (params["lo0"], params["hi1"]) == (100.0, 300.0)
    assert params["fold_from"][:3] == "ÀÁÂ"  # accents folded away, as FTS5 does
    assert postgresql_query(parse_query("crêpe"))[1]["t0"] == r"\mcrepe"
    assert set(QUERY_BUILDERS) == {"sqlite", "postgresql"}


def test_an_engine_without_its_own_sql_is_refused(tmp_path: Path) -> None:
    with fake_library(tmp_path, ["a.jpg"]) as lib:
        lib.db.backend.engine = "mysql"  # an instance attribute: this library only
        with pytest.raises(LibraryError, match="no SQL for the engine 'mysql'"):
            text_search(lib.db, "wool")


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    names = ["wool_plaid_01.jpg", "silk_02.jpg", "cotton_03.jpg", "sub/linen_04.jpg"]
    with fake_library(tmp_path, names) as lib:
        ids = ids_by_name(lib)
        lib.set_metadata_rows(
            {
                ids["wool_plaid_01.jpg"]: {
                    "supplier": "Acme Textiles",
                    "composition": "100% wool",
                    "weight": 320,
                    "tags": "winter, coat",
                },
                ids["silk_02.jpg"]: {
                    "supplier": "Beta Mills",
                    "composition": "silk",
                    "weight": 90,
                    "notes": "Crêpe de Chine, très fin",
                },
                ids["cotton_03.jpg"]: {
                    "supplier": "Acme Textiles",
                    "composition": "cotton/wool blend",
                    "weight": 200,
                    "price": 9.5,
                },
            }
        )
        lib.set_labels([ids["cotton_03.jpg"]], coarse="plaid/tartan", fine="twill")
        yield lib


def names(lib: Library, ids: list[int]) -> list[str]:
    return sorted(r.path.name for r in lib.images(ids))


def test_fields_free_words_and_and(lib: Library) -> None:
    def find(q: str) -> list[str]:
        return names(lib, lib.text_search(q))

    assert find("supplier:Acme") == ["cotton_03.jpg", "wool_plaid_01.jpg"]
    assert find("supplier:acm") == ["cotton_03.jpg", "wool_plaid_01.jpg"]  # prefix
    assert find("supplier:Acme composition:wool") == ["cotton_03.jpg", "wool_plaid_01.jpg"]
    assert find("supplier:Acme composition:silk") == []
    assert find("composition:wool") == ["cotton_03.jpg", "wool_plaid_01.jpg"]
    assert find('supplier:"beta mills"') == ["silk_02.jpg"]
    assert find('supplier:"mills beta"') == []  # a phrase keeps its order
    assert find("wool") == ["cotton_03.jpg", "wool_plaid_01.jpg"]  # name or composition
    assert find("linen") == ["linen_04.jpg"]  # file name only
    assert find("name:silk") == ["silk_02.jpg"]
    assert find("path:sub") == ["linen_04.jpg"]  # folders count with path:
    assert find("sub") == []  # but not for free words
    assert find("coarse:tartan fine:twill") == ["cotton_03.jpg"]
    assert find("plaid") == ["cotton_03.jpg", "wool_plaid_01.jpg"]  # label or name
    assert find("tags:winter") == ["wool_plaid_01.jpg"]
    assert find("crepe tres") == ["silk_02.jpg"]  # accents do not matter
    assert find("weight:200..320") == ["cotton_03.jpg", "wool_plaid_01.jpg"]
    assert find("weight:..100") == ["silk_02.jpg"]
    assert find("price:9.5") == ["cotton_03.jpg"]
    assert find("supplier:acme weight:300..") == ["wool_plaid_01.jpg"]


def test_index_follows_every_change(lib: Library) -> None:
    ids = ids_by_name(lib)
    silk = ids["silk_02.jpg"]
    assert lib.text_search("supplier:gamma") == []
    lib.set_metadata([silk], {"supplier": "Gamma"})
    assert lib.text_search("supplier:gamma") == [silk]
    assert lib.text_search("supplier:beta") == []
    lib.set_labels([silk], coarse="solid")
    assert lib.text_search("coarse:solid") == [silk]
    lib.set_labels([silk], coarse=None)
    assert lib.text_search("coarse:solid") == []
    lib.update_image(silk, path=str(lib.get(silk).path.with_name("satin_09.jpg")))
    assert lib.text_search("satin") == [silk]
    assert lib.text_search("name:silk") == []
    lib.remove_images([silk])
    assert lib.text_search("supplier:gamma") == []
    assert lib.text_search("satin") == []


def test_cli_text_listing(lib: Library, capsys) -> None:
    lib_dir = str(lib.folder)
    lib.close()
    assert cli_main(["search", lib_dir, "--text", "supplier:acme", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] is None
    assert out["matches"] == 2
    assert [Path(r["path"]).name for r in out["results"]] == ["cotton_03.jpg", "wool_plaid_01.jpg"]
    assert out["results"][0]["metadata"]["composition"] == "cotton/wool blend"
    assert out["results"][0]["labels"]["coarse"] == "plaid/tartan"
    assert cli_main(["search", lib_dir, "--text", "supplier:acme", "-k", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["matches"], len(out["results"])) == (2, 1)
    assert cli_main(["search", lib_dir, "--text", "colour:red"]) == 1
    assert "unknown field 'colour'" in capsys.readouterr().err
    assert cli_main(["search", lib_dir]) == 1
    assert "give a query photo" in capsys.readouterr().err
    assert cli_main(["search", lib_dir, "--text", "wool", "--coarse", "plaid"]) == 1


def test_cli_text_may_start_with_a_dash(lib: Library, capsys) -> None:
    lib_dir = str(lib.folder)
    lib.close()
    for args in (["--text", "-wool"], ["--text=-wool"], ["--text", "-wool", "-k", "1"]):
        assert cli_main(["search", lib_dir, *args, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert (out["text"], out["matches"]) == ("-wool", 2)
    with pytest.raises(SystemExit):  # the text left out: still argparse's own message
        cli_main(["search", lib_dir, "--text", "--json"])
    assert "expected one argument" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library
    from fabricsearch.synth import write_dataset

    root = tmp_path_factory.mktemp("textlib")
    photos = root / "photos"
    labels = write_dataset(photos, count=24, seed=5, size=64)
    with Library.create(root / "lib") as lib:
        import_folder(lib, photos, labels_csv=labels, workers=0)
        cfg = TrainConfig(bits=32, input_size=32, epochs=1, batch_size=8, patience=0)
        train_library(lib, cfg)
        ids = lib.image_ids()
        lib.set_metadata(ids[::3], {"supplier": "Acme", "composition": "wool"})
        lib.set_metadata(ids[1::3], {"supplier": "Acme", "composition": "silk"})
    return root / "lib"


def test_photo_search_restricted_to_text_matches(trained_library: Path, capsys) -> None:
    from fabricsearch.search import Searcher, SearchFilters

    with Library.open(trained_library) as lib:
        wool = lib.text_search("supplier:Acme composition:wool")
        assert 0 < len(wool) < lib.count()
        query = lib.get(wool[0]).path
        other = lib.get(lib.text_search("composition:silk")[0]).path
        searcher = Searcher(lib)
        res = searcher.search(query, k=50, filters=SearchFilters(image_ids=frozenset(wool)))
        assert sorted(h.image_id for h in res.hits) == wool
        assert res.hits[0].exact
        assert searcher.search(query, k=5, filters=SearchFilters(image_ids=frozenset())).hits == []
    args = ["search", str(trained_library), str(other), "--text", "composition:wool", "--json"]
    assert cli_main([*args, "-k", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"] == "composition:wool"
    assert len(out["results"]) == len(wool)
    assert {r["metadata"]["composition"] for r in out["results"]} == {"wool"}
    assert all(not r["exact"] for r in out["results"])  # the silk query is not among them
    csv_out = trained_library.parent / "res.csv"
    assert cli_main([*args[:-1], "--csv", str(csv_out)]) == 0
    header, first = csv_out.read_text(encoding="utf-8").splitlines()[:2]
    assert header.endswith("article,supplier,composition,weight,width,price,season,notes,tags")
    assert ",Acme,wool," in first
