"""`winback segments|evaluate|batches|approve|reject` as a manager runs them."""

from __future__ import annotations

from pathlib import Path

from core.samplebook import demo_book_path
from tests.book.helpers import book_row, csv_bytes
from tests.cli.conftest import Winback
from tests.triggers.factories import SEGMENT_NAMES

NOW = "2026-09-24T15:00:00Z"
LATER = "2026-09-25T15:00:00Z"


def person(n: int, **cells: str) -> dict[str, str]:
    """A generic export row for person `n` (own loan number, email and phone)."""
    return book_row(loan_number=f"L{n}", email=f"person{n}@gmail.com",
                    phone=f"(415) 867-53{n:02d}", **cells)  # fmt: skip


def book(winback: Winback, tmp_path: Path) -> None:
    """Two rate-drop candidates at 5.5 %, one loan reaching 3 years, one stalled application."""
    rows = [
        person(1),  # 6.5 % funded 2021
        person(2, loan_amount="500000", property_value="700000"),
        person(3, note_rate="5.0", funded_date="2023-09-20", first_payment_date="2023-11-01"),
        person(
            4,
            loan_status="withdrawn",
            funded_date="",
            first_payment_date="",
            fallout_date="2026-06-26",
        ),
    ]
    path = tmp_path / "book.csv"
    path.write_bytes(csv_bytes(rows))
    report = winback.json("import", str(path), "--now", NOW)
    assert (report["loans_created"], report["rejected"]) == (4, 0)
    winback.json("rates", "set", "5.5", "--now", NOW)


def pending_rate_drop(winback: Winback) -> int:
    """The id of the pending rate-drop batch."""
    (batch,) = [b for b in winback.json("batches")["batches"] if b["trigger"] == "rate_drop"]
    assert batch["status"] == "pending_approval"
    return batch["id"]


def test_evaluate_creates_one_batch_per_trigger_and_nothing_the_second_time(
    winback: Winback, tmp_path: Path
) -> None:
    book(winback, tmp_path)
    first = winback.json("evaluate", "--now", NOW)["batches"]
    assert all(set(b) == {"id", "trigger", "segment", "size", "status"} for b in first)
    assert {b["trigger"]: (b["segment"], b["size"], b["status"]) for b in first} == {
        "rate_drop": ("refinance", 2, "pending_approval"),
        "loan_age": ("repeat_purchase", 1, "approved"),
        "fallout_anniversary": ("stalled", 1, "approved"),
    }
    assert winback.json("evaluate", "--now", NOW) == {"batches": []}
    assert winback.json("evaluate", "--now", LATER) == {"batches": []}
    listed = winback.json("batches")["batches"]
    assert sorted(b["id"] for b in listed) == sorted(b["id"] for b in first)
    for row in listed:
        assert {"id", "trigger", "segment", "size", "status", "created_at", "decided_by"} <= set(
            row
        )
        assert row["created_at"].startswith("2026-09-24T15:00:00")
        assert row["decided_by"] == (None if row["trigger"] == "rate_drop" else "auto")


def test_approve_records_the_approver_and_refuses_a_second_decision(
    winback: Winback, tmp_path: Path
) -> None:
    book(winback, tmp_path)
    winback.json("evaluate", "--now", NOW)
    batch_id = pending_rate_drop(winback)
    approved = winback.json("approve", str(batch_id), "--by", "maria", "--now", NOW)
    assert (approved["id"], approved["status"], approved["decided_by"]) == (
        batch_id, "approved", "maria")  # fmt: skip
    assert approved["enrolled"] == 2
    again = winback("approve", str(batch_id), "--by", "sam", "--now", NOW, "--json")
    assert again.exit_code == 2
    assert again.stdout == ""
    assert again.stderr.strip() == f"error: batch {batch_id} is already approved by maria"
    rejected = winback("reject", str(batch_id), "--by", "sam", "--now", NOW)
    assert rejected.exit_code == 2 and "already approved by maria" in rejected.stderr
    (listed,) = [b for b in winback.json("batches")["batches"] if b["id"] == batch_id]
    assert (listed["status"], listed["decided_by"]) == ("approved", "maria")


def test_reject_lets_the_people_qualify_again(winback: Winback, tmp_path: Path) -> None:
    book(winback, tmp_path)
    winback.json("evaluate", "--now", NOW)
    batch_id = pending_rate_drop(winback)
    rejected = winback.json("reject", str(batch_id), "--by", "sam", "--now", NOW)
    assert (rejected["status"], rejected["decided_by"]) == ("rejected", "sam")
    (again,) = winback.json("evaluate", "--now", LATER)["batches"]
    assert (again["trigger"], again["size"], again["status"]) == (
        "rate_drop",
        2,
        "pending_approval",
    )
    assert winback("approve", "999999", "--by", "maria", "--now", NOW).exit_code == 2


def test_segments_counts_people_in_the_seven_segments(winback: Winback, tmp_path: Path) -> None:
    book(winback, tmp_path)
    counts = winback.json("segments", "--now", NOW)["segments"]
    assert set(counts) == SEGMENT_NAMES
    assert counts == {name: 0 for name in SEGMENT_NAMES} | {
        "refinance": 2,
        "repeat_purchase": 1,
        "stalled": 1,
    }
    # Enrolled people still count: segments skip cooldown and active enrollment.
    winback.json("evaluate", "--now", NOW)
    assert winback.json("segments", "--now", NOW)["segments"] == counts


