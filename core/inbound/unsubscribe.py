"""Unsubscribing by link (SPEC §5, COMPLIANCE §5): "stop emails" or "stop everything".

The token's subject is the contact id (core.outreach.context.Links.unsubscribe). Reading the
page changes nothing: mail scanners prefetch every link. A POST — RFC 8058 one-click from the
mail client (``List-Unsubscribe=One-Click``, or no body at all) or the page's form — is
honored at once, in one transaction with its ledger row, and is idempotent: a second POST
finds the person already unsubscribed and changes nothing.

- "stop emails" (one-click and the page's default): email consent ``opted_out``, the address on
  the suppression list, that person's queued emails cancelled; their texts and call tasks go on
  (SPEC §5: one-click unsubscribes from email). Everyone holding the same address is covered:
  the emails would land in the same inbox.
- "stop everything": the global opt-out (core.outreach.optout.record_opt_out), with the phone
  suppressed too, since the borrower asked for texts and calls to stop as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import OPTED_OUT, Contact
from core.consent.models import Suppression
from core.inbound.ledger import write_down
from core.inbound.models import UNSUBSCRIBE, InboundEvent
from core.outreach.context import company_from_settings
from core.outreach.models import (
    ACTIVE,
    CANCELLED,
    FINAL_STATES,
    SENDING,
    STOPPED,
    Enrollment,
    Message,
)
from core.outreach.optout import add_suppression, change_consent, contacts_with, record_opt_out
from core.privacy import mask_email
from core.settings import Settings

logger = logging.getLogger(__name__)

EMAIL = "email"
EVERYTHING = "all"
SCOPES = (EMAIL, EVERYTHING)
ONE_CLICK = "one_click"
PAGE = "unsubscribe_page"
EMAIL_UNSUBSCRIBED = "email_unsubscribed"


@dataclass(frozen=True)
class PageFacts:
    """What the unsubscribe page shows: whose address (masked) and what is already stopped."""

    company: dict[str, str]
    known: bool
    email: str | None = None
    emails_stopped: bool = False
    everything_stopped: bool = False


@dataclass(frozen=True)
class Unsubscribed:
    """What a POST did: `changed` is False when the person already was unsubscribed."""

    scope: str
    changed: bool
    cancelled: int = 0


def page_facts(
    *, sessions: Callable[[], Session], contact_id: int, settings: Settings
) -> PageFacts:
    """The page's facts for a genuine token; reads only, never writes (scanners GET links)."""
    company = company_from_settings(settings).as_context()
    with sessions() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            return PageFacts(company, known=False)
        return PageFacts(
            company,
            known=True,
            email=mask_email(contact.email) if contact.email else None,
            emails_stopped=_done(session, contact, EMAIL),
            everything_stopped=_done(session, contact, EVERYTHING),
        )


