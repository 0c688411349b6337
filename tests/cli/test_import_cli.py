"""`winback import` as an operations person runs it."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from core.attribution.models import FundedCredit
from core.book.models import Contact, Loan
from core.db import make_engine
from core.outreach import models as outbox
from tests.book.helpers import book_row, csv_bytes
from tests.outreach import NOW as OUTREACH_NOW
from tests.outreach import sessions_for
from tests.test_stats import _batch, _touch, ago
from tests.triggers.factories import make_contact, make_enrollment, make_loan

NOW_ISO = OUTREACH_NOW.isoformat()

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


def test_the_configured_attribution_window_decides_what_an_import_credits(
    winback, tmp_path: Path
) -> None:
    sessions = sessions_for(winback.database_url)
    with sessions() as session, session.begin():
        batch = _batch(session, "rate_drop", "refinance")
        people = []
        for days in (20, 60):  # their one text went out this many days before the funding
            contact = make_contact(session)
            enrollment = make_enrollment(session, contact, make_loan(session, contact), batch,
                                         ago(days + 5))  # fmt: skip
            _touch(session, enrollment, 1, "sms", outbox.DELIVERED, ago(days + 5))
            people.append(contact.email)
    sessions.kw["bind"].dispose()
    funded = (ago(0) - timedelta(days=5)).date().isoformat()
    rows = [book_row(loan_number=f"NEW-{n}", email=email or "", phone="", funded_date=funded,
                     application_date="", first_payment_date="")
            for n, email in enumerate(people)]  # fmt: skip
    config = tmp_path / "winback.toml"
    config.write_text("[attribution]\nwindow_days = 30\n")
    winback.json("import", str(write(tmp_path, rows)), "--now", NOW_ISO,
                 env={"WINBACK_CONFIG": str(config)})  # fmt: skip
    engine = make_engine(winback.database_url)
    with engine.connect() as connection:
        credited = connection.execute(select(FundedCredit.why)).scalars().all()
    engine.dispose()
    assert len(credited) == 1 and "funded 20 days after the last touch" in credited[0]
