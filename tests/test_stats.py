"""The funnel (core.stats) over a hand-made book whose every count is known, on both backends.

The people (NOW is Thursday 2026-09-24 18:00 UTC; the default period is the last 30 days):

- Pia (Alice's, refinance, enrolled 10 days ago): a delivered text she answers 5 days ago (claimed
  12 minutes later), an email she opens (and a scanner "clicks"); a new loan funded 3 days ago.
- Ravi (Alice's, refinance, 20 days ago): a text the carrier gave up on, a sandboxed email whose
  only open is Apple's proxy but which he clicks; he visits his savings page, then texts STOP.
- Sam (Bob's, an old repeat-purchase enrollment 200 days ago, refinance 40 days ago): an email
  40 days ago and one 25 days ago; he texts 2 days ago (no text was sent to him: the reply goes
  to his latest enrollment, the refinance one), claimed 30 minutes later.
- Quinn (repeat purchase 5 days ago; the loan has no LO, Quinn's own LO is Bob): two suppressed
  touches (no consent, bad address), one refused, one answer lost, one still scheduled; a loan
  funded the day of enrolling (not counted) and the 2024 one.
- Uma (nobody's, repeat purchase 1 day ago): a call task and a scheduled text.
- Vic (Alice's, repeat purchase 100 days ago): a text 99 days ago he answered 60 days ago; the
  reply was claimed 2 days ago.
- Outside the funnel: a person never enrolled who opts out, a stranger's reply, and a text to
  Ravi stamped after NOW.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from core.attribution.service import credit_funded_loans
from core.batches.models import APPROVED, Batch
from core.book.models import Contact, Loan
from core.cards.actions import claim_reply
from core.inbound.models import Engagement
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message
from core.outreach.optout import record_opt_out
from core.stats import COLUMNS, Funnel, funnel, parse_since
from tests.inbound.stored import received
from tests.outreach import NOW
from tests.triggers.factories import make_contact, make_enrollment, make_lo, make_loan

_TOOK = (outbox.SENT, outbox.SANDBOX, outbox.DELIVERED, outbox.UNDELIVERED, outbox.UNKNOWN)


def ago(days: float = 0, **parts: float) -> datetime:
    """NOW minus a while."""
    return NOW - timedelta(days=days, **parts)


def _batch(session: Session, trigger: str, segment: str) -> Batch:
    batch = Batch(trigger=trigger, segment=segment, status=APPROVED, size=0,
                  created_at=ago(300), decided_at=ago(300), decided_by="manager")  # fmt: skip
    session.add(batch)
    session.flush()
    return batch


def _enroll(
    session: Session,
    contact: Contact,
    loan: Loan,
    batch: Batch,
    at: datetime,
    status: str = "active",
) -> Enrollment:
    return make_enrollment(session, contact, loan, batch, at, status=status)


def _touch(
    session: Session, enrollment: Enrollment, step: int, channel: str, status: str,
    at: datetime, rule: str | None = None,
) -> Message:  # fmt: skip
    message = Message(
        enrollment_id=enrollment.id, contact_id=enrollment.contact_id, step=step,
        channel=channel, template="intro", status=status, due_at=at, rule=rule,
        sent_at=at if status in _TOOK else None, updated_at=at,
    )  # fmt: skip
    session.add(message)
    session.flush()
    return message


def _hit(session: Session, kind: str, message: Message | None, at: datetime, *,
         machine: bool = False, member: int | None = None) -> None:  # fmt: skip
    session.add(Engagement(
        kind=kind, message_id=message.id if message else None, batch_member_id=member,
        contact_id=message.contact_id if message else None, at=at, machine=machine,
        machine_reason="apple_privacy_proxy" if machine else None,
    ))  # fmt: skip
    session.flush()


def build_book(session: Session) -> dict[str, Any]:
    """The people of the module docstring; their contact ids by first name."""
    alice = make_lo(session, email="alice@broker.com", name="Alice Adams")
    bob = make_lo(session, email="bob@broker.com", name="Bob Baker")
    refi, repeat = (
        _batch(session, "rate_drop", "refinance"),
        _batch(session, "loan_age", "repeat_purchase"),
    )

    def person(name: str, lo: Any) -> tuple[Contact, Loan]:
        contact = make_contact(session, lo=lo, first_name=name)
        return contact, make_loan(session, contact)

    pia, pia_loan = person("Pia", alice)
    e = _enroll(session, pia, pia_loan, refi, ago(10))
    text = _touch(session, e, 1, "sms", outbox.DELIVERED, ago(10))
    email = _touch(session, e, 2, "email", outbox.SENT, ago(8))
    _hit(session, "open", email, ago(7))
    _hit(session, "open", email, ago(6))  # a second open of the same email is the same email
    _hit(session, "click", email, ago(8), machine=True)
    reply = received(session, sender=pia.phone, body="Yes call me", contacts=[pia], now=ago(5))
    assert reply.message_id == text.id
    claim_reply(session, reply_id=reply.id, by="U0ALICE", now=ago(5) + timedelta(minutes=12))
    make_loan(session, pia, funded=ago(3).date())

    ravi, ravi_loan = person("Ravi", alice)
    e = _enroll(session, ravi, ravi_loan, refi, ago(20))
    _touch(session, e, 1, "sms", outbox.UNDELIVERED, ago(20))
    email = _touch(session, e, 2, "email", outbox.SANDBOX, ago(15))
    # As the tracking routes record them: with the batch member (Pia's above go by the message).
    _hit(session, "open", email, ago(15), machine=True, member=e.batch_member_id)
    _hit(session, "click", email, ago(14, hours=23), member=e.batch_member_id)
    _hit(session, "visit", None, ago(14, hours=23), member=e.batch_member_id)
    _touch(session, e, 3, "sms", outbox.SENT, NOW + timedelta(days=1))  # after NOW: not yet
    record_opt_out(session=session, contact=ravi, channel="sms", source="sms_opt_out/STOP",
                   by="borrower", now=ago(14))  # fmt: skip

    sam, sam_loan = person("Sam", bob)
    _enroll(session, sam, sam_loan, repeat, ago(200), status="completed")
    e = _enroll(session, sam, sam_loan, refi, ago(40))
    _touch(session, e, 1, "email", outbox.SENT, ago(40))
    _touch(session, e, 2, "email", outbox.SENT, ago(25))
    reply = received(session, sender=sam.phone, body="what rate?", contacts=[sam], now=ago(2))
    assert reply.message_id is None  # no text went to Sam: the reply is his latest enrollment's
    claim_reply(session, reply_id=reply.id, by="U0BOB", now=ago(2) + timedelta(minutes=30))

    quinn = make_contact(session, lo=bob, first_name="Quinn")
    quinn_loan = make_loan(session, quinn, lo_id=None)
    e = _enroll(session, quinn, quinn_loan, repeat, ago(5))
    _touch(session, e, 1, "sms", outbox.SUPPRESSED, ago(5), rule="no_consent")
    _touch(session, e, 2, "email", outbox.SUPPRESSED, ago(4), rule="bad_address")
    _touch(session, e, 3, "sms", outbox.FAILED, ago(3), rule="provider_refused")
    _touch(session, e, 4, "sms", outbox.UNKNOWN, ago(3), rule="answer_lost")
    _touch(session, e, 5, "email", outbox.SCHEDULED, NOW + timedelta(days=3))
    make_loan(session, quinn, funded=ago(5).date())  # funded the day of enrolling: not ours

    uma, uma_loan = person("Uma", None)
    e = _enroll(session, uma, uma_loan, repeat, ago(1))
    _touch(session, e, 1, "sms", outbox.SCHEDULED, NOW + timedelta(hours=2))
    _touch(session, e, 2, "call_task", outbox.TASK_OPEN, ago(1))

    vic, vic_loan = person("Vic", alice)
    e = _enroll(session, vic, vic_loan, repeat, ago(100))
    _touch(session, e, 1, "sms", outbox.SENT, ago(99))
    reply = received(session, sender=vic.phone, body="later", contacts=[vic], now=ago(60))
    claim_reply(session, reply_id=reply.id, by="U0ALICE", now=ago(2))

    never = make_contact(session, lo=alice, first_name="Nora")
    record_opt_out(session=session, contact=never, channel="email", source="unsubscribe",
                   by="borrower", now=ago(3))  # fmt: skip
    received(session, sender="+13125550111", body="who is this?", now=ago(1))
    # The import that brought the new loans credits them (Quinn's: no touch went out before).
    credit_funded_loans(session=session, contact_ids=[pia.id, quinn.id], now=NOW, window_days=120)
    return {"pia": pia.id, "ravi": ravi.id, "sam": sam.id, "quinn": quinn.id}


def counts(row: dict[str, Any]) -> dict[str, int]:
    """The SPEC's columns of one JSON row."""
    return {column: row[column] for column in COLUMNS}