def unsubscribe(
    *,
    sessions: Callable[[], Session],
    contact_id: int,
    scope: str,
    how: str,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    now: datetime,
) -> Unsubscribed | None:
    """Honor an unsubscribe POST in one transaction; None when the contact is not in the book.

    Raises when the database fails (nothing written: the route answers 5xx).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown unsubscribe scope {scope!r}")
    with sessions() as session, session.begin():
        contact = session.get(Contact, contact_id, with_for_update=True)
        if contact is None:
            return None
        if _done(session, contact, scope):
            return Unsubscribed(scope, changed=False)
        event = write_down(
            session, source=UNSUBSCRIBE, key=_key(session, contact_id, scope),
            form={**form, "scope": scope, "how": how}, headers=headers, now=now,
        )  # fmt: skip
        if event is None:  # a simultaneous POST got there first
            return Unsubscribed(scope, changed=False)
        event.contact_id = contact.id
        event.outcome = "opt_out" if scope == EVERYTHING else EMAIL_UNSUBSCRIBED
        evidence = f"unsubscribe {how} (inbound event {event.id})"
        if scope == EVERYTHING:
            cancelled = _stop_everything(session, contact, how, now, evidence)
        else:
            cancelled = stop_emails(session, contact, how=how, now=now, evidence=evidence)
    logger.info("contact %d unsubscribed (%s, %s)", contact_id, scope, how)
    return Unsubscribed(scope, changed=True, cancelled=cancelled)


def stop_emails(
    session: Session, contact: Contact, *, how: str, now: datetime, evidence: str
) -> int:
    """Email-only opt-out: consent, suppression, queued emails cancelled, audited; the count."""
    source = f"email_opt_out/{how}"
    people = {contact.id: contact}
    address = (contact.email or "").strip().lower()
    if address:
        for person in contacts_with(session=session, kind="email", value=address, lock=True):
            people.setdefault(person.id, person)
        add_suppression(
            session=session, kind="email", value=address, reason=source, by="borrower", now=now
        )
    cancelled = 0
    for person in people.values():
        changed = change_consent(
            session=session, contact=person, channel="email", state=OPTED_OUT,
            source=source, by="borrower", now=now, evidence=evidence,
        )  # fmt: skip
        count = _cancel_emails(session, person.id, now)
        cancelled += count
        record(
            session=session, at=now, actor="borrower", action="contact.unsubscribed_email",
            subject_type="contact", subject_id=person.id, reason=source,
            details={"consent_changed": changed, "cancelled": count,
                     "address": mask_email(address) if address else None},
        )  # fmt: skip
    session.flush()
    return cancelled


def _stop_everything(
    session: Session, contact: Contact, how: str, now: datetime, evidence: str
) -> int:
    result = record_opt_out(
        session=session, contact=contact, channel="email", source=how, by="borrower",
        now=now, evidence=evidence,
    )  # fmt: skip
    if contact.phone:  # "texts and calls too": the number itself goes on the list
        add_suppression(
            session=session, kind="phone", value=contact.phone,
            reason=f"email_opt_out/{how}", by="borrower", now=now,
        )  # fmt: skip
    return result.cancelled


def _cancel_emails(session: Session, contact_id: int, now: datetime) -> int:
    """Cancel the person's unsent emails; a sequence left with nothing to send is stopped."""
    cancelled = session.execute(
        update(Message)
        .where(
            Message.contact_id == contact_id,
            Message.channel == "email",
            Message.status.not_in(FINAL_STATES),
            Message.status != SENDING,
        )
        .values(status=CANCELLED, rule=EMAIL_UNSUBSCRIBED, updated_at=now)
    ).rowcount
    for enrollment in session.scalars(
        select(Enrollment).where(Enrollment.contact_id == contact_id, Enrollment.status == ACTIVE)
    ):
        left = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.enrollment_id == enrollment.id, Message.status.not_in(FINAL_STATES))
        )
        if not left:  # otherwise the person could never be enrolled again
            enrollment.status = STOPPED
            enrollment.stop_reason = EMAIL_UNSUBSCRIBED
            enrollment.ended_at = now
    return cancelled or 0


def _done(session: Session, contact: Contact, scope: str) -> bool:
    """Whether this person already is as unsubscribed as `scope` asks."""
    if contact.email_consent != OPTED_OUT or _unsent(session, contact.id, "email"):
        return False
    if contact.email and not _listed(session, "email", contact.email.strip().lower()):
        return False
    if scope == EMAIL:
        return True
    if contact.sms_consent != OPTED_OUT or _unsent(session, contact.id, None):
        return False
    return not contact.phone or _listed(session, "phone", contact.phone)


def _unsent(session: Session, contact_id: int, channel: str | None) -> bool:
    query = select(Message.id).where(
        Message.contact_id == contact_id, Message.status.not_in(FINAL_STATES)
    )
    if channel is not None:
        query = query.where(Message.channel == channel)
    return session.scalar(query.limit(1)) is not None


def _listed(session: Session, kind: str, value: str) -> bool:
    found = session.scalar(
        select(Suppression.id).where(Suppression.kind == kind, Suppression.value == value)
    )
    return found is not None


def _key(session: Session, contact_id: int, scope: str) -> str:
    """'contact:<id>:<scope>:<n>': the n-th time this person asked (after a re-subscription a
    new request is a new event; two simultaneous requests compute the same key, one wins)."""
    earlier = session.scalar(
        select(func.count())
        .select_from(InboundEvent)
        .where(
            InboundEvent.source == UNSUBSCRIBE,
            InboundEvent.idempotency_key.startswith(f"contact:{contact_id}:{scope}:"),
        )
    )
    return f"contact:{contact_id}:{scope}:{(earlier or 0) + 1}"
