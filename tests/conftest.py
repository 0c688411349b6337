"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is the real server (WINBACK_TEST_POSTGRES_URL, default the local `test` database
with trust auth). Each test run works in its own schema and drops it at the end, so runs never
see each other's rows. Without a server that half is skipped with the reason, unless
WINBACK_REQUIRE_POSTGRES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

import core.models  # noqa: F401 - every model, so create_all() builds the whole schema
from core.db import Base, make_engine
from core.migrate import alembic_config, upgrade

POSTGRES_URL = os.environ.get(
    "WINBACK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("WINBACK_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]

# Real tokens in a developer's shell must never reach a test.
for _name in list(os.environ):
    if _name.startswith(("SLACK_", "TWILIO_", "SMTP_", "FRED_")) or _name in (
        "DATABASE_URL",
        "RATE_FEED_URL",
        "WINBACK_CONFIG",
        "WINBACK_NOW",
    ):
        del os.environ[_name]


def _postgres_problem() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # the reason is shown in the skip message
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {type(exc).__name__}"
    return None


_POSTGRES_PROBLEM: str | bool | None = False


def need_postgres() -> None:
    """Skip (or, under CI, fail) when the PostgreSQL server cannot be reached."""
    global _POSTGRES_PROBLEM
    if _POSTGRES_PROBLEM is False:
        _POSTGRES_PROBLEM = _postgres_problem()
    if _POSTGRES_PROBLEM:
        if REQUIRE_POSTGRES:
            pytest.fail(f"{_POSTGRES_PROBLEM} and WINBACK_REQUIRE_POSTGRES=1")
        pytest.skip(str(_POSTGRES_PROBLEM))


def _schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


class _Database:
    """One isolated database: a SQLite file or a PostgreSQL schema."""

    def __init__(self, backend: str, tmp_dir: Path, migrate: bool) -> None:
        self.backend = backend
        self.schema = f"wb_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            self.url = f"sqlite:///{tmp_dir / (self.schema + '.db')}"
        else:
            need_postgres()
            admin = create_engine(POSTGRES_URL)
            with admin.begin() as connection:
                connection.execute(text(f"CREATE SCHEMA {self.schema}"))
            admin.dispose()
            self.url = _schema_url(self.schema)
        if migrate:
            upgrade(self.url)
        else:
            # create_all is much faster than replaying migrations; stamp so the app sees "current".
            engine = make_engine(self.url)
            Base.metadata.create_all(engine)
            engine.dispose()
            command.stamp(alembic_config(self.url), "head")

    def drop(self) -> None:
        if self.backend == "postgresql":
            admin = create_engine(POSTGRES_URL)
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A database built by the Alembic migrations, shared by this run's rollback tests."""
    database = _Database(request.param, tmp_path_factory.mktemp("db"), migrate=True)
    yield database.url
    database.drop()


@pytest.fixture(scope="session")
def engine(migrated_url: str) -> Iterator[Engine]:
    """An engine on the migrated database."""
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, commits included."""
    connection = engine.connect()
    outer = connection.begin()
    db_session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield db_session
    db_session.close()
    outer.rollback()
    connection.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of its own for a test that commits (CLI, workers)."""
    database = _Database(request.param, tmp_path, migrate=False)
    yield database.url
    database.drop()


@pytest.fixture
def other_install_url(tmp_path: Path) -> Iterator[str]:
    """A second PostgreSQL schema with Winback's tables: another install on the same server."""
    database = _Database("postgresql", tmp_path, migrate=False)
    yield database.url
    database.drop()


@pytest.fixture(scope="session")
def loopback() -> Iterator[HTTPServer]:
    """One loopback HTTP server on 127.0.0.1 (port 0), shared by the feed tests."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()
