"""A newly funded loan in an import ends the person's outreach at once."""

from __future__ import annotations

import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches.candidate import Candidate
from core.batches.service import create_batch
from core.flows import import_book
from core.outreach.models import Enrollment, Message
from core.outreach.service import enroll_batch
from core.tracks.config import load_tracks
from tests.book.helpers import NOW, book_row, csv_bytes
from tests.triggers.factories import make_contact, make_loan


def _enrolled(session: Session):  # type: ignore[no-untyped-def]
    contact = make_contact(session)
    loan = make_loan(session, contact)
    batch = create_batch(session=session, trigger="loan_age", segment="repeat_purchase",
                         candidates=[Candidate(contact.id, loan.id, "milestone", {})], now=NOW,
                         approval_required=False, expiry_hours=72)  # fmt: skip
    assert batch is not None
    enroll_batch(session=session, batch=batch, now=NOW, tracks=load_tracks())
    return contact


def _import(session: Session, rows: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    return import_book(session=session, stream=io.BytesIO(csv_bytes(rows)), name="x.csv", now=NOW)


def test_newly_funded_loan_stops_the_sequence_and_cancels_queued_touches(session: Session) -> None:
    contact = _enrolled(session)
    funded = book_row(loan_number="NEW-1", email=contact.email, phone="",
                      funded_date="2026-09-01", first_payment_date="2026-11-01")  # fmt: skip
    result = _import(session, [funded])
    assert result.sequences_stopped == 1
    enrollment = session.scalars(
        select(Enrollment).where(Enrollment.contact_id == contact.id)
    ).one()
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "funded")
    statuses = set(session.scalars(select(Message.status).where(Message.contact_id == contact.id)))
    assert statuses == {"cancelled"}
    assert _import(session, [funded]).sequences_stopped == 0  # the same file again: nothing new


def test_an_application_or_an_unchanged_loan_does_not_stop_it(session: Session) -> None:
    contact = _enrolled(session)
    application = book_row(loan_number="APP-1", email=contact.email, phone="",
                           loan_status="active", funded_date="", note_rate="")  # fmt: skip
    assert _import(session, [application]).sequences_stopped == 0
    enrollment = session.scalars(
        select(Enrollment).where(Enrollment.contact_id == contact.id)
    ).one()
    assert enrollment.status == "active"
    # The application funds in the next export: now the sequence ends.
    application.update(loan_status="funded", funded_date="2026-09-20", note_rate="6.1",
                       first_payment_date="2026-11-01")  # fmt: skip
    assert _import(session, [application]).sequences_stopped == 1