def by_group(result: Funnel) -> dict[str, dict[str, Any]]:
    """JSON rows by group."""
    return {row["group"]: row for row in result.as_json()["rows"]}


def cols(**given: int) -> dict[str, int]:
    """A row's columns: the ones named, 0 for the rest."""
    return {column: given.get(column, 0) for column in COLUMNS}


REFINANCE_30D = cols(enrolled=2, sent=5, delivered=1, failed=1, opened=1, clicked=1, replied=2,
                     claimed=2, funded=1, opted_out=1)  # fmt: skip
REPEAT_30D = cols(enrolled=2, failed=1, suppressed=2, claimed=1)


def test_every_column_by_segment_over_30_days(session: Session) -> None:
    build_book(session)

    result = funnel(session, since=parse_since("30d", NOW), by="segment", now=NOW, period="30d")
    payload = result.as_json()

    assert payload["since"] == "30d" and payload["by"] == "segment"
    rows = by_group(result)
    assert list(rows) == ["refinance", "repeat_purchase"]
    assert counts(rows["refinance"]) == REFINANCE_30D
    assert counts(rows["repeat_purchase"]) == REPEAT_30D
    assert counts(payload["totals"]) == cols(
        enrolled=4, sent=5, delivered=1, failed=2, suppressed=2, opened=1, clicked=1, replied=2,
        claimed=3, funded=1, opted_out=1,
    )  # fmt: skip


