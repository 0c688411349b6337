"""Recording opt-outs (and the one way back in: START after an SMS opt-out), COMPLIANCE §1–§2.

Every opt-out is global: this tool only markets, so an opt-out on any channel, in any wording,
sets both channels to ``opted_out``, puts the address on the suppression list, and ends every
sequence at once (queued touches are cancelled in the same transaction). The channel the
opt-out arrived on is kept in the consent events' source (``sms_opt_out/…``), so a later START
can tell an SMS opt-out (which START reverses) from an email unsubscribe or a staff entry
(which it does not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import GRANTED, OPTED_OUT, UNKNOWN, Contact, Loan, LoanOfficer
from core.book.normalize import normalize_email, normalize_phone
from core.bulk import insert_for
from core.consent.models import ConsentEvent, Suppression
from core.outreach.models import Enrollment, Message
from core.outreach.service import end_sequences
from core.privacy import mask_email, mask_phone

SMS_OPT_OUT = "sms_opt_out"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class OptOutError(ValueError):
    """An opt-out that cannot be recorded (nothing to identify the person by)."""


@dataclass
class OptOutResult:
    """Whom an opt-out reached and what it stopped."""

    contact_ids: list[int] = field(default_factory=list)
    cancelled: int = 0
    suppressed: list[str] = field(default_factory=list)  # kinds added: 'phone', 'email'


def address_kind(address: str) -> tuple[str, str]:
    """('email', normalized) or ('phone', E.164) for what a user typed; OptOutError if neither."""
    raw = address.strip()
    if "@" in raw:
        email = normalize_email(raw)
        if email:
            return "email", email
    else:
        phone = normalize_phone(raw) or (raw if _E164.match(raw) else None)
        if phone:
            return "phone", phone
    raise OptOutError("not a phone number or an email address")


def contacts_with(*, session: Session, kind: str, value: str, lock: bool = False) -> list[Contact]:
    """Every contact holding this phone or email (row-locked on PostgreSQL when asked)."""
    column = Contact.phone if kind == "phone" else Contact.email
    query = select(Contact).where(column == value).order_by(Contact.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list(session.scalars(query))


def add_suppression(
    *, session: Session, kind: str, value: str, reason: str, by: str, now: datetime
) -> bool:
    """Put an address on the suppression list; False when it was already there."""
    row = {"kind": kind, "value": value, "reason": reason[:200], "created_by": by[:120]}
    insert = insert_for(session)
    statement = (
        insert(Suppression)
        .values(**row, created_at=now)
        .on_conflict_do_nothing(index_elements=["kind", "value"])
    )
    return bool(session.execute(statement).rowcount)


def _set_consent(
    session: Session,
    contact: Contact,
    channel: str,
    state: str,
    *,
    source: str,
    by: str,
    now: datetime,
    evidence: str | None,
) -> bool:
    old = getattr(contact, f"{channel}_consent")
    if old == state:
        return False
    setattr(contact, f"{channel}_consent", state)
    setattr(contact, f"{channel}_consent_at", now)
    setattr(contact, f"{channel}_consent_source", source[:300])
    contact.updated_at = now
    session.add(
        ConsentEvent(
            contact_id=contact.id,
            channel=channel,
            old_state=old,
            new_state=state,
            source=source[:300],
            evidence=evidence[:500] if evidence else None,
            actor=by[:120],
            at=now,
        )
    )
    return True


def _masked(kind: str, value: str) -> str:
    return mask_email(value) if kind == "email" else mask_phone(value)


def record_opt_out(
    *,
    session: Session,
    contact: Contact | None = None,
    address: str | None = None,
    channel: str | None,
    source: str,
    by: str,
    now: datetime,
    evidence: str | None = None,
) -> OptOutResult:
    """Opt a person out of everything at once: consent, suppression list, sequences, audit.

    `channel` is where the opt-out came from ('sms', 'email', or None for staff entries);
    `address` (a phone or email) reaches every contact holding it, and is suppressed even
    when nobody in the book has it.
    """
    if contact is None and address is None:
        raise OptOutError("an opt-out needs a contact or an address")
    origin = f"{channel}_opt_out" if channel else "opt_out"
    tagged = f"{origin}/{source}"
    addresses: set[tuple[str, str]] = set()
    if address is not None:
        addresses.add(address_kind(address))
    people = [contact] if contact is not None else []
    for kind, value in list(addresses):
        people += [c for c in contacts_with(session=session, kind=kind, value=value, lock=True)]
    result = OptOutResult()
    for person in {p.id: p for p in people}.values():
        _opt_out_one(session, person, channel, tagged, by, now, evidence, addresses, result)
    for kind, value in sorted(addresses):
        if add_suppression(session=session, kind=kind, value=value, reason=tagged, by=by, now=now):
            result.suppressed.append(kind)
    session.flush()
    return result


def _opt_out_one(
    session: Session,
    person: Contact,
    channel: str | None,
    tagged: str,
    by: str,
    now: datetime,
    evidence: str | None,
    addresses: set[tuple[str, str]],
    result: OptOutResult,
) -> None:
    changed = [
        name
        for name in ("sms", "email")
        if _set_consent(
            session, person, name, OPTED_OUT, source=tagged, by=by, now=now, evidence=evidence
        )
    ]
    # The channel's own address always; staff opt-outs (no channel) suppress both.
    if person.phone and channel in (None, "sms"):
        addresses.add(("phone", person.phone))
    if person.email and channel in (None, "email"):
        addresses.add(("email", person.email.strip().lower()))
    result.contact_ids.append(person.id)
    result.cancelled += end_sequences(
        session=session, contact_id=person.id, reason="opted_out", now=now, actor=by
    )
    record(
        session=session,
        at=now,
        actor=by,
        action="contact.opted_out",
        subject_type="contact",
        subject_id=person.id,
        reason=tagged,
        details={
            "channel": channel,
            "consent_changed": changed,
            "addresses": sorted(_masked(kind, value) for kind, value in addresses),
        },
    )


def _latest_event(session: Session, contact_id: int, channel: str) -> ConsentEvent | None:
    return session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.contact_id == contact_id, ConsentEvent.channel == channel)
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
        .limit(1)
    ).first()


def _came_from_sms_opt_out(event: ConsentEvent | None) -> bool:
    return (
        event is not None
        and event.new_state == OPTED_OUT
        and event.source.startswith(SMS_OPT_OUT + "/")
    )


def record_opt_in_keyword(
    *,
    session: Session,
    phone: str,
    now: datetime,
    evidence: str | None = None,
    by: str = "borrower",
) -> list[int]:
    """START/YES/UNSTOP: re-grant SMS consent to people whose opt-out came by SMS.

    Returns the contacts re-subscribed (empty when the number never opted out by SMS). The
    email opt-out that the SMS opt-out implied is undone too (back to its earlier state); an
    email unsubscribe or a staff opt-out stays.
    """
    _, value = address_kind(phone)
    back: list[int] = []
    for person in contacts_with(session=session, kind="phone", value=value, lock=True):
        if person.sms_consent != OPTED_OUT:
            continue
        if not _came_from_sms_opt_out(_latest_event(session, person.id, "sms")):
            continue
        _set_consent(
            session, person, "sms", GRANTED, source="keyword", by=by, now=now, evidence=evidence
        )
        email_event = _latest_event(session, person.id, "email")
        if _came_from_sms_opt_out(email_event) and email_event is not None:
            earlier = email_event.old_state if email_event.old_state != OPTED_OUT else None
            _set_consent(
                session, person, "email", earlier or UNKNOWN,
                source="keyword", by=by, now=now, evidence=evidence,
            )  # fmt: skip
        back.append(person.id)
        record(
            session=session,
            at=now,
            actor=by,
            action="contact.opted_in",
            subject_type="contact",
            subject_id=person.id,
            reason="keyword",
            details={"channel": "sms", "phone": mask_phone(value)},
        )
    if back:
        session.execute(
            delete(Suppression).where(
                Suppression.kind == "phone",
                Suppression.value == value,
                Suppression.reason.startswith(SMS_OPT_OUT + "/"),
            )
        )
    session.flush()
    return back


def _iso(moment: datetime | date | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _consent(contact: Contact, channel: str) -> dict[str, Any]:
    return {
        "state": getattr(contact, f"{channel}_consent"),
        "at": _iso(getattr(contact, f"{channel}_consent_at")),
        "source": getattr(contact, f"{channel}_consent_source"),
    }


def _loans(session: Session, contact_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Loan).where(Loan.contact_id == contact_id).order_by(Loan.id))
    return [
        {"loan_number": loan.loan_number, "status": loan.status, "program": loan.program,
         "note_rate": None if loan.note_rate is None else str(loan.note_rate),
         "amount": None if loan.loan_amount_cents is None else loan.loan_amount_cents / 100,
         "funded_date": _iso(loan.funded_date), "fallout_date": _iso(loan.fallout_date)}
        for loan in rows
    ]  # fmt: skip


def _enrollments(session: Session, contact_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Enrollment).where(Enrollment.contact_id == contact_id).order_by(Enrollment.id)
    )
    return [
        {"id": e.id, "track": e.track, "status": e.status, "stop_reason": e.stop_reason,
         "enrolled_at": _iso(e.enrolled_at), "ended_at": _iso(e.ended_at)}
        for e in rows
    ]  # fmt: skip


def _messages(session: Session, contact_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Message).where(Message.contact_id == contact_id).order_by(Message.id)
    )
    return [
        {"id": m.id, "enrollment_id": m.enrollment_id, "step": m.step, "channel": m.channel,
         "template": m.template, "status": m.status, "rule": m.rule, "due_at": _iso(m.due_at),
         "sent_at": _iso(m.sent_at), "provider_id": m.provider_id}
        for m in rows
    ]  # fmt: skip


def whois(*, session: Session, address: str) -> list[dict[str, Any]]:
    """Everyone holding this phone or email: consent per channel, loans, sequences, messages.

    For staff (CLI, Slack): the details are shown in full, and must never be logged.
    """
    kind, value = address_kind(address)
    people = contacts_with(session=session, kind=kind, value=value)
    found = []
    for person in people:
        listed = session.scalars(
            select(Suppression.kind).where(
                ((Suppression.kind == "phone") & (Suppression.value == (person.phone or "")))
                | ((Suppression.kind == "email") & (Suppression.value == (person.email or "")))
            )
        )
        officer = session.get(LoanOfficer, person.lo_id) if person.lo_id else None
        found.append(
            {"id": person.id, "name": person.display_name, "phone": person.phone,
             "email": person.email, "phone_status": person.phone_status,
             "property_state": person.property_state,
             "consent": {"sms": _consent(person, "sms"), "email": _consent(person, "email")},
             "suppressed": sorted(set(listed)),
             "loan_officer": officer.name if officer else None,
             "loans": _loans(session, person.id),
             "enrollments": _enrollments(session, person.id),
             "messages": _messages(session, person.id)}
        )  # fmt: skip
    return found


def change_consent(
    *,
    session: Session,
    contact: Contact,
    channel: str,
    state: str,
    source: str,
    by: str,
    now: datetime,
    evidence: str | None = None,
) -> bool:
    """Set one channel's consent with its consent event; False when it already was `state`."""
    return _set_consent(
        session, contact, channel, state, source=source, by=by, now=now, evidence=evidence
    )
