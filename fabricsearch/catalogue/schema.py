"""The catalogue schema as an ordered list of migrations, each applied once and recorded.

A migration is never edited once released; a schema change appends a new one. `migrate()`
runs the missing ones, each in its own transaction together with its row in
``schema_migrations``, so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
import time

#: The file name of ``i.path`` in SQL: everything after the last slash or backslash (rtrim
#: strips the name's characters from the end, leaving the folder part).
_FILE_NAME_V2 = (
    "substr(i.path, length(rtrim(i.path, replace(replace(i.path, '/', ''), '\\', ''))) + 1)"
)
#: Migration 2's trigger that rebuilds one image's text-index row (frozen with migration 2).
_TEXT_TRIGGER_V2 = """
        CREATE TRIGGER fabric_text_{table}_{event} AFTER {event} ON {table} BEGIN
            DELETE FROM fabric_text WHERE rowid = {ref};
            INSERT INTO fabric_text (rowid, path, name, article, supplier, composition,
                                     season, notes, tags, coarse, fine)
                SELECT i.id, i.path, {name}, m.article, m.supplier, m.composition, m.season, m.notes,
                       m.tags, l.coarse, l.fine
                FROM images i LEFT JOIN metadata m ON m.image_id = i.id
                              LEFT JOIN labels l ON l.image_id = i.id
                WHERE i.id = {ref};
        END;
"""

#: Migration 5's backfill of ``models.kind`` from the version prefixes used until then
#: (shared by both engines; substr rather than LIKE, which is case-insensitive in SQLite).
MODEL_KIND_BACKFILL_V5 = """
        UPDATE models SET kind = 'automatic' WHERE substr(version, 1, 5) = 'auto-';
        UPDATE models SET kind = 'shipped' WHERE substr(version, 1, 11) = 'pretrained-';
        UPDATE models SET kind = 'adapted' WHERE substr(version, 1, 8) = 'adapted-';
