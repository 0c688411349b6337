"""What a newcomer reads on a first run: the schema created, import summaries, no noise."""

# Fixtures are imported by name, so every test argument "redefines" them.

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.book.helpers import book_row, csv_bytes
from tests.conftest import POSTGRES_URL, _schema_url, need_postgres


def _winback(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `winback` in a process of its own, as a newcomer's terminal runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TWILIO_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all: a new file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    need_postgres()
    schema = f"wb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield _schema_url(schema)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def test_db_upgrade_says_what_it_created_then_that_it_is_current(empty_database: str) -> None:
    first = _winback(empty_database, "db", "upgrade")
    again = _winback(empty_database, "db", "upgrade")

    assert first.returncode == 0, first.stderr
    assert first.stderr.startswith("created the schema in ")
    assert "migrations applied" in first.stderr
    assert again.stderr.strip().endswith(")") and " is up to date (schema " in again.stderr
    for run in (first, again):
        assert "Context impl" not in run.stderr and "transactional DDL" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1


def test_an_import_that_migrates_sqlite_by_itself_prints_no_alembic_chatter(
    tmp_path: Path,
) -> None:
    book = tmp_path / "book.csv"
    book.write_bytes(csv_bytes([book_row()]))

    run = _winback(f"sqlite:///{tmp_path / 'new.db'}", "import", str(book))

    assert run.returncode == 0, run.stderr
    assert "Context impl" not in run.stderr and "alembic" not in run.stderr.lower()


def test_import_summaries_count_people_and_changes_in_plain_words(
    winback: Any, tmp_path: Path
) -> None:
    book = tmp_path / "book.csv"
    book.write_bytes(csv_bytes([book_row(), book_row(loan_number="L2")]))

    first = winback("import", str(book))
    again = winback("import", str(book))

    assert first.exit_code == 0, first.output
    assert "imported 2 rows (generic): 1 person new, 0 changed; 2 loans new, 0 changed;" in (
        first.stdout
    )
    assert "; 1 loan officer added;" in first.stdout  # the row names its LO
    assert again.stdout.startswith(
        "imported 2 rows (generic): 0 changed: the book already holds every row; 0 rejected"
    )
    assert "duplicate" not in again.stdout


def test_lo_list_and_segments_by_lo_name_every_loan_officer_aligned(
    winback: Any, tmp_path: Path
) -> None:
    book = tmp_path / "book.csv"
    rows = [book_row(lo_email="maria@broker.com", lo_name="Maria Lopez"),
            book_row(loan_number="L2", email="sam@example.com", phone="(415) 555-0123",
                     first_name="Sam", lo_email="maria@broker.com")]  # fmt: skip
    book.write_bytes(csv_bytes(rows))
    assert winback("import", str(book)).exit_code == 0
    added = winback("lo", "add", "--email", "zed@broker.com", "--name", "Zed Idle", "--nmls", "42")
    assert added.exit_code == 0

    listed = winback("lo", "list").stdout.splitlines()
    as_json = winback.json("lo", "list")["loan_officers"]
    by_lo = winback("segments", "--by-lo", "--now", "2026-09-24T18:00:00+00:00").stdout

    assert listed[0].split() == ["name", "email", "NMLS", "Slack", "people", "loans"]
    assert [line.split("  ")[0] for line in listed[1:]] == ["Maria Lopez", "Zed Idle"]
    assert len({len(line) for line in listed}) == 1  # right-aligned counts: one width
    assert [(o["name"], o["people"], o["loans"]) for o in as_json] == [
        ("Maria Lopez", 2, 2), ("Zed Idle", 0, 0)
    ]  # fmt: skip
    lines = by_lo.splitlines()
    assert lines[0].startswith("loan officer") and "refinance" in lines[0]
    assert [line.split("  ")[0] for line in lines[1:]] == ["everyone", "Maria Lopez", "Zed Idle"]
    assert len({len(line) for line in lines}) == 1
