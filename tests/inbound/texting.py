"""Texting the live web process the way Twilio does, and reading back what a user would check."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.book.models import Contact
from core.consent.models import Suppression
from core.inbound.models import DeliveryEvent, InboundEvent, Reply
from core.outreach.models import Enrollment, Message
from tests.web import ACCOUNT_SID, FROM_NUMBER, LiveWeb

_sids = itertools.count(1)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def message_sid() -> str:
    """A fresh Twilio-looking message sid (SM + 32 hex digits)."""
    return f"SM{next(_sids):032x}"


def sms_form(body: str, sender: str, **extra: str) -> dict[str, str]:
    """The form Twilio posts for an inbound text."""
    return {
        "MessageSid": extra.pop("MessageSid", None) or message_sid(),
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": FROM_NUMBER,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def text(web: LiveWeb, body: str, sender: str, **extra: Any) -> httpx.Response:
    """Text `body` from `sender` to the live process, signed; headers= passes HTTP headers."""
    headers = extra.pop("headers", None)
    return web.twilio_post("/twilio/sms", sms_form(body, sender, **extra), headers=headers)


def twiml_message(response: httpx.Response) -> str | None:
    """The text of our one TwiML <Message>, None for an empty <Response/>."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    body = response.text
    if body == EMPTY_TWIML:
        return None
    prefix = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
    assert body.startswith(prefix) and body.endswith("</Message></Response>"), body
    inner = body[len(prefix) : -len("</Message></Response>")]
    return inner.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass
class PhoneState:
    """What a user checks after a text: consent, suppression, sequences, replies."""

    sms_consent: list[str]
    email_consent: list[str]
    phone_status: list[str]
    suppressed: bool
    active_sequences: int
    scheduled_touches: int
    replies: list[Reply]


def phone_state(sessions: sessionmaker[Session], phone: str) -> PhoneState:
    """Everything stored now about the people holding `phone`, and replies from it."""
    with sessions() as session:
        people = list(session.scalars(select(Contact).where(Contact.phone == phone)))
        ids = [person.id for person in people] or [-1]
        listed = session.scalar(
            select(Suppression.id).where(Suppression.kind == "phone", Suppression.value == phone)
        )
        active = session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.contact_id.in_(ids), Enrollment.status == "active")
        )
        scheduled = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.contact_id.in_(ids), Message.status == "scheduled")
        )
        replies = list(
            session.scalars(select(Reply).where(Reply.sender == phone).order_by(Reply.id))
        )
        session.expunge_all()
        return PhoneState(
            sms_consent=[p.sms_consent for p in people],
            email_consent=[p.email_consent for p in people],
            phone_status=[p.phone_status for p in people],
            suppressed=listed is not None,
            active_sequences=active or 0,
            scheduled_touches=scheduled or 0,
            replies=replies,
        )


def count(sessions: sessionmaker[Session], model: Any) -> int:
    """Rows in a table (the ledger, replies, delivery events)."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def ledger(sessions: sessionmaker[Session], source: str | None = None) -> list[InboundEvent]:
    """The ledger rows, oldest first."""
    with sessions() as session:
        query = select(InboundEvent).order_by(InboundEvent.id)
        if source is not None:
            query = query.where(InboundEvent.source == source)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def delivery_events(sessions: sessionmaker[Session], sid: str) -> list[tuple[str, int | None]]:
    """(status, message_id) of the delivery events kept for a sid, in arrival order."""
    with sessions() as session:
        rows = session.execute(
            select(DeliveryEvent.status, DeliveryEvent.message_id)
            .where(DeliveryEvent.provider_id == sid)
            .order_by(DeliveryEvent.id)
        )
        return [(status, message_id) for status, message_id in rows]