"""

#: (version, name, SQL script). Versions are consecutive from 1.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial",
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE images (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            path     TEXT NOT NULL UNIQUE,
            sha256   TEXT NOT NULL UNIQUE,
            size     INTEGER NOT NULL,
            mtime    REAL NOT NULL,
            width    INTEGER NOT NULL,
            height   INTEGER NOT NULL,
            added    REAL NOT NULL,
            palette  BLOB NOT NULL,          -- float32 (10, 4), C order
            split    TEXT CHECK (split IN ('train', 'val', 'test'))
        );
        CREATE TABLE labels (
            image_id  INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
            coarse    TEXT,                  -- 'major/minor' or 'major'
            fine      TEXT,
            tightness REAL CHECK (tightness IS NULL OR (tightness >= 0 AND tightness <= 100)),
            who       TEXT,
            at        REAL NOT NULL
        );
        CREATE INDEX labels_coarse ON labels(coarse);
        CREATE TABLE models (
            version  TEXT PRIMARY KEY,
            method   TEXT NOT NULL,
            bits     INTEGER NOT NULL,
            path     TEXT NOT NULL,          -- relative to the library folder when inside it
            created  REAL NOT NULL,
            metrics  TEXT NOT NULL DEFAULT '{}',
            note     TEXT NOT NULL DEFAULT '',
            active   INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE codes (
            model_version TEXT NOT NULL REFERENCES models(version) ON DELETE CASCADE,
            image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            code          BLOB NOT NULL,     -- packed bits, big-endian (codes.pack_codes)
            PRIMARY KEY (model_version, image_id)
        ) WITHOUT ROWID;
        CREATE TABLE failed (
            path   TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            time   REAL NOT NULL
        );
        """,
    ),
    (
        2,
        "fabric metadata and text search",
        # Fabric records (catalogue/metadata.py) and an FTS5 index over them, the file path and
        # the labels (catalogue/textsearch.py). The index row of an image (rowid = image id) is
        # rebuilt by triggers whenever its image, labels or metadata row changes, so every
        # writer (import, labelling, taxonomy edits) keeps it current without knowing of it.
        # A PostgreSQL backend would use a tsvector column instead; the query parser is shared.
        f"""
        CREATE TABLE metadata (
            image_id    INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
            article     TEXT,
            supplier    TEXT,
            composition TEXT,
            weight      REAL CHECK (weight IS NULL OR weight > 0),   -- g/m2
            width       REAL CHECK (width IS NULL OR width > 0),     -- cm
            price       REAL CHECK (price IS NULL OR price >= 0),
            season      TEXT,
            notes       TEXT,
            tags        TEXT,                -- comma-separated
            who         TEXT,
            at          REAL NOT NULL
        );
        CREATE VIRTUAL TABLE fabric_text USING fts5(
            path, name, article, supplier, composition, season, notes, tags, coarse, fine,
            tokenize = 'unicode61 remove_diacritics 2'
        );
        INSERT INTO fabric_text (rowid, path, name, article, supplier, composition, season,
                                 notes, tags, coarse, fine)
            SELECT i.id, i.path, {_FILE_NAME_V2}, m.article, m.supplier, m.composition, m.season, m.notes,
                   m.tags, l.coarse, l.fine
            FROM images i LEFT JOIN metadata m ON m.image_id = i.id
                          LEFT JOIN labels l ON l.image_id = i.id;
        """
        + "".join(
            _TEXT_TRIGGER_V2.format(table=table, event=event, ref=ref, name=_FILE_NAME_V2)
            for table, key in (("images", "id"), ("labels", "image_id"), ("metadata", "image_id"))
            for event, ref in (
                ("INSERT", f"NEW.{key}"),
                ("UPDATE", f"NEW.{key}"),
                ("DELETE", f"OLD.{key}"),
            )
        ),
    ),
    (
        3,
        "label audit",
        # Every label change, field by field (who, when, old, new): concurrent edits of a team
        # library resolve last-writer-wins per field, and this says who overwrote what.
        # No foreign key: the history of a removed image stays. Values are text (tightness
        # as repr). Its PostgreSQL twin is in schema_pg.py.
        """
        CREATE TABLE label_audit (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            image_id INTEGER NOT NULL,
            field    TEXT NOT NULL,
            old      TEXT,
            new      TEXT,
            who      TEXT,
            at       REAL NOT NULL
        );
        CREATE INDEX label_audit_image ON label_audit(image_id, id);
        """,
    ),
    (
        4,
        "job progress",
        # The progress of a job holding one of the library's locks (`Library.exclusive`:
        # "training"), one row per lock, written at most about once a second and deleted at
        # its end, so a team library's other clients can show it (catalogue/jobprogress.py).
        # Its PostgreSQL twin is in schema_pg.py.
        """
        CREATE TABLE job_progress (
            name    TEXT PRIMARY KEY,
            stage   TEXT NOT NULL,
            done    INTEGER NOT NULL,
            total   INTEGER,
            who     TEXT,
            started REAL NOT NULL,
            updated REAL NOT NULL
        );
        """,
    ),
    (
        5,
        "model kind",
        # What a model is (`catalogue.library.MODEL_KINDS`): 'trained' on labels, 'automatic'
        # (the label-free head of autohead.py), 'shipped' (the pretrained default), 'adapted'
        # (self-supervised), 'imported'. It was a prefix of the version string until now
        # ("auto-", "pretrained-", "adapted-"), backfilled from it; a trained model whose
        # version merely starts like one is not mistaken for it any more. No CHECK: a new kind
        # must not need a table rebuild (SQLite cannot alter a constraint); add_model checks.
        # Its PostgreSQL twin is in schema_pg.py (the same statements).
        """
        ALTER TABLE models ADD COLUMN kind TEXT NOT NULL DEFAULT 'trained';
        """
        + MODEL_KIND_BACKFILL_V5,
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


def _refuse_postgresql(conn: sqlite3.Connection) -> None:
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        raise TypeError("a PostgreSQL catalogue's schema is schema_pg's (Library.backend)")


def current_version(conn: sqlite3.Connection) -> int:
    _refuse_postgresql(conn)
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
    ).fetchone()
    if row is None:
        return 0
    return int(
        conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    )


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply missing migrations in order; returns the versions applied.

    The connection must be in autocommit mode (isolation_level=None): each migration runs
    inside its own explicit BEGIN IMMEDIATE … COMMIT. A team library's connection
    (`catalogue.postgres.PgConnection`) is migrated by `schema_pg`, its twin (the library's
    `backend` chooses).
    """
    _refuse_postgresql(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied REAL NOT NULL)"
    )
    applied: list[int] = []
    have = current_version(conn)
    if have > SCHEMA_VERSION:
        raise RuntimeError(
            f"catalogue schema version {have} is newer than this fabricsearch ({SCHEMA_VERSION})"
        )
    for version, name, script in MIGRATIONS:
        if version <= have:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # executescript() would COMMIT first; split so the whole migration is one transaction.
            for statement in _split_sql(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _split_sql(script: str) -> list[str]:
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line.split("--", 1)[0] + ("\n" if "--" in line else "")
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
