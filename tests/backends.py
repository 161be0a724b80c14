"""The two catalogue backends for parametrised tests: a library folder (SQLite) and a team
library (PostgreSQL; docs/team-library.md).

`location` gives a fresh, empty place for a library: a folder, or the URL of a new database
on the test server. The server is ``$FABRICSEARCH_TEST_PG`` (``scripts/test.sh`` starts one
with ``scripts/postgres.sh``); when that is unset, the first test that needs it starts one
itself (and stops it at the end), so a targeted ``pytest tests/test_catalogue.py`` runs both
backends too. PostgreSQL tests skip, saying why, only when no server can be started (no
PostgreSQL and no way to install it) or psycopg is missing.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "FABRICSEARCH_TEST_PG"
BACKENDS = ("sqlite", "postgresql")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of the test server's maintenance database (``…/fabricsearch``)."""
    pytest.importorskip("psycopg", reason='psycopg is not installed (pip install -e ".[dev]")')
    url = os.environ.get(PG_ENV)
    started = False
    # A server of this session's own (its own state file): stopping it cannot stop anyone
    # else's.
    env = {**os.environ, "FABRICSEARCH_PG_STATE": f"/tmp/fabricsearch-pg-{uuid.uuid4().hex}.env"}
    if not url:
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        if proc.returncode != 0:
            pytest.skip(
                "PostgreSQL cannot be started here (scripts/postgres.sh start: "
                f"{proc.stderr.strip()[-300:]})"
            )
        url = proc.stdout.strip().splitlines()[-1]
        started = True
    yield url
    if started:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "postgres.sh"), "stop"], timeout=120, env=env
        )


def _admin(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    """URL of a new, empty database, dropped after the test."""
    name = "t_" + uuid.uuid4().hex[:16]
    with _admin(pg_server) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with _admin(pg_server) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where to create a library: a folder (sqlite) or a new database's URL (postgresql)."""
    if request.param == "sqlite":
        return str(tmp_path / "lib")
    return request.getfixturevalue("pg_database")


def create_library(location: str, **kwargs):  # type: ignore[no-untyped-def]
    """`Library.create` with "/" as a team library's photos root (tests use absolute paths)."""
    from fabricsearch.catalogue import Library

    if location.startswith("postgresql://"):
        kwargs.setdefault("photos_root", "/")
    return Library.create(location, **kwargs)
