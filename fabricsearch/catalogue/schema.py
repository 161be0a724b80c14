"""The catalogue schema as an ordered list of migrations, each applied once and recorded.

A migration is never edited once released; a schema change appends a new one. `migrate()`
runs the missing ones, each in its own transaction together with its row in
``schema_migrations``, so a crash mid-migration leaves the previous version intact.
"""

from __future__ import annotations

import sqlite3
import time

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
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
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
    inside its own explicit BEGIN IMMEDIATE … COMMIT.
    """
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
