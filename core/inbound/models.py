"""The inbound ledger, warm replies, delivery-status history and engagement (opens, clicks,
savings-page visits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

_ID = BigInteger().with_variant(Integer, "sqlite")

# Ledger sources.
TWILIO_SMS = "twilio_sms"
TWILIO_STATUS = "twilio_status"
EMAIL_INBOUND = "email_inbound"
UNSUBSCRIBE = "unsubscribe"

# Reply classifications a loan officer sees on the card.
INTERESTED = "interested"
QUESTION = "question"
NOT_NOW = "not_now"
UNCLEAR = "unknown"


class InboundEvent(Base):
    """One webhook as it arrived, written in the same transaction as its effect.

    ``idempotency_key`` (Twilio's I-Twilio-Idempotency-Token, else MessageSid + event) is unique
    per source, so a retried webhook finds its first copy and changes nothing.
    """

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("source", "idempotency_key"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime]
    form: Mapped[dict[str, Any]]  # the raw form fields
    headers: Mapped[dict[str, Any]]  # the headers that matter (signature, idempotency, agent)
    outcome: Mapped[str | None] = mapped_column(String(40))  # opt_out, warm_reply, delivered…
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))


class Reply(Base):
    """A warm reply: a person answered and a loan officer should call them.

    Stored before anything else happens to it; ``contact_id`` is None when the sender is not in
    the book (kept and routed as unknown). Step 6's Slack router posts it and records the claim.
    """

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    inbound_event_id: Mapped[int] = mapped_column(ForeignKey("inbound_events.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms, email
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))  # the touch answered
    sender: Mapped[str] = mapped_column(String(320))  # E.164 phone or email, to call them back
    body: Mapped[str] = mapped_column(Text)
    classification: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime]
    routed_at: Mapped[datetime | None]  # handed to the reply router (Slack card posted)
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    claimed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(30))
    outcome_at: Mapped[datetime | None]
    details: Mapped[dict[str, Any] | None]
    snoozed_until: Mapped[datetime | None]  # a snoozed card is posted again at this time


class DeliveryEvent(Base):
    """Every delivery-status callback Twilio sent for a message, in arrival order."""

    __tablename__ = "delivery_events"
    __table_args__ = (UniqueConstraint("provider_id", "status"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    provider_id: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime]


class Engagement(Base):
    """An open, a click or a savings-page visit, flagged when a machine (not a person) made it."""

    __tablename__ = "engagements"
    __table_args__ = (Index("ix_engagements_message_kind", "message_id", "kind"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # open, click, visit
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    batch_member_id: Mapped[int | None] = mapped_column(ForeignKey("batch_members.id"))
    at: Mapped[datetime]
    machine: Mapped[bool] = mapped_column(default=False)
    machine_reason: Mapped[str | None] = mapped_column(String(60))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(Text)  # where a click went
