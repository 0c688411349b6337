"""Funded attribution: a funded loan is credited once, to the outreach that preceded it.

Through the real import (core.flows.import_book reads a CSV export) and the real "Mark funded"
action of a claimed reply card, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.attribution.models import FundedCredit
from core.attribution.service import Walk, choose
from core.audit.models import AuditEvent
from core.batches.models import APPROVED, Batch
from core.book.models import Contact
from core.cards.actions import claim_reply, mark_funded
from core.flows import import_book
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message
from tests.book.helpers import book_row, csv_bytes
from tests.inbound.stored import received
from tests.outreach import NOW
from tests.triggers.factories import make_contact, make_enrollment, make_loan


def ago(days: float) -> datetime:
    """NOW minus some days."""
    return NOW - timedelta(days=days)


def day(days: float) -> str:
    """The ISO date `days` before NOW, as an export writes it."""
    return ago(days).date().isoformat()


def _enrolled(session: Session, contact: Contact, *, at: datetime, touches: list[float],
              trigger: str = "rate_drop") -> Enrollment:  # fmt: skip
    """An enrollment begun at `at` whose texts went out `touches` days before NOW."""
    batch = Batch(trigger=trigger, segment="refinance", status=APPROVED, size=1, created_at=at,
                  decided_at=at, decided_by="U_MANAGER")  # fmt: skip
    session.add(batch)
    session.flush()
    enrollment = make_enrollment(session, contact, make_loan(session, contact), batch, at)
    for step, days in enumerate(touches, start=1):
        session.add(Message(
            enrollment_id=enrollment.id, contact_id=contact.id, step=step, channel="sms",
            template="intro", status=outbox.DELIVERED, due_at=ago(days), sent_at=ago(days),
            updated_at=ago(days),
        ))  # fmt: skip
    session.add(Message(enrollment_id=enrollment.id, contact_id=contact.id, step=9,
                        channel="email", template="follow_up", status=outbox.SCHEDULED,
                        due_at=NOW + timedelta(days=3), updated_at=ago(1)))  # fmt: skip
    session.flush()
    return enrollment


def _import_funded(session: Session, contact: Contact, *, funded: str, applied: str = "",
                   number: str = "NEW-1") -> None:  # fmt: skip
    row = book_row(loan_number=number, email=contact.email or "", phone="",
                   first_name=contact.first_name or "", last_name=contact.last_name or "",
                   funded_date=funded, application_date=applied,
                   first_payment_date="")  # fmt: skip
    import_book(session=session, stream=io.BytesIO(csv_bytes([row])), name="x.csv", now=NOW)


def _credits(session: Session) -> list[FundedCredit]:
    return list(session.scalars(select(FundedCredit).order_by(FundedCredit.id)))


def test_a_funded_loan_is_credited_to_the_outreach_before_it_and_ends_the_sequence(
    session: Session,
) -> None:
    person = make_contact(session)
    enrollment = _enrolled(session, person, at=ago(40), touches=[40, 33])
    _import_funded(session, person, funded=day(5), applied=day(20))
    [credit] = _credits(session)
    assert (credit.enrollment_id, credit.contact_id, credit.how) == (
        enrollment.id, person.id, "import"
    )  # fmt: skip
    assert credit.funded_date == ago(5).date()
    assert "funded 28 days after the last touch" in credit.why
    session.refresh(enrollment)
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "funded")
    pending = session.scalars(select(Message.status).where(Message.step == 9)).one()
    assert pending == outbox.CANCELLED
    # The same export again, or a later one with the same loan: still one credit.
    _import_funded(session, person, funded=day(5), applied=day(20))
    assert len(_credits(session)) == 1


def test_outside_the_window_or_applied_before_the_first_touch_is_not_credited(
    session: Session,
) -> None:
    late = make_contact(session)
    _enrolled(session, late, at=ago(300), touches=[300, 290])
    _import_funded(session, late, funded=day(160), number="LATE-1")  # 130 days after
    early = make_contact(session)
    _enrolled(session, early, at=ago(30), touches=[30])
    _import_funded(session, early, funded=day(3), applied=day(45), number="EARLY-1")
    assert _credits(session) == []
    why = [
        event.details["not_credited"]
        for event in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "funded.credited")
        )
    ]
    reasons = [reason for details in why for reason in details.values()]
    assert any("past the 120-day window" in reason for reason in reasons)
    assert any("before the first touch" in reason for reason in reasons)


def test_the_most_recent_qualifying_enrollment_wins() -> None:
    old = Walk(1, ago(200), "loan_age", (ago(200).date(), ago(190).date()))
    recent = Walk(2, ago(60), "rate_drop", (ago(60).date(),))
    unsent = Walk(3, ago(10), "anniversary", ())
    walk, why = choose([recent, unsent, old], funded=ago(5).date(), applied=None,
                       window_days=120)  # fmt: skip
    assert walk is recent and "enrollment 2 (rate_drop)" in why
    # A touch after the funding does not count: the loan was already won.
    after = Walk(4, ago(8), "rate_drop", (ago(2).date(),))
    walk, _ = choose([after], funded=ago(5).date(), applied=None, window_days=120)
    assert walk is None
    # The window is inclusive of its last day.
    edge = Walk(5, ago(130), "rate_drop", (date(2026, 5, 27),))
    walk, _ = choose([edge], funded=date(2026, 9, 24), applied=None, window_days=120)
    assert walk is edge


def test_mark_funded_on_a_claimed_card_credits_once_and_the_import_fills_it_in(
    session: Session,
) -> None:
    person = make_contact(session)
    enrollment = _enrolled(session, person, at=ago(20), touches=[20])
    reply = received(session, sender=person.phone or "", body="yes let's do it",
                     contacts=[person], now=ago(19))  # fmt: skip
    assert mark_funded(session, reply_id=reply.id, by="U_LO", now=ago(1)).why == "not_claimed"
    claim_reply(session, reply_id=reply.id, by="U_LO", now=ago(19))
    taken = mark_funded(session, reply_id=reply.id, by="U_OTHER", now=ago(1))
    assert (taken.changed, taken.why) == (False, "taken")
    done = mark_funded(session, reply_id=reply.id, by="U_LO", now=ago(1))
    assert (done.changed, done.why, done.outcome) == (True, "funded", "funded")
    again = mark_funded(session, reply_id=reply.id, by="U_LO", now=ago(1))
    assert (again.changed, again.why) == (False, "already_closed")
    [credit] = _credits(session)
    assert (credit.enrollment_id, credit.reply_id, credit.loan_id) == (
        enrollment.id, reply.id, None
    )  # fmt: skip
    assert credit.how == "marked by <@U_LO>"
    session.refresh(enrollment)
    assert enrollment.status == "stopped"
    # The loan arrives in the next export: the same credit gains its loan, no second one.
    _import_funded(session, person, funded=day(0), applied=day(15))
    [credit] = _credits(session)
    assert credit.loan_id is not None and "imported" in credit.why


def test_a_manager_may_mark_another_officers_reply_funded(session: Session) -> None:
    person = make_contact(session)
    _enrolled(session, person, at=ago(20), touches=[20])
    reply = received(session, sender=person.phone or "", body="call me", contacts=[person],
                     now=ago(19))  # fmt: skip
    claim_reply(session, reply_id=reply.id, by="U_LO", now=ago(19))
    done = mark_funded(session, reply_id=reply.id, by="U_BOSS", now=ago(1), manager=True)
    assert done.changed and len(_credits(session)) == 1
