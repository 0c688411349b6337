"""`winback import` as an operations person runs it."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select

from core.book.models import Contact, Loan
from core.db import make_engine
from tests.book.helpers import book_row, csv_bytes

NOW = "2026-09-24T15:00:00Z"
KEYS = ["rows", "contacts_created", "contacts_updated", "loans_created", "loans_updated",
        "duplicates_merged", "rejected", "los_created", "warnings"]  # fmt: skip


def write(tmp_path: Path, rows: list[dict[str, str]], name: str = "book.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(csv_bytes(rows))
    return path


def people_and_loans(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        counts = (connection.scalar(select(func.count()).select_from(Contact.__table__)),
                  connection.scalar(select(func.count()).select_from(Loan.__table__)))  # fmt: skip
    engine.dispose()
    return counts


def test_import_twice_reports_nothing_new_the_second_time(winback, tmp_path: Path) -> None:
    rows = [book_row(loan_number=f"L{i}", email=f"p{i}@gmail.com") for i in range(12)]
    path = write(tmp_path, [*rows, book_row(loan_number="X", loan_status="??")])
    first = winback.json("import", str(path), "--now", NOW)
    assert list(first)[: len(KEYS)] == KEYS
    counts = (first["rows"], first["contacts_created"], first["loans_created"], first["rejected"])
    assert counts == (13, 12, 12, 1)
    second = winback.json("import", str(path), "--now", NOW)
    assert (second["contacts_created"], second["loans_created"], second["loans_updated"]) == (
        0,
        0,
        0,
    )
    assert people_and_loans(winback.database_url) == (12, 12)


def test_dry_run_reports_without_writing(winback, tmp_path: Path) -> None:
    path = write(tmp_path, [book_row()])
    report = winback.json("import", str(path), "--dry-run", "--now", NOW)
    assert (report["contacts_created"], report["loans_created"], report["dry_run"]) == (1, 1, True)
    assert people_and_loans(winback.database_url) == (0, 0)


def test_rejects_file_has_original_columns_line_and_reason(winback, tmp_path: Path) -> None:
    path = write(tmp_path, [book_row(), book_row(loan_number="L2", note_rate="")])
    out = tmp_path / "rejects.csv"
    winback.json("import", str(path), "--rejects", str(out), "--now", NOW)
    rows = list(csv.DictReader(out.open()))
    assert [(row["loan_number"], row["line"], row["reason"]) for row in rows] == [
        ("L2", "3", "note_rate is missing for a funded loan")]  # fmt: skip


def test_refused_file_is_one_error_line_exit_2_and_nothing_written(winback, tmp_path: Path) -> None:
    rows = [book_row(loan_number=f"L{i}", email=f"p{i}@gmail.com") for i in range(3000)]
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes(rows) + "L9,Jos\xe9,X,j@gmail.com\n".encode("latin-1"))
    out = tmp_path / "rejects.csv"
    result = winback("import", str(path), "--rejects", str(out), "--now", NOW)
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: ") and "not valid UTF-8" in result.stderr
    assert people_and_loans(winback.database_url) == (0, 0)
    assert not out.exists()


def test_missing_file_and_bad_format_are_one_line(winback, tmp_path: Path) -> None:
    missing = winback("import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and missing.stderr.startswith("error: cannot read")
    bad = winback("import", str(write(tmp_path, [book_row()])), "--format", "nosuch")
    assert bad.exit_code == 2 and "--format" in bad.stderr


def test_malformed_setting_names_itself(winback, tmp_path: Path) -> None:
    result = winback("import", "x.csv", env={"DATABASE_URL": "mysql://nope"})
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: setting DATABASE_URL names an unsupported database (mysql): use sqlite or "
        "postgresql"
    )


def test_lo_add_then_update(winback) -> None:
    created = winback.json("lo", "add", "--email", "Larry@Broker.com", "--name", "Larry Officer")
    assert (created["email"], created["created"]) == ("larry@broker.com", True)
    updated = winback.json("lo", "add", "--email", "larry@broker.com", "--name", "Larry Officer",
                           "--nmls", "123456", "--slack-channel", "C0123")  # fmt: skip
    assert (updated["id"], updated["created"], updated["nmls_id"]) == (
        created["id"],
        False,
        "123456",
    )
    bad = winback("lo", "add", "--email", "not-an-email", "--name", "X")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --email")