def test_the_extras_beside_the_columns(session: Session) -> None:
    build_book(session)

    result = funnel(session, since=parse_since("30d", NOW), by="segment", now=NOW)
    refinance, repeat = by_group(result)["refinance"], by_group(result)["repeat_purchase"]
    totals = result.as_json()["totals"]

    # Apple's proxy opened Ravi's email and a scanner clicked Pia's: shown apart, not counted.
    assert (refinance["machine_opened"], refinance["machine_clicked"]) == (1, 1)
    assert refinance["visited"] == 1 and refinance["reached"] == 3
    assert refinance["sent_by_channel"] == {"sms": 2, "email": 3}
    assert repeat["suppressed_by_rule"] == {"bad_address": 1, "no_consent": 1}
    assert repeat["unknown"] == 1 and repeat["sent"] == 0
    assert refinance["median_minutes_to_claim"] == 21.0  # 12 and 30 minutes
    assert totals["median_minutes_to_claim"] == 30.0  # and Vic's 58 days
    assert refinance["rates"]["reply"] == round(2 / 3, 4)
    assert refinance["rates"]["open"] == round(1 / 3, 4)  # one of three emails
    assert refinance["rates"]["claim"] == 1.0
    # Vic's claim is in the period, his reply is not: the claim rate stays within the replies.
    assert (totals["claimed"], totals["replied_claimed"], totals["replied"]) == (3, 2, 2)
    assert totals["rates"]["claim"] == 1.0
    assert repeat["rates"]["reply"] is None  # nobody reached: nothing to divide by
    assert (
        totals["group"] == "total" and totals["suppressed_by_rule"] == repeat["suppressed_by_rule"]
    )


def test_by_trigger_matches_the_batches(session: Session) -> None:
    build_book(session)

    rows = by_group(funnel(session, since=parse_since("30d", NOW), by="trigger", now=NOW))

    assert list(rows) == ["loan_age", "rate_drop"]
    assert counts(rows["rate_drop"]) == REFINANCE_30D
    assert counts(rows["loan_age"]) == REPEAT_30D


