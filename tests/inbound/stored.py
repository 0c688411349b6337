"""Warm replies made the way the web process makes them: a ledger row, then store_reply."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from core.book.models import Contact
from core.inbound.ledger import write_down
from core.inbound.models import EMAIL_INBOUND, TWILIO_SMS, Reply
from core.inbound.replies import latest_touch, store_reply

_keys = itertools.count(1)


def received(
    session: Session,
    *,
    sender: str,
    body: str,
    now: datetime,
    contacts: Sequence[Contact] = (),
    channel: str = "sms",
) -> Reply:
    """Store `body` from `sender` as a warm reply through the real ledger and store_reply."""
    source = TWILIO_SMS if channel == "sms" else EMAIL_INBOUND
    field = "From" if channel == "sms" else "from"
    event = write_down(
        session, source=source, key=f"test-{next(_keys)}", form={field: sender, "Body": body},
        headers={}, now=now,
    )  # fmt: skip
    assert event is not None
    answered = latest_touch(session, [person.id for person in contacts], channel)
    return store_reply(
        session, event=event, channel=channel, sender=sender, body=body, contacts=contacts,
        answered=answered, now=now,
    )  # fmt: skip
