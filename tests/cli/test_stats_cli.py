"""`winback stats [--since …] [--by …] [--json]` over the hand-made book of tests/test_stats.py."""

from __future__ import annotations

from typing import Any

import pytest

from core.outreach import models as outbox
from core.stats import BY
from tests.cli.conftest import Winback
from tests.inbound.stored import received
from tests.outreach import NOW, sessions_for
from tests.test_stats import _batch, _enroll, _touch, ago, build_book
from tests.triggers.factories import make_contact, make_loan

SPEC_KEYS = [
    "group", "enrolled", "sent", "delivered", "failed", "suppressed", "opened", "clicked",
    "replied", "claimed", "funded", "opted_out",
]  # fmt: skip
AT = ("--now", NOW.isoformat())


@pytest.fixture
def booked(winback: Winback) -> Winback:
    """The CLI over a committed copy of the hand-made book."""
    sessions = sessions_for(winback.database_url)
    with sessions() as session, session.begin():
        build_book(session)
    sessions.kw["bind"].dispose()
    return winback


def errors(result: Any) -> list[str]:
    """The non-blank lines on stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_json_keeps_the_spec_keys(booked: Winback) -> None:
    payload = booked.json("stats", *AT)

    assert list(payload)[:4] == ["since", "by", "rows", "totals"]
    assert (payload["since"], payload["by"]) == ("30d", "segment")
    for row in [*payload["rows"], payload["totals"]]:
        assert list(row)[: len(SPEC_KEYS)] == SPEC_KEYS
    refinance = next(row for row in payload["rows"] if row["group"] == "refinance")
    assert [refinance[key] for key in SPEC_KEYS[1:]] == [2, 5, 1, 1, 0, 1, 1, 2, 2, 1, 1]
    assert payload["totals"]["claimed"] == 3 and payload["totals"]["suppressed"] == 2


def test_json_by_lo_and_all_time(booked: Winback) -> None:
    payload = booked.json("stats", "--since", "all", "--by", "lo", *AT)

    assert (payload["since"], payload["by"], payload["from"]) == ("all", "lo", None)
    groups = [(row["group"], row["enrolled"]) for row in payload["rows"]]
    assert groups == [("alice@broker.com", 3), ("bob@broker.com", 3), ("unassigned", 1)]


def test_a_date_since(booked: Winback) -> None:
    payload = booked.json("stats", "--since", "2026-09-17", "--by", "trigger", *AT)

    assert payload["since"] == "2026-09-17"
    assert payload["from"] == "2026-09-17T00:00:00+00:00"
    rate_drop = next(row for row in payload["rows"] if row["group"] == "rate_drop")
    assert (rate_drop["enrolled"], rate_drop["replied"], rate_drop["funded"]) == (0, 2, 1)


def test_table_with_totals_and_rates(booked: Winback) -> None:
    result = booked("stats", "--by", "lo", *AT)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Funnel since 2026-08-25 (30d) to 2026-09-24, by lo"
    header, alice, bob, nobody, total = lines[1:6]
    assert header.split() == ["group", "enrolled", "sent", "delivered", "failed", "suppressed",
                              "opened", "clicked", "replied", "claimed", "funded", "opted",
                              "out"]  # fmt: skip
    assert alice.split() == ["Alice", "Adams", "2", "4", "1", "1", "0", "1", "1", "1", "2", "1",
                             "1"]  # fmt: skip
    assert bob.startswith("Bob Baker") and nobody.startswith("unassigned")
    assert total.split() == ["total", "4", "5", "1", "2", "2", "1", "1", "2", "3", "1", "1"]
    text = result.stdout
    assert "reply" in text and "66.7 % of people reached" in text
    assert "Median time from reply to claim: 30 min" in text
    assert "Suppressed by rule: bad_address 1, no_consent 1" in text
    assert "1 opened and 1 clicked only by machines" in text


def test_an_empty_book(winback: Winback) -> None:
    result = winback("stats", *AT)
    payload = winback.json("stats", *AT)

    assert result.exit_code == 0
    assert "Nothing happened in this period." in result.stdout
    assert payload["rows"] == [] and payload["totals"]["enrolled"] == 0


@pytest.mark.parametrize("since", ["3od", "30", "last month", "2026-02-30"])
def test_a_typo_in_since_is_one_line_and_exit_2(winback: Winback, since: str) -> None:
    result = winback("stats", "--since", since, *AT)

    assert result.exit_code == 2
    (line,) = errors(result)
    assert line.startswith("error: --since must be 7d, 30d, 90d, all or a date")
    assert repr(since) in line
    assert result.stdout == ""


def test_a_future_since_and_a_typo_in_by(winback: Winback) -> None:
    future = winback("stats", "--since", "2027-01-01", *AT)
    by = winback("stats", "--by", "officer", *AT)

    assert future.exit_code == 2 and errors(future) == [
        "error: --since 2027-01-01 is after now (2026-09-24)"
    ]
    names = ", ".join(BY[:-1]) + f" or {BY[-1]}"  # core's groupings, whatever they are now
    assert names.startswith("segment, trigger") and "lo" in BY
    assert by.exit_code == 2 and errors(by) == [f"error: --by must be {names}, not 'officer'"]


def test_template_tests_are_shown_beside_the_funnel(winback: Winback) -> None:
    sessions = sessions_for(winback.database_url)
    with sessions() as session, session.begin():
        batch = _batch(session, "rate_drop", "refinance")
        for n in range(7):
            contact = make_contact(session, first_name=f"Ann{n}")
            enrollment = _enroll(session, contact, make_loan(session, contact), batch, ago(5))
            text = _touch(session, enrollment, 1, "sms", outbox.DELIVERED, ago(5))
            text.variant = "a" if n < 4 else "b"
            if n in (0, 4):
                received(session, sender=contact.phone or "", body="yes", contacts=[contact],
                         now=ago(4))  # fmt: skip
    sessions.kw["bind"].dispose()

    payload = winback.json("stats", *AT)
    (test,) = payload["variants"]
    arms = {arm["variant"]: (arm["messaged"], arm["replied"]) for arm in test["arms"]}
    assert (test["experiment"], arms) == ("refinance/1", {"a": (4, 1), "b": (3, 1)})
    assert test["flag"] == "not enough data yet"
    shown = winback("stats", *AT).stdout
    assert "Template tests (A/B)" in shown
    assert "refinance step 1 (sms intro): a 4 (25.0 % replied) · b 3 (33.3 % replied)" in shown
    assert "not enough data yet (100 people per arm)" in shown
