"""Warm replies as staff list them (`winback replies`, SPEC §4): newest first, with their state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.book.models import Contact
from core.inbound.models import Reply
from core.privacy import mask_email, mask_phone

UNCLAIMED = "unclaimed"
CLAIMED = "claimed"


@dataclass(frozen=True)
class ReplyLine:
    """One warm reply: who wrote (masked address), what they wrote, and where it stands."""

    id: int
    received_at: datetime
    channel: str
    contact_id: int | None  # None: the sender is not in the book
    name: str | None
    address: str  # masked: a terminal or a script's output is not the place for clear text
    classification: str
    text: str
    routed_at: datetime | None
    claimed_by: str | None
    claimed_at: datetime | None
    outcome: str | None
    outcome_at: datetime | None

    @property
    def state(self) -> str:
        """'unclaimed', 'claimed', or the outcome a loan officer recorded."""
        if self.outcome:
            return self.outcome
        return CLAIMED if self.claimed_by else UNCLAIMED

    def as_json(self) -> dict[str, Any]:
        """The stable JSON shape of `winback replies --json` (times ISO-8601, UTC)."""
        return {
            "id": self.id,
            "received_at": _iso(self.received_at),
            "channel": self.channel,
            "contact_id": self.contact_id,
            "name": self.name,
            "address": self.address,
            "classification": self.classification,
            "text": self.text,
            "state": self.state,
            "routed_at": _iso(self.routed_at),
            "claimed_by": self.claimed_by,
            "claimed_at": _iso(self.claimed_at),
            "outcome": self.outcome,
            "outcome_at": _iso(self.outcome_at),
        }


def list_replies(session: Session, *, unclaimed: bool = False) -> list[ReplyLine]:
    """Every warm reply, newest first; `unclaimed`: only those nobody has claimed or closed."""
    query = (
        select(Reply, Contact.first_name, Contact.last_name)
        .outerjoin(Contact, Contact.id == Reply.contact_id)
        .order_by(Reply.received_at.desc(), Reply.id.desc())
    )
    if unclaimed:
        query = query.where(Reply.claimed_by.is_(None), Reply.outcome.is_(None))
    return [
        _line(reply, f"{first or ''} {last or ''}".strip() if reply.contact_id else None)
        for reply, first, last in session.execute(query)
    ]


def masked_address(channel: str, sender: str) -> str:
    """The sender's phone or email with most of it hidden."""
    return mask_email(sender) if channel == "email" or "@" in sender else mask_phone(sender)


def _line(reply: Reply, name: str | None) -> ReplyLine:
    return ReplyLine(
        id=reply.id,
        received_at=reply.received_at,
        channel=reply.channel,
        contact_id=reply.contact_id,
        # A person in the book with no name in the export still is in the book.
        name=(name or "(no name)") if reply.contact_id is not None else None,
        address=masked_address(reply.channel, reply.sender),
        classification=reply.classification,
        text=reply.body,
        routed_at=reply.routed_at,
        claimed_by=reply.claimed_by,
        claimed_at=reply.claimed_at,
        outcome=reply.outcome,
        outcome_at=reply.outcome_at,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
