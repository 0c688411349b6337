"""`winback dispatch|tick|optout|whois|pause|resume` and the worker's schedule."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.runtime import build_runtime
from bot.worker import EVERY, build_scheduler
from tests.outreach import NOW, approved_book, sessions  # noqa: F401

AT = ["--now", NOW.isoformat()]


def test_dispatch_json_has_the_contract_keys_and_counts(
    winback: Any, sessions: sessionmaker[Session]
) -> None:
    approved_book(sessions, [{}, {}, {"sms_consent": "unknown"}])

    report = winback.json("dispatch", *AT)

    assert list(report)[:4] == ["sent", "held", "suppressed", "failed"]
    assert report["sent"] == 3  # two texts, and the third person's email at once
    assert report["held"] == {"cap_24h": 2}
    assert report["suppressed"] == {"no_sms_consent": 1}
    assert report["failed"] == 0
    again = winback.json("dispatch", *AT)
    assert (again["sent"], again["held"], again["suppressed"]) == (0, {}, {})


def test_optout_then_whois_shows_opted_out_and_nothing_more_is_sent(
    winback: Any, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{}])
    phone = book.contact(book.contacts[0]).phone or ""

    opted = winback.json("optout", phone.replace("+1", ""), "--by", "U_OPS")
    found = winback.json("whois", phone)
    report = winback.json("dispatch", *AT)

    assert opted["opted_out"] == book.contacts and opted["cancelled"] == 5
    (person,) = found["contacts"]
    assert person["phone"] == phone
    assert person["consent"]["sms"]["state"] == "opted_out"
    assert person["consent"]["email"]["state"] == "opted_out"
    assert {m["status"] for m in person["messages"]} == {"cancelled"}
    assert report["sent"] == 0


def test_whois_text_output_names_the_consent_state(
    winback: Any, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{}])
    email = book.contact(book.contacts[0]).email or ""

    result = winback("whois", email.upper())

    assert result.exit_code == 0
    assert "SMS consent granted" in result.stdout
    assert "email consent granted" in result.stdout
    assert "step 1 sms: scheduled" in result.stdout
    assert ": funded, 7.00 %, $400,000" in result.stdout  # as people read it, not "7.000"


def test_whois_shows_no_phone_line_for_someone_without_a_phone(
    winback: Any, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{"phone": None, "sms_consent": "unknown"}])
    email = book.contact(book.contacts[0]).email or ""

    lines = winback("whois", email).stdout.splitlines()

    assert not any(line.strip().startswith("phone") for line in lines)
    assert any(line.strip().startswith(f"email {email}") for line in lines)


def test_optout_of_something_that_is_not_an_address_fails_with_one_line(winback: Any) -> None:
    result = winback("optout", "call me maybe")

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: call me maybe: not a phone number or an email address"
    ]


def test_pause_holds_every_due_message_until_resume(
    winback: Any, sessions: sessionmaker[Session]
) -> None:
    approved_book(sessions, [{}, {}])

    assert winback.json("pause", "--by", "U_MANAGER", "--reason", "bad rate sheet")["paused"]
    held = winback.json("dispatch", *AT)
    assert winback.json("resume", "--by", "U_MANAGER") == {"paused": False, "by": "U_MANAGER"}
    released = winback.json("dispatch", *AT)

    assert held["sent"] == 0 and held["held"] == {"paused": 4}
    assert released["sent"] == 2 and released["held"] == {"cap_24h": 2}


def test_tick_runs_every_job_once(winback: Any, sessions: sessionmaker[Session]) -> None:
    approved_book(sessions, [{}])

    summary = winback.json("tick", "--no-fetch", *AT)

    assert summary["rates"] == {"skipped": "no feed"}
    assert summary["evaluation"]["evaluated"] is True
    assert summary["expired"] == [] and summary["recovered"] == []
    assert summary["dispatch"]["sent"] == 1
    assert summary["cards"] == {}  # nobody replied: no card to post


def test_tick_text_is_one_readable_line_per_step(
    winback: Any, sessions: sessionmaker[Session]
) -> None:
    approved_book(sessions, [{}])

    lines = winback("tick", "--no-fetch", *AT).stdout.splitlines()

    assert lines[0] == "rates: not fetched (no feed)"
    assert lines[1].startswith("evaluation: ran (first evaluation), ")
    assert "expired batches: none" in lines and "interrupted sends: none" in lines
    assert "cards: none due" in lines
    assert lines[-1].startswith("dispatch: sent 1, failed 0")
    assert not any("{" in line for line in lines)


def test_the_worker_schedules_every_job_once_at_a_time(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    scheduler = build_scheduler(build_runtime(NOW.isoformat()), threading.Event())

    jobs = {job.id: job for job in scheduler.get_jobs()}

    assert set(jobs) == {
        "cards", "dispatch", "recover", "expire", "evaluate", "fetch_rates", "digest",
    }  # fmt: skip
    assert jobs["cards"].trigger.interval.total_seconds() == 5
    assert jobs["dispatch"].trigger.interval.total_seconds() == 30 == EVERY["dispatch"]
    assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
