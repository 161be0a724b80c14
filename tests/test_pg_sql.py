# ruff: noqa: F811 - pytest fixtures imported from backends are redefined as arguments
"""The SQL a team library's server gets: `catalogue.postgres` rewrites none; it turns ``?``
into ``$n`` with a tokenizer and refuses SQLite-only forms (issue 21 item 4)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from backends import create_library, location, pg_database, pg_server  # noqa: F401 - fixtures

from fabricsearch.catalogue import ModelInfo, jobprogress, schema_pg
from fabricsearch.catalogue.postgres import PgConnection, parse

# --- the tokenizer (no server needed) ------------------------------------------------------


def test_placeholders_become_numbered_and_nothing_else_changes() -> None:
    p = parse("SELECT a FROM t WHERE b = ? AND c LIKE '%?%' AND d = ?")
    assert p.text == "SELECT a FROM t WHERE b = $1 AND c LIKE '%?%' AND d = $2"
    assert p.params == 2
    assert parse("SELECT '50%'").text == "SELECT '50%'"  # no % is ever doubled


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 -- why? because\n, ?",
        "SELECT 1 /* a ? /* nested ? */ still ? */, ?",
        "SELECT 'it''s a ?', ?",
        "SELECT E'a \\' ?', ?",
        'SELECT "odd?name" FROM t WHERE x = ?',
        "SELECT $$ a ? $$, $tag$ ? $$ ? $tag$, ?",
    ],
)
def test_a_question_mark_in_a_comment_literal_or_identifier_is_kept(sql: str) -> None:
    p = parse(sql)
    assert p.params == 1
    assert p.text == sql[: sql.rindex("?")] + "$1" + sql[sql.rindex("?") + 1 :]


@pytest.mark.parametrize(
    ("sql", "form"),
    [
        ("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", "INSERT OR"),
        ("insert or ignore into failed (path) values (?)", "INSERT OR"),
        ("REPLACE INTO meta (key, value) VALUES (?, ?)", "REPLACE INTO"),
        ("INSERT /* x */ OR\n REPLACE INTO meta VALUES (?, ?)", "INSERT OR"),
        ("PRAGMA integrity_check", "PRAGMA"),
        ("SELECT 1; PRAGMA foreign_keys=ON", "PRAGMA"),
        ("BEGIN IMMEDIATE", "BEGIN IMMEDIATE"),
    ],
)
def test_sqlite_only_forms_are_refused(sql: str, form: str) -> None:
    with pytest.raises(sqlite3.ProgrammingError, match=f"SQLite-only form '{form}'") as err:
        parse(sql)
    assert "write it for both engines" in str(err.value)


def test_the_words_inside_literals_or_comments_are_not_refused() -> None:
    assert parse("SELECT 'INSERT OR REPLACE', 'PRAGMA' -- REPLACE INTO\n").params == 0
    assert parse("SELECT replace(a, 'x', 'y') FROM t").params == 0
    assert parse("BEGIN").text == "BEGIN"


def test_unterminated_literals_are_refused() -> None:
    for sql in ("SELECT 'abc", 'SELECT "abc', "SELECT /* x", "SELECT $$ x"):
        with pytest.raises(sqlite3.ProgrammingError, match="unterminated"):
            parse(sql)


def test_named_placeholders_become_numbered_once_per_name() -> None:
    """SQL written for one engine binds by name (``:name`` and a mapping, as sqlite3 does)."""
    p = parse("SELECT a FROM t WHERE b ~* :w OR c ~* :w AND d >= :lo0 AND e = ':x' -- :y\n", True)
    assert p.text == "SELECT a FROM t WHERE b ~* $1 OR c ~* $1 AND d >= $2 AND e = ':x' -- :y\n"
    assert p.names == ("w", "lo0")
    assert p.params == 0
    assert parse("SELECT :v::int", True).text == "SELECT $1::int"  # a cast stays a cast
    assert parse("SELECT x::text, ?", False).text == "SELECT x::text, $1"
    with pytest.raises(sqlite3.ProgrammingError, match="named parameters"):
        parse("SELECT :a, ?", True)


# --- on a server -----------------------------------------------------------------------------


def test_the_server_gets_the_text_unchanged(pg_database: str) -> None:
    conn = PgConnection(pg_database)
    try:
        assert conn.execute("SELECT '50%'").fetchone() == ("50%",)
        assert conn.execute("SELECT '50%', ?::text", ("x%",)).fetchone() == ("50%", "x%")
        assert conn.execute("SELECT ?::int -- or ?\n", (3,)).fetchone() == (3,)
        assert conn.execute("SELECT '?', ?::int", (4,)).fetchone() == ("?", 4)
        with pytest.raises(sqlite3.ProgrammingError, match="bindings"):
            conn.execute("SELECT ?::int", ())
        conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
        for sql in (
            "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
            "REPLACE INTO kv (k, v) VALUES (?, ?)",
        ):
            with pytest.raises(sqlite3.ProgrammingError, match="SQLite-only form"):
                conn.execute(sql, ("a", "b"))
            with pytest.raises(sqlite3.ProgrammingError, match="SQLite-only form"):
                conn.executemany(sql, [("a", "b")])
        assert conn.execute("SELECT COUNT(*) FROM kv").fetchone() == (0,)
        row = conn.execute("SELECT :a::int + :a::int, :b || '%:c'", {"a": 2, "b": "x", "c": 0})
        assert row.fetchone() == (4, "x%:c")
        with pytest.raises(sqlite3.ProgrammingError, match="binding parameter :b"):
            conn.execute("SELECT :a::int, :b::int", {"a": 1})
        with pytest.raises(sqlite3.ProgrammingError, match="bindings"):
            conn.execute("SELECT :a::int", (1,))  # a sequence binds ? only
    finally:
        conn.close()


def test_a_migration_with_a_semicolon_in_a_literal_runs(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = (
        schema_pg.SCHEMA_VERSION + 1,
        "test",
        "INSERT INTO meta (key, value) VALUES ('semi', 'a; b -- c');\n"
        "INSERT INTO meta (key, value) VALUES ('pct', '50%?');",
    )
    monkeypatch.setattr(schema_pg, "MIGRATIONS", [*schema_pg.MIGRATIONS, extra])
    monkeypatch.setattr(schema_pg, "SCHEMA_VERSION", extra[0])
    conn = PgConnection(pg_database)
    try:
        assert schema_pg.migrate(conn)[-1] == extra[0]
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        assert rows == {"semi": "a; b -- c", "pct": "50%?"}
    finally:
        conn.close()


def test_upserts_replace_on_both_engines(location: str, tmp_path: Path) -> None:  # noqa: F811
    """Every statement that was ``INSERT OR REPLACE``: written twice, the second wins."""
    with create_library(location) as lib:
        lib._put_meta("k", "one")
        lib._put_meta("k", "two")
        assert lib._meta("k") == "two"

        lib.record_failure("/photos/bad.jpg", "broken")
        lib.record_failure("/photos/bad.jpg", "still broken")
        assert [f.reason for f in lib.failed_files()] == ["still broken"]

        jobprogress.write(lib, "job", "a", 1, 10, "ann", 1.0)
        jobprogress.write(lib, "job", "b", 5, None, "bob", 2.0)
        rows = lib._query("SELECT stage, done, total, who FROM job_progress WHERE name = 'job'")
        assert rows == [("b", 5, None, "bob")]

        digest = hashlib.sha256(b"x").hexdigest()
        with lib.atomic():
            ids = [
                lib.add_image(f"/photos/{i}.png", f"{digest[:-1]}{i}", 1, 1.0, 8, 8, _palette())
                for i in range(2)
            ]
        assert ids[1] == ids[0] + 1  # the id of the new row, through RETURNING id
        weights = tmp_path / "v1.safetensors"
        weights.write_bytes(b"w" * 100)
        lib.add_model(ModelInfo("v1", "dvsh", 16, weights, time.time()))
        lib.add_codes("v1", ids, np.zeros((2, 2), np.uint8))
        lib.add_codes("v1", ids[:1], np.full((1, 2), 7, np.uint8))
        rows = lib._query("SELECT image_id, code FROM codes ORDER BY image_id")
        assert [(i, bytes(c)) for i, c in rows] == [(ids[0], b"\x07\x07"), (ids[1], b"\0\0")]

        if lib.team is not None:  # model_files: a team library's only
            weights.write_bytes(b"v" * 50)
            lib.team.upload_model_files(lib, ModelInfo("v1", "dvsh", 16, weights, 1.0))
            rows = lib._query("SELECT size FROM model_files WHERE name = 'v1.safetensors'")
            assert rows == [(50,)]


def _palette() -> np.ndarray:
    p = np.zeros((10, 4), np.float32)
    p[0] = (10.0, 100.0, 200.0, 1.0)
    return p


def test_identities_move_past_explicit_ids_and_never_back(pg_database: str) -> None:
    with create_library(pg_database) as lib:
        digest = hashlib.sha256(b"y").hexdigest()
        lib._execute(
            "INSERT INTO images (id, path, sha256, size, mtime, width, height, added, palette)"
            " VALUES (10, '/p/a.png', ?, 1, 1.0, 8, 8, 1.0, ?)",
            (digest, b"\0"),
        )
        lib._c.advance_identities()
        new = lib.add_image("/p/b.png", digest[:-1] + "x", 1, 1.0, 8, 8, _palette())
        assert new == 11
        lib._execute("DELETE FROM images WHERE id = ?", (new,))
        lib._c.advance_identities()  # the sequence is past every id: not moved back
        assert lib.add_image("/p/c.png", digest[:-1] + "z", 1, 1.0, 8, 8, _palette()) == 12
