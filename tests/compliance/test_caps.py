"""Frequency caps: counting recent messages, the exclusive edges, and the batch query."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.batches.models import Batch, BatchMember
from core.book.models import Contact, Loan
from core.compliance.caps import CapHold, RecentSends, check_caps
from core.outreach.chunks import recent_sends_for
from core.outreach.models import Enrollment, Message

NOW = datetime(2025, 7, 11, 18, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# --- RecentSends ------------------------------------------------------------------------


def test_counts_are_strictly_after_the_given_instant() -> None:
    sends = RecentSends([NOW - DAY, NOW - HOUR])
    assert sends.count_since(NOW - DAY) == 1
    assert sends.count_since(NOW - DAY - timedelta(microseconds=1)) == 2
    assert sends.oldest_since(NOW - DAY) == NOW - HOUR
    assert sends.oldest_since(NOW) is None


def test_sends_are_kept_oldest_first_and_a_new_one_is_counted() -> None:
    sends = RecentSends([NOW - HOUR, NOW - 3 * DAY, NOW - DAY])
    assert sends.sent_at == [NOW - 3 * DAY, NOW - DAY, NOW - HOUR]
    sends.record(NOW - 2 * HOUR)
    assert sends.count_since(NOW - 3 * HOUR) == 2


def test_with_two_in_the_window_a_one_per_day_cap_waits_for_the_newest() -> None:
    sends = RecentSends([NOW - 20 * HOUR, NOW - 2 * HOUR])
    assert sends.released_at(at=NOW, window=DAY, limit=1) == NOW + 22 * HOUR
    assert sends.released_at(at=NOW, window=DAY, limit=2) == NOW + 4 * HOUR
    assert sends.released_at(at=NOW, window=DAY, limit=3) == NOW


# --- check_caps -------------------------------------------------------------------------


def caps(sent: list[datetime], states: set[str], per_day: int = 1, per_week: int = 3):
    return check_caps(
        sends=RecentSends(sent), at=NOW, states=states, max_per_24h=per_day, max_per_7d=per_week
    )


def test_the_24h_cap_edge_is_exclusive() -> None:
    assert caps([NOW - DAY], set()) is None
    one_minute_short = NOW - DAY + timedelta(minutes=1)
    assert caps([one_minute_short], set()) == CapHold("cap_24h", NOW + timedelta(minutes=1))


def test_the_7_day_cap_edge_is_exclusive() -> None:
    three = [NOW - 7 * DAY, NOW - 5 * DAY, NOW - 3 * DAY]
    assert caps(three, set()) is None
    assert caps([*three[1:], NOW - 2 * DAY], set()) == CapHold("cap_7d", NOW + 2 * DAY)


def test_when_both_caps_bind_the_hold_lasts_until_both_release() -> None:
    sent = [NOW - 6 * DAY, NOW - 4 * DAY, NOW - 2 * HOUR]
    assert caps(sent, set()) == CapHold("cap_24h", NOW + DAY)


@pytest.mark.parametrize("state", ["FL", "OK", "MD"])
def test_state_caps_allow_three_messages_per_24h(state: str) -> None:
    two = [NOW - 20 * HOUR, NOW - 10 * HOUR]
    assert caps(two, {state}, per_day=5, per_week=9) is None
    three = [*two, NOW - HOUR]
    assert caps(three, {state}, per_day=5, per_week=9) == CapHold(
        f"cap_{state}_24h", NOW + 4 * HOUR
    )
    # A message exactly 24 h after the oldest of the three is allowed.
    assert caps([NOW - DAY, *three[1:]], {state}, per_day=5, per_week=9) is None


def test_other_states_have_no_state_cap() -> None:
    three = [NOW - 20 * HOUR, NOW - 10 * HOUR, NOW - HOUR]
    assert caps(three, {"CA", "NY"}, per_day=5, per_week=9) is None


def test_a_cap_of_zero_holds_with_no_end() -> None:
    assert caps([], set(), per_day=0) == CapHold("cap_24h", None)


# --- recent_sends_for (SQLite and PostgreSQL) -------------------------------------------


def _contact(session: Session, n: int) -> Contact:
    contact = Contact(first_name=f"Pat{n}", created_at=NOW, updated_at=NOW)
    session.add(contact)
    session.flush()
    return contact


def _enrollment(session: Session, contact: Contact, batch: Batch, n: int) -> Enrollment:
    loan = Loan(
        loan_number=f"L-{contact.id}-{n}",
        contact_id=contact.id,
        status="funded",
        funded_date=date(2020, 1, 1),
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(loan)
    session.flush()
    member = BatchMember(
        batch_id=batch.id,
        contact_id=contact.id,
        loan_id=loan.id,
        trigger="loan_age",
        occasion=f"o{n}",
        snapshot={},
        created_at=NOW,
    )
    session.add(member)
    session.flush()
    enrollment = Enrollment(
        contact_id=contact.id,
        batch_member_id=member.id,
        track="loan_age",
        status="completed",
        enrolled_at=NOW - 30 * DAY,
    )
    session.add(enrollment)
    session.flush()
    return enrollment


def _messages(session: Session, contact: Contact, rows: list[tuple[str, datetime | None]]) -> None:
    batch = Batch(trigger="loan_age", segment="all", status="approved", size=1, created_at=NOW)
    session.add(batch)
    session.flush()
    enrollment = _enrollment(session, contact, batch, len(rows))
    for step, (status, sent_at) in enumerate(rows):
        session.add(
            Message(
                enrollment_id=enrollment.id,
                contact_id=contact.id,
                step=step,
                channel="sms" if step % 2 else "email",
                template="intro",
                status=status,
                due_at=sent_at or NOW,
                sent_at=sent_at,
                updated_at=NOW,
            )
        )
    session.flush()


def test_recent_sends_counts_the_last_7_days_and_the_right_statuses(session: Session) -> None:
    pat, sam, quiet = (_contact(session, n) for n in range(3))
    _messages(
        session,
        pat,
        [
            ("sent", NOW - HOUR),
            ("delivered", NOW - 2 * DAY),
            ("sandbox", NOW - 3 * DAY),
            ("unknown", NOW - 7 * DAY + timedelta(minutes=1)),
            ("sent", NOW - 7 * DAY),  # exactly 7 days ago: outside
            ("delivered", NOW - 10 * DAY),
            ("failed", NOW - 2 * HOUR),
            ("suppressed", None),
            ("scheduled", None),
        ],
    )
    _messages(session, sam, [("sent", NOW - 4 * HOUR)])

    recent = recent_sends_for(session=session, contact_ids=[pat.id, sam.id, quiet.id], now=NOW)

    assert recent[pat.id].sent_at == [
        NOW - 7 * DAY + timedelta(minutes=1),
        NOW - 3 * DAY,
        NOW - 2 * DAY,
        NOW - HOUR,
    ]
    assert recent[sam.id].sent_at == [NOW - 4 * HOUR]
    assert recent[quiet.id].sent_at == []
    assert all(t.tzinfo is not None for t in recent[pat.id].sent_at)


def test_a_whole_batch_is_read_in_one_query(session: Session) -> None:
    contacts = [_contact(session, n) for n in range(3)]
    for contact in contacts:
        _messages(session, contact, [("sent", NOW - HOUR)])
    statements: list[str] = []
    connection = session.connection()

    def remember(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(connection, "before_cursor_execute", remember)
    try:
        recent = recent_sends_for(session=session, contact_ids=[c.id for c in contacts], now=NOW)
    finally:
        event.remove(connection, "before_cursor_execute", remember)
    assert len(statements) == 1
    assert all(sends.count_since(NOW - DAY) == 1 for sends in recent.values())
    assert recent_sends_for(session=session, contact_ids=[], now=NOW) == {}