def test_approving_after_the_rate_moved_is_refused_and_the_batch_stays_expired(
    winback: Winback, tmp_path: Path
) -> None:
    book(winback, tmp_path)
    winback.json("evaluate", "--now", NOW)
    batch_id = pending_rate_drop(winback)
    winback.json("rates", "set", "6.0", "--now", LATER)

    refused = winback("approve", str(batch_id), "--by", "maria", "--now", LATER)

    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr.strip() == (
        f"error: rates moved from 5.50 % to 6.00 % since batch {batch_id} was made: "
        "run `winback evaluate` for a fresh batch"
    )
    # The expiry was committed although the approval was refused; nobody was enrolled.
    (listed,) = [b for b in winback.json("batches")["batches"] if b["id"] == batch_id]
    assert (listed["status"], listed["decided_by"]) == ("expired", "expiry")
    for n in (1, 2):
        (person,) = winback.json("whois", f"person{n}@gmail.com")["contacts"]
        assert person["enrollments"] == []
    again = winback("approve", str(batch_id), "--by", "maria", "--now", LATER)
    assert again.stderr.strip() == f"error: batch {batch_id} is already expired by expiry"


def test_approve_says_how_many_already_walk_which_track(winback: Winback, tmp_path: Path) -> None:
    """A broker who ranks stalled applications above rate drops: one member went that way."""
    book(winback, tmp_path)
    # Person 5: a refinance candidate whose withdrawn application turns 90 days old tomorrow.
    application = book_row(
        loan_number="L5b", email="person5@gmail.com", loan_status="withdrawn",
        funded_date="", first_payment_date="", fallout_date="2026-06-27",
    )  # fmt: skip
    rows = [person(5), application]
    path = tmp_path / "more.csv"
    path.write_bytes(csv_bytes(rows))
    winback.json("import", str(path), "--now", NOW)
    config = tmp_path / "winback.toml"
    config.write_text(
        "[triggers]\npriority = ['fallout_anniversary', 'rate_drop', 'loan_age', "
        "'closing_anniversary', 'arm_reset', 'pmi_removal', 'fha_mip']\n"
    )
    env = {"WINBACK_CONFIG": str(config)}
    winback.json("evaluate", "--now", NOW, env=env)
    batch_id = pending_rate_drop(winback)
    (stalled,) = winback.json("evaluate", "--now", LATER, env=env)["batches"]
    assert (stalled["trigger"], stalled["size"]) == ("fallout_anniversary", 1)

    approved = winback("approve", str(batch_id), "--by", "maria", "--now", LATER, env=env)
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.strip() == (
        f"batch {batch_id} approved by maria: 2 people enrolled; 1 already on the stalled track"
    )
    (listed,) = [b for b in winback.json("batches")["batches"] if b["id"] == batch_id]
    assert (listed["size"], listed["status"]) == (3, "approved")


def test_approve_json_carries_who_already_walks_a_track(winback: Winback, tmp_path: Path) -> None:
    book(winback, tmp_path)
    winback.json("evaluate", "--now", NOW)
    approved = winback.json("approve", str(pending_rate_drop(winback)), "--by", "maria",
                            "--now", NOW)  # fmt: skip
    assert (approved["enrolled"], approved["already_on_track"]) == (2, {})


SAMPLE_DAY = "2026-12-03T15:00:00Z"  # the bundled history ends 2026-09-24 at 7.03 %
BORROWER = "brandonestes456@gmail.com"  # 8.25 % since 2024, an LTV now below 80 %


def test_on_the_sample_book_the_refinance_batch_keeps_the_borrower_the_pmi_batch_would_take(
    winback: Winback,
) -> None:
    """Before the priority, the auto-approved pmi_removal batch of the same evaluation enrolled
    this borrower first, and approving the refinance batch said "0 people enrolled"."""
    imported = winback.json("import", str(demo_book_path()), "--now", SAMPLE_DAY)
    assert imported["rejected"] == 0
    winback.json("rates", "load", "bundled", "--now", SAMPLE_DAY)

    evaluated = winback("evaluate", "--now", SAMPLE_DAY)

    assert evaluated.exit_code == 0, evaluated.output
    (borrower,) = winback.json("whois", BORROWER)["contacts"]
    assert borrower["enrollments"] == []  # not taken by the auto-approved pmi_removal batch
    (refinance,) = [b for b in winback.json("batches")["batches"] if b["trigger"] == "rate_drop"]
    assert (refinance["size"], refinance["status"]) == (1, "pending_approval")  # the borrower
    (pmi_line,) = [line for line in evaluated.stdout.splitlines() if "pmi_removal" in line]
    assert pmi_line.endswith("approved; 1 person already in a pending rate_drop batch")
    batch_id = refinance["id"]

    approved = winback("approve", str(batch_id), "--by", "maria", "--now", SAMPLE_DAY)

    assert approved.stdout.strip() == f"batch {batch_id} approved by maria: 1 person enrolled"
    (borrower,) = winback.json("whois", BORROWER)["contacts"]
    assert [(e["track"], e["status"]) for e in borrower["enrollments"]] == [("refinance", "active")]
