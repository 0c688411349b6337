"""Opt-outs are global and immediate; START only undoes an SMS opt-out; the pause switch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.book.models import GRANTED, OPTED_OUT, UNKNOWN
from core.consent.models import ConsentEvent, Suppression
from core.outreach import models as outbox
from core.outreach.models import Message
from core.outreach.optout import (
    OptOutError,
    address_kind,
    record_opt_in_keyword,
    record_opt_out,
    whois,
)
from core.outreach.switches import is_paused, pause, resume
from tests.triggers.factories import NOW, enroll, make_contact, make_loan


def _queue(session: Session, enrollment_id: int, contact_id: int, steps: int = 3) -> None:
    for step in range(1, steps + 1):
        session.add(
            Message(
                enrollment_id=enrollment_id, contact_id=contact_id, step=step, channel="sms",
                template="intro", status=outbox.SCHEDULED, due_at=NOW + timedelta(days=step),
                attempts=0, updated_at=NOW,
            )
        )  # fmt: skip
    session.flush()


def _suppressed(session: Session) -> set[tuple[str, str, str]]:
    return {(row.kind, row.value, row.reason) for row in session.scalars(select(Suppression)).all()}


def test_an_sms_stop_opts_out_of_everything_and_cancels_the_queue(session: Session) -> None:
    person = make_contact(session, email_consent=UNKNOWN)
    enrollment = enroll(session, person, make_loan(session, person))
    _queue(session, enrollment.id, person.id)

    result = record_opt_out(
        session=session, address=person.phone, channel="sms", source="keyword",
        by="borrower", now=NOW, evidence="STOP please",
    )  # fmt: skip

    assert result.contact_ids == [person.id] and result.cancelled == 3
    assert (person.sms_consent, person.email_consent) == (OPTED_OUT, OPTED_OUT)
    events = session.scalars(
        select(ConsentEvent).where(ConsentEvent.contact_id == person.id).order_by("channel")
    ).all()
    assert [(e.channel, e.old_state, e.new_state) for e in events] == [
        ("email", UNKNOWN, OPTED_OUT),
        ("sms", GRANTED, OPTED_OUT),
    ]
    assert {e.source for e in events} == {"sms_opt_out/keyword"}
    assert events[0].evidence == "STOP please"
    assert _suppressed(session) == {("phone", person.phone, "sms_opt_out/keyword")}
    statuses = session.scalars(select(Message.status).where(Message.contact_id == person.id))
    assert set(statuses) == {outbox.CANCELLED}
    session.refresh(enrollment)
    assert (enrollment.status, enrollment.stop_reason) == (outbox.STOPPED, "opted_out")
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "contact.opted_out")
    ).one()
    assert audit.actor == "borrower" and person.phone not in str(audit.details)


def test_a_staff_opt_out_suppresses_both_addresses(session: Session) -> None:
    person = make_contact(session)

    record_opt_out(session=session, contact=person, channel=None, source="cli", by="ops", now=NOW)

    kinds = {kind for kind, _, _ in _suppressed(session)}
    assert kinds == {"phone", "email"}


def test_an_address_nobody_in_the_book_has_is_still_suppressed(session: Session) -> None:
    result = record_opt_out(
        session=session, address="Stranger@Example.COM", channel="email", source="unsubscribe",
        by="borrower", now=NOW,
    )  # fmt: skip

    assert result.contact_ids == []
    assert _suppressed(session) == {("email", "stranger@example.com", "email_opt_out/unsubscribe")}


def test_opting_out_twice_changes_nothing_more(session: Session) -> None:
    person = make_contact(session)
    for _ in range(2):
        record_opt_out(
            session=session, contact=person, channel="sms", source="keyword", by="b", now=NOW
        )

    assert len(session.scalars(select(ConsentEvent)).all()) == 2
    assert len(_suppressed(session)) == 1


def test_start_after_an_sms_stop_resubscribes(session: Session) -> None:
    person = make_contact(session, email_consent=UNKNOWN)
    record_opt_out(
        session=session, contact=person, channel="sms", source="keyword", by="b", now=NOW
    )

    back = record_opt_in_keyword(
        session=session, phone=person.phone or "", now=NOW + timedelta(hours=1), evidence="START"
    )

    assert back == [person.id]
    assert (person.sms_consent, person.sms_consent_source) == (GRANTED, "keyword")
    assert person.email_consent == UNKNOWN  # back to what it was before the STOP
    assert _suppressed(session) == set()


def test_start_does_not_undo_an_email_unsubscribe_or_a_staff_opt_out(session: Session) -> None:
    unsubscribed = make_contact(session)
    staff = make_contact(session)
    record_opt_out(
        session=session, contact=unsubscribed, channel="email", source="unsubscribe_page",
        by="b", now=NOW,
    )  # fmt: skip
    record_opt_out(session=session, contact=staff, channel=None, source="cli", by="ops", now=NOW)

    for person in (unsubscribed, staff):
        assert record_opt_in_keyword(session=session, phone=person.phone or "", now=NOW) == []
        assert person.sms_consent == OPTED_OUT
    assert ("phone", staff.phone, "opt_out/cli") in _suppressed(session)


def test_start_from_someone_who_never_stopped_changes_nothing(session: Session) -> None:
    person = make_contact(session, sms_consent=UNKNOWN)

    assert record_opt_in_keyword(session=session, phone=person.phone or "", now=NOW) == []
    assert person.sms_consent == UNKNOWN


def test_whois_shows_consent_loans_sequences_and_messages(session: Session) -> None:
    person = make_contact(session)
    loan = make_loan(session, person)
    enrollment = enroll(session, person, loan)
    _queue(session, enrollment.id, person.id, steps=2)
    record_opt_out(session=session, contact=person, channel=None, source="cli", by="ops", now=NOW)

    (found,) = whois(session=session, address=person.email or "")

    assert found["phone"] == person.phone
    assert found["consent"]["sms"]["state"] == OPTED_OUT
    assert found["consent"]["email"]["source"] == "opt_out/cli"
    assert found["suppressed"] == ["email", "phone"]
    assert [item["loan_number"] for item in found["loans"]] == [loan.loan_number]
    assert found["enrollments"][0]["status"] == outbox.STOPPED
    assert [m["status"] for m in found["messages"]] == [outbox.CANCELLED] * 2


def test_whois_of_an_unknown_number_is_empty(session: Session) -> None:
    assert whois(session=session, address="+14155550999") == []


@given(st.text(max_size=40))
def test_anything_typed_is_an_address_or_a_clear_refusal(typed: str) -> None:
    try:
        kind, value = address_kind(typed)
    except OptOutError:
        return
    assert kind in ("phone", "email")
    assert value.startswith("+") if kind == "phone" else "@" in value


def test_pause_and_resume_are_audited_with_who_and_why(session: Session) -> None:
    assert not is_paused(session)

    pause(session=session, by="U_MANAGER", reason="rate sheet error", now=NOW)
    assert is_paused(session)
    resume(session=session, by="U_MANAGER", now=NOW + timedelta(hours=1))

    assert not is_paused(session)
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.subject_type == "switch").order_by(AuditEvent.id)
    ).all()
    assert [(a.action, a.actor, a.reason) for a in audit] == [
        ("outreach.paused", "U_MANAGER", "rate sheet error"),
        ("outreach.resumed", "U_MANAGER", None),
    ]


def test_an_opt_out_needs_someone_to_opt_out(session: Session) -> None:
    with pytest.raises(OptOutError):
        record_opt_out(session=session, channel="sms", source="x", by="y", now=NOW)
    with pytest.raises(OptOutError):
        record_opt_out(
            session=session, address="not an address", channel="sms", source="x", by="y", now=NOW
        )
