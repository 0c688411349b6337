"""An inbound email, taken in once: an auto-reply, an opt-out or a warm reply (SPEC §5).

Everything it changes (the ledger row, consent, suppression, stopped sequences, the stored
reply, the audit trail) is written in ONE transaction; if any of it fails nothing is written and
the route answers 5xx, so SendGrid retries. A retry (the same Message-ID) changes nothing.

Who wrote: the signed reply token in the address we sent from (``reply+<token>@domain``, purpose
REPLY, subject the message id) names the touch answered and its person; else the sender's
address finds everyone holding it; else the sender is unknown (the reply is kept and routed as
unknown). Auto-replies (out of office, bounces, ``Auto-Submitted``, ``Precedence: bulk``) are
recorded and never treated as a person's words. Nothing is ever sent back from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import Contact
from core.inbound.email_text import InboundMail, ledger_key, read_mail, reply_tokens, wants_out
from core.inbound.ledger import write_down
from core.inbound.models import EMAIL_INBOUND, InboundEvent
from core.inbound.replies import latest_touch, notice_for, store_reply
from core.inbound.router import ReplyNotice, ReplyRouter
from core.inbound.sms import tell_router
from core.outreach.models import Message
from core.outreach.optout import contacts_with, record_opt_out
from core.privacy import mask_email
from core.tokens import REPLY, TokenError, verify

logger = logging.getLogger(__name__)

DUPLICATE = "duplicate"
AUTO_REPLY = "auto_reply"
OPT_OUT = "opt_out"
WARM_REPLY = "warm_reply"
UNIDENTIFIED = "unidentified"
MAX_FIELD = 100_000  # what the ledger keeps of one form field


@dataclass(frozen=True)
class EmailAnswer:
    """What the intake did (the route answers 200 whatever it was)."""

    outcome: str  # auto_reply, opt_out, warm_reply, duplicate, unidentified
    reply_id: int | None = None
    contact_id: int | None = None


def receive_email(
    *,
    sessions: Callable[[], Session],
    router: ReplyRouter,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    now: datetime,
    secret: str,
) -> EmailAnswer:
    """Take in one authenticated inbound email in one transaction; tell the router after.

    `secret` verifies reply tokens (WINBACK_SECRET_KEY). Raises when the database fails
    (nothing written: the caller answers 5xx so SendGrid retries).
    """
    fields = {name: str(value).replace("\x00", "")[:MAX_FIELD] for name, value in form.items()}
    mail = read_mail(fields)
    with sessions() as session, session.begin():
        answer, notice = _receive(session, fields, headers, mail, now, secret)
    if notice is not None:
        tell_router(router, notice)
    return answer


@dataclass
class _Sender:
    """Who wrote, as far as the reply token and the address tell."""

    contacts: list[Contact]
    answered: Message | None


def _receive(
    session: Session,
    form: dict[str, str],
    headers: Mapping[str, str],
    mail: InboundMail,
    now: datetime,
    secret: str,
) -> tuple[EmailAnswer, ReplyNotice | None]:
    key = ledger_key(form, mail)
    event = write_down(session, source=EMAIL_INBOUND, key=key, form=form, headers=headers, now=now)
    if event is None:
        logger.info("inbound email %s was taken in before: nothing changes", key[:60])
        return EmailAnswer(DUPLICATE), None
    who = _identify(session, mail, secret, now)
    owner = who.contacts[0] if who.contacts else None
    event.contact_id = owner.id if owner is not None else None
    event.message_id = who.answered.id if who.answered is not None else None
    masked = mask_email(mail.sender) if mail.sender else "an unreadable sender"
    if mail.auto_reply is not None:
        event.outcome = AUTO_REPLY
        logger.info(
            "inbound email %d from %s is an auto-reply (%s)", event.id, masked, mail.auto_reply
        )
        return EmailAnswer(AUTO_REPLY, contact_id=event.contact_id), None
    words = wants_out(mail.subject, mail.body)
    if words is not None:
        return _opt_out(session, event, mail, who, words, now), None
    if mail.sender is None and not who.contacts:
        event.outcome = UNIDENTIFIED  # nobody to call back: kept in the ledger only
        logger.warning("inbound email %d has no usable sender: kept in the ledger", event.id)
        return EmailAnswer(UNIDENTIFIED), None
    return _warm_reply(session, event, mail, who, now)


def _identify(session: Session, mail: InboundMail, secret: str, now: datetime) -> _Sender:
    """The touch answered (from a genuine reply token) and everyone the reply speaks for."""
    answered = None
    for token in reply_tokens(mail.recipients):
        try:
            subject = verify(secret=secret, purpose=REPLY, token=token, now=now, max_age=None)
        except TokenError:
            continue  # a forged or mangled address: fall back to the sender
        if subject.isdigit():
            answered = session.get(Message, int(subject))
            if answered is not None:
                break
    people: dict[int, Contact] = {}
    if answered is not None:
        person = session.get(Contact, answered.contact_id, with_for_update=True)
        if person is not None:
            people[person.id] = person
    if mail.sender is not None:
        for person in contacts_with(session=session, kind="email", value=mail.sender, lock=True):
            people.setdefault(person.id, person)
    contacts = list(people.values())
    if answered is None and contacts:
        answered = latest_touch(session, [person.id for person in contacts], "email")
    return _Sender(contacts, answered)


def _opt_out(
    session: Session,
    event: InboundEvent,
    mail: InboundMail,
    who: _Sender,
    words: str,
    now: datetime,
) -> EmailAnswer:
    """'Unsubscribe', 'remove me': the global opt-out, for the person and the address."""
    evidence = f"inbound email {event.id}: {words}"[:500]
    owner = who.contacts[0] if who.contacts else None
    if owner is None and mail.sender is None:
        event.outcome = UNIDENTIFIED
        return EmailAnswer(UNIDENTIFIED)
    # The token's person, and through the address everyone else holding it.
    result = record_opt_out(
        session=session, contact=owner, address=mail.sender, channel="email",
        source="reply", by="borrower", now=now, evidence=evidence,
    )  # fmt: skip
    cancelled, reached = result.cancelled, result.contact_ids
    event.outcome = OPT_OUT
    record(
        session=session, at=now, actor="borrower", action="email.opt_out_received",
        subject_type="inbound_event", subject_id=event.id, reason=words[:60],
        details={"sender": mask_email(mail.sender) if mail.sender else None,
                 "contacts": sorted(set(reached)), "cancelled": cancelled},
    )  # fmt: skip
    logger.info("inbound email %d: opt-out (%d people)", event.id, len(set(reached)))
    return EmailAnswer(OPT_OUT, contact_id=event.contact_id)


def _warm_reply(
    session: Session, event: InboundEvent, mail: InboundMail, who: _Sender, now: datetime
) -> tuple[EmailAnswer, ReplyNotice]:
    body = mail.body or mail.subject or "(an empty reply)"
    sender = mail.sender or ""
    reply = store_reply(
        session, event=event, channel="email", sender=sender, body=body,
        contacts=who.contacts, answered=who.answered, now=now,
    )  # fmt: skip
    record(
        session=session, at=now, actor="borrower", action="reply.received",
        subject_type="reply", subject_id=reply.id, reason=reply.classification,
        details={"channel": "email", "sender": mask_email(sender) if sender else None,
                 "contact_id": reply.contact_id},
    )  # fmt: skip
    logger.info("inbound email %d: warm reply %d", event.id, reply.id)
    return EmailAnswer(WARM_REPLY, reply.id, reply.contact_id), notice_for(reply)
