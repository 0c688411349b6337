"""`winback replies [--unclaimed] [--json]`: warm replies stored by the real store_reply."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli.replies import trimmed, when_text
from core.inbound.models import Reply
from tests.cli.conftest import Winback
from tests.inbound.stored import received
from tests.outreach import NOW, sessions_for
from tests.triggers.factories import make_contact, make_lo


@pytest.fixture
def pacific(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This machine's time zone set to Los Angeles (the table speaks local time)."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _book(url: str) -> dict[str, int]:
    """Pat (in the book) texts twice and emails once; a stranger texts; one reply is claimed."""
    with sessions_for(url)() as session, session.begin():
        pat = make_contact(session, lo=make_lo(session), first_name="Pat", last_name="Quinn",
                           phone="+14155550123", email="pat.quinn@gmail.com")  # fmt: skip
        first = received(session, sender=pat.phone, body="Yes call me after 5",
                         contacts=[pat], now=NOW - timedelta(days=1, hours=2))  # fmt: skip
        received(session, sender="+13125550111", body="who is this?? 🤔",
                 now=NOW - timedelta(minutes=12))  # fmt: skip
        received(session, sender=pat.email, channel="email", contacts=[pat], now=NOW,
                 body="What rate could I get?\n\nOn Tue, Larry wrote: " + "blah " * 40)  # fmt: skip
        first.claimed_by, first.claimed_at = "U0LARRY", NOW - timedelta(days=1)
        return {"pat": pat.id, "claimed": first.id}


def test_table_newest_first_masked(winback: Winback, pacific: None) -> None:
    _book(winback.database_url)

    result = winback("replies", "--now", NOW.isoformat())

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["id", "received", "channel", "who", "address", "kind", "their",
                              "words", "state"]  # fmt: skip
    assert len(rows) == 3
    email, stranger, claimed = rows
    assert "just now" in email and "Pat Quinn" in email and "p***@g***.com" in email
    assert "question" in email and "unclaimed" in email
    assert "What rate could I get? On Tue, Larry wrote:" in email and "…" in email
    assert "12 min ago" in stranger and "not in the book" in stranger
    assert "+1312***0111" in stranger and "who is this?? 🤔" in stranger
    # 2026-09-23 16:00 UTC is 9:00 AM in Los Angeles.
    assert "yesterday 9:00 AM" in claimed and "claimed by U0LARRY" in claimed
    assert "interested" in claimed and "Yes call me after 5" in claimed
    assert "4155550123" not in result.stdout and "pat.quinn@gmail.com" not in result.stdout


def test_unclaimed_only(winback: Winback) -> None:
    ids = _book(winback.database_url)

    result = winback("replies", "--unclaimed")

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3  # header and the two unclaimed
    assert "U0LARRY" not in result.stdout
    listed = winback.json("replies", "--unclaimed")["replies"]
    assert ids["claimed"] not in [reply["id"] for reply in listed]
    assert {reply["state"] for reply in listed} == {"unclaimed"}


def test_json(winback: Winback) -> None:
    ids = _book(winback.database_url)

    replies = winback.json("replies")["replies"]

    assert [reply["channel"] for reply in replies] == ["email", "sms", "sms"]
    email, stranger, claimed = replies
    assert email["contact_id"] == ids["pat"] and email["name"] == "Pat Quinn"
    assert email["text"].startswith("What rate could I get?\n\nOn Tue")  # whole, not trimmed
    assert email["address"] == "p***@g***.com" and email["classification"] == "question"
    assert stranger["contact_id"] is None and stranger["name"] is None
    assert stranger["address"] == "+1312***0111"
    assert claimed["claimed_by"] == "U0LARRY" and claimed["state"] == "claimed"
    assert datetime.fromisoformat(claimed["claimed_at"]) == NOW - timedelta(days=1)
    assert datetime.fromisoformat(email["received_at"]) == NOW
    text = str(replies)
    assert "4155550123" not in text and "pat.quinn@gmail.com" not in text


def test_outcome_is_the_state(winback: Winback) -> None:
    ids = _book(winback.database_url)
    with sessions_for(winback.database_url)() as session, session.begin():
        reply = session.get(Reply, ids["claimed"])
        assert reply is not None
        reply.outcome, reply.outcome_at = "not_interested", NOW

    result = winback("replies")

    assert "not interested, by U0LARRY" in result.stdout
    assert winback.json("replies")["replies"][2]["outcome"] == "not_interested"


def test_nothing_yet(winback: Winback) -> None:
    result = winback("replies")
    assert result.exit_code == 0 and result.stdout.strip() == "No replies yet."
    assert winback("replies", "--unclaimed").stdout.strip() == "No unclaimed replies."
    assert winback.json("replies") == {"replies": []}


@given(st.text())
def test_their_words_fit_on_one_line(text: str) -> None:
    shown = trimmed(text)
    assert len(shown) <= 48 and "\n" not in shown and "\r" not in shown
    if len(" ".join(text.split())) <= 48:
        assert shown == " ".join(text.split())


def test_when_text_further_back(pacific: None) -> None:
    now = datetime(2026, 9, 24, 18, 0, tzinfo=UTC)
    assert when_text(now - timedelta(seconds=30), now) == "just now"
    assert when_text(now - timedelta(minutes=59), now) == "59 min ago"
    assert when_text(datetime(2025, 12, 31, 23, 0, tzinfo=UTC), now).startswith("Dec 31, 2025")