def test_by_loan_officer_falls_back_to_the_persons_own(session: Session) -> None:
    build_book(session)

    result = funnel(session, since=parse_since("30d", NOW), by="lo", now=NOW)
    rows = result.as_json()["rows"]

    assert [(row["group"], row["name"]) for row in rows] == [
        ("alice@broker.com", "Alice Adams"), ("bob@broker.com", "Bob Baker"), ("unassigned", ""),
    ]  # fmt: skip
    alice, bob, nobody = (counts(row) for row in rows)
    assert alice == cols(enrolled=2, sent=4, delivered=1, failed=1, opened=1, clicked=1,
                         replied=1, claimed=2, funded=1, opted_out=1)  # fmt: skip
    # Quinn's loan has no LO, so Quinn's own (Bob) counts them.
    assert bob == cols(enrolled=1, sent=1, failed=1, suppressed=2, replied=1, claimed=1)
    assert nobody == cols(enrolled=1)


def test_all_time_and_ninety_days(session: Session) -> None:
    build_book(session)

    everything = funnel(session, since=parse_since("all", NOW), by="segment", now=NOW)
    ninety = by_group(funnel(session, since=parse_since("90d", NOW), by="segment", now=NOW))

    assert everything.as_json()["since"] == "all" and everything.as_json()["from"] is None
    rows = by_group(everything)
    assert counts(rows["refinance"]) == {**REFINANCE_30D, "enrolled": 3, "sent": 6}
    # Vic's enrollment, text and reply are older than 90 days... except the reply (60 days).
    assert counts(rows["repeat_purchase"]) == {**REPEAT_30D, "enrolled": 4, "sent": 1,
                                               "replied": 1}  # fmt: skip
    assert counts(ninety["repeat_purchase"]) == {**REPEAT_30D, "replied": 1}
    assert counts(ninety["refinance"]) == {**REFINANCE_30D, "enrolled": 3, "sent": 6}


def test_seven_days_and_an_earlier_now(session: Session) -> None:
    build_book(session)

    week = by_group(funnel(session, since=parse_since("7d", NOW), by="segment", now=NOW))
    then = ago(4, hours=12)  # after Pia's reply, before her funding and Quinn's refusal
    earlier = by_group(funnel(session, since=None, by="segment", now=then))

    assert counts(week["refinance"]) == cols(replied=2, claimed=2, funded=1, opened=1)
    assert counts(earlier["refinance"]) == {**REFINANCE_30D, "enrolled": 3, "sent": 6,
                                            "replied": 1, "claimed": 1, "funded": 0}  # fmt: skip
    # Uma is not enrolled yet, Vic's claim is still to come.
    assert counts(earlier["repeat_purchase"]) == cols(enrolled=3, sent=1, suppressed=1, replied=1)
    assert earlier["repeat_purchase"]["replied_claimed"] == 0
    assert earlier["repeat_purchase"]["rates"]["claim"] == 0.0


def test_an_empty_book(session: Session) -> None:
    result = funnel(session, since=parse_since("30d", NOW), by="lo", now=NOW).as_json()

    assert result["rows"] == []
    assert counts(result["totals"]) == cols()
    assert result["totals"]["median_minutes_to_claim"] is None


def test_an_unknown_grouping_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="segment, trigger or lo"):
        funnel(session, since=None, by="officer", now=NOW)


# --- parse_since ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        (" 30D ", NOW - timedelta(days=30)),
        ("90d", NOW - timedelta(days=90)),
        ("ALL", None),
        ("2026-09-01", datetime(2026, 9, 1, tzinfo=UTC)),
        ("2026-09-01T08:00:00-07:00", datetime(2026, 9, 1, 15, tzinfo=UTC)),
    ],
)
def test_parse_since_accepts(text: str, expected: datetime | None) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["30", "3od", "14d", "last week", "", "2026-13-01"])
def test_parse_since_refuses_with_the_accepted_values(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_since(text, NOW)
    message = str(refused.value)
    assert "7d, 30d, 90d, all or a date" in message and "\n" not in message


def test_parse_since_refuses_the_future() -> None:
    with pytest.raises(ValueError, match="after now"):
        parse_since("2027-01-01", NOW)


@given(st.text(max_size=60))
def test_parse_since_wild_strings_raise_only_value_error(text: str) -> None:
    try:
        start = parse_since(text, NOW)
    except ValueError as refused:
        assert "\n" not in str(refused)
        return
    assert start is None or (start.tzinfo is not None and start <= NOW)
