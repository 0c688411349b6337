"""Enrollments, the outbox (one row per enrollment step), template versions and switches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

# Enrollment states.
ACTIVE = "active"
COMPLETED = "completed"
STOPPED = "stopped"

# Message states. A message row exists from enrollment on; its state only moves forward.
SCHEDULED = "scheduled"  # due at due_at (possibly deferred by quiet hours)
SENDING = "sending"  # claimed by a worker; the provider call may be in flight
SENT = "sent"
SANDBOX = "sandbox"  # passed every check, kept in the outbox instead of the wire
DELIVERED = "delivered"
UNDELIVERED = "undelivered"  # the carrier gave up (Twilio status callback); final
FAILED = "failed"
UNKNOWN = "unknown"  # the provider may have it; never resent automatically
SUPPRESSED = "suppressed"  # a rule forbids it for good (opt-out, no consent, bad number)
CANCELLED = "cancelled"  # the sequence ended (reply, opt-out, funded, manual stop)
RENDER_FAILED = "render_failed"
TASK_OPEN = "task_open"  # a call task handed to the loan officer
# The statuses a frequency cap counts: 'unknown' too, the provider may well have delivered it.
COUNTED_STATUSES: tuple[str, ...] = (SENT, SANDBOX, DELIVERED, UNKNOWN)
FINAL_STATES = (
    SENT,
    SANDBOX,
    DELIVERED,
    UNDELIVERED,
    FAILED,
    UNKNOWN,
    SUPPRESSED,
    CANCELLED,
    RENDER_FAILED,
)


class Enrollment(Base):
    """A person walking one track because a batch they were in was approved."""

    __tablename__ = "enrollments"
    __table_args__ = (
        # At most one active sequence per person: the second trigger waits its turn.
        Index(
            "uq_enrollments_one_active_per_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    batch_member_id: Mapped[int] = mapped_column(ForeignKey("batch_members.id"), unique=True)
    track: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12))
    stop_reason: Mapped[str | None] = mapped_column(String(60))
    enrolled_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class TemplateVersion(Base):
    """A materially different template version, kept with the messages that used it."""

    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    track: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Message(Base):
    """One touch of one enrollment: exactly one row per (enrollment, step)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step"),
        Index("ix_messages_status_due_at", "status", "due_at"),
        Index("ix_messages_contact_sent_at", "contact_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    step: Mapped[int]
    channel: Mapped[str] = mapped_column(String(12))  # sms, email, call_task
    template: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    rule: Mapped[str | None] = mapped_column(String(60))  # the hold/suppression rule, if any
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(80), index=True)
    error_code: Mapped[str | None] = mapped_column(String(40))
    template_version_id: Mapped[int | None] = mapped_column(ForeignKey("template_versions.id"))
    # The A/B arm rendered ("a" is the step's own template); None: the step runs no experiment.
    variant: Mapped[str | None] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime]


class Switch(Base):
    """A named operational switch stored in the database (the global pause)."""

    __tablename__ = "switches"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    on: Mapped[bool] = mapped_column(default=False)
    changed_by: Mapped[str | None] = mapped_column(String(120))
    changed_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(300))
