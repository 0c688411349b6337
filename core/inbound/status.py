"""Twilio's delivery-status callbacks: every event kept, the message's state moved one way only.

``queued``/``sending`` mean nothing new to us (the message is ``sent`` once Twilio accepted it);
``sent`` → ``delivered`` | ``undelivered`` | ``failed``, and a message ends in the furthest state
Twilio ever reported, whatever order the callbacks arrived in (they are separate requests, each
retried on its own): ``delivered`` > ``undelivered`` > ``failed`` > ``sent``. A late ``sent``
after a final state is kept as an event and changes nothing; a ``delivered`` receipt beats a
give-up that arrived before it (the handset got the text, so it counts against the person's
caps), and the message keeps the error code of the state it ends in. Replays are no-ops twice
over: the ledger (Twilio's idempotency token, else MessageSid + status) and the unique
(provider_id, status) of the delivery events.

Error codes that mean something for the person:

- **21610** (the number texted STOP to Twilio; it refuses to deliver): a global SMS opt-out
  of that number, as if they had texted us STOP.
- **30005** (unknown handset: the number does not exist), **30006** (a landline, or a carrier
  that cannot take texts), and the invalid/landline codes Twilio's API also answers at send
  time (21211, 21217, 21265, 21407, 21614): the phone is marked bad, the same as the dispatcher
  does for those codes, so no further text or call task is made for it.
- **30003** (unreachable handset: switched off, out of coverage) and the rest (30004 blocked,
  30007 carrier filtering, 30008 unknown) are kept on the message only: they may pass, and
  a carrier's filtering says nothing about the number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import Contact
from core.bulk import insert_for
from core.channels.sms import BAD_ADDRESS_CODES
from core.inbound.ledger import write_down
from core.inbound.models import TWILIO_STATUS, DeliveryEvent, InboundEvent
from core.inbound.sms import DUPLICATE, idempotency_key, mark_phone_bad, phone_number
from core.outreach import models as outbox
from core.outreach.models import Message
from core.outreach.optout import contacts_with, record_opt_out
from core.privacy import mask_phone

logger = logging.getLogger(__name__)

OPTED_OUT_CODE = "21610"
BAD_NUMBER_CODES = frozenset({"30005", "30006"} | {str(code) for code in BAD_ADDRESS_CODES})
REPLAYED = "replayed"
INCOMPLETE = "incomplete"

# How far along each state is; a message only ever moves to a higher rank. The ranks are a
# total order, so the state a message ends in depends on which callbacks came, not their order.
_OUR_RANK = {
    outbox.UNKNOWN: 0,  # the provider may have it: a callback settles the doubt
    outbox.SENT: 1,
    outbox.FAILED: 2,  # never left Twilio
    outbox.UNDELIVERED: 3,  # reached the carrier, which gave up
    outbox.DELIVERED: 4,  # the carrier's receipt: the strongest fact there is
}
_TWILIO_STATE = {
    "sent": (outbox.SENT, _OUR_RANK[outbox.SENT]),
    "failed": (outbox.FAILED, _OUR_RANK[outbox.FAILED]),
    "undelivered": (outbox.UNDELIVERED, _OUR_RANK[outbox.UNDELIVERED]),
    "delivered": (outbox.DELIVERED, _OUR_RANK[outbox.DELIVERED]),
}
_GAVE_UP = ("undelivered", "failed")


@dataclass(frozen=True)
class StatusAnswer:
    """What happened to one callback (the route answers 200 whatever it was)."""

    outcome: str  # delivered, sent, failed, … ; duplicate, replayed, unmatched_<status>
    message_id: int | None = None


def receive_status(
    *,
    sessions: Callable[[], Session],
    form: Mapping[str, str],
    headers: Mapping[str, str],
    now: datetime,
) -> StatusAnswer:
    """Take in one verified status callback in one transaction (raises when the database
    fails: nothing is written and the caller answers 5xx so Twilio retries)."""
    fields = {name: str(value).replace("\x00", "") for name, value in form.items()}
    with sessions() as session, session.begin():
        return _receive(session, fields, headers, now)


def _receive(
    session: Session, form: dict[str, str], headers: Mapping[str, str], now: datetime
) -> StatusAnswer:
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()[:80]
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()[:20]
    key = idempotency_key(form, headers, status)
    event = write_down(session, source=TWILIO_STATUS, key=key, form=form, headers=headers, now=now)
    if event is None:
        return StatusAnswer(DUPLICATE)
    if not sid or not status:
        event.outcome = INCOMPLETE
        return StatusAnswer(INCOMPLETE)
    code = (form.get("ErrorCode") or "").strip()[:40] or None
    message = session.scalars(
        select(Message).where(Message.provider_id == sid).order_by(Message.id).with_for_update()
    ).first()
    if not _keep_event(session, message, sid, status, code, now):
        event.outcome = REPLAYED  # this (sid, status) was taken in before, effects and all
        return StatusAnswer(REPLAYED, message.id if message else None)
    if message is not None:
        event.message_id = message.id
        event.contact_id = message.contact_id
        _catch_up(session, message, sid, now)
    event.outcome = (status if message is not None else f"unmatched_{status}")[:40]
    if status in _GAVE_UP and code is not None:
        _person_effects(session, event, message, form.get("To", ""), code, now)
    return StatusAnswer(event.outcome, message.id if message else None)


def _keep_event(
    session: Session,
    message: Message | None,
    sid: str,
    status: str,
    code: str | None,
    now: datetime,
) -> bool:
    """Insert the delivery event; False when this (sid, status) is already kept."""
    insert = insert_for(session)
    statement = (
        insert(DeliveryEvent)
        .values(
            message_id=message.id if message else None,
            provider_id=sid,
            status=status,
            error_code=code,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["provider_id", "status"])
        .returning(DeliveryEvent.id)
    )
    return session.execute(statement).scalar() is not None


def _catch_up(session: Session, message: Message, sid: str, now: datetime) -> None:
    """Move the message by every event kept for its sid, in arrival order.

    Events that came before the worker recorded the sid (message_id empty) are claimed too, so
    a ``delivered`` that beat the worker's own bookkeeping is not lost.
    """
    session.execute(
        update(DeliveryEvent)
        .where(DeliveryEvent.provider_id == sid, DeliveryEvent.message_id.is_(None))
        .values(message_id=message.id)
        .execution_options(synchronize_session=False)
    )
    events = session.execute(
        select(DeliveryEvent.status, DeliveryEvent.error_code)
        .where(DeliveryEvent.provider_id == sid)
        .order_by(DeliveryEvent.id)
    ).all()
    for status, code in events:
        _advance(session, message, status, code, now)


def _advance(
    session: Session, message: Message, status: str, code: str | None, now: datetime
) -> None:
    """One way only: a state of lower or equal rank never replaces the current one."""
    target = _TWILIO_STATE.get(status)
    current = _OUR_RANK.get(message.status)
    if target is None or current is None:  # queued/sending/read…, or a message not on the wire
        return
    new_status, rank = target
    if rank <= current:
        return
    previous = message.status
    message.status = new_status
    message.updated_at = now
    message.error_code = code  # the code of the state it is in now (a delivery has none)
    if status in _GAVE_UP or previous in _GAVE_UP:  # a give-up, or one the carrier overturned
        record(
            session=session, at=now, actor="twilio", action=f"message.{new_status}",
            subject_type="message", subject_id=message.id, reason=code or status,
            details={"was": previous},
        )  # fmt: skip


def _person_effects(
    session: Session,
    event: InboundEvent,
    message: Message | None,
    to: str,
    code: str,
    now: datetime,
) -> None:
    """21610: the number opted out at Twilio; a non-existent or landline number: bad."""
    phone = phone_number(to)
    if phone is None and message is not None:
        phone = _contact_phone(session, message)
    if phone is None:
        logger.warning("status %d: error %s for a number we cannot identify", event.id, code)
        return
    if code == OPTED_OUT_CODE:
        record_opt_out(
            session=session, address=phone, channel="sms", source="twilio_21610", by="twilio",
            now=now, evidence=f"status callback {event.id}: {code}",
        )  # fmt: skip
        logger.info("status %d: %s opted out at Twilio (21610)", event.id, mask_phone(phone))
    elif code in BAD_NUMBER_CODES:
        people = contacts_with(session=session, kind="phone", value=phone, lock=True)
        mark_phone_bad(session, people, reason=f"twilio_{code}", by="twilio", now=now)


def _contact_phone(session: Session, message: Message) -> str | None:
    contact = session.get(Contact, message.contact_id)
    return contact.phone if contact is not None and contact.phone else None
