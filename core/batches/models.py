"""Batches and their members, with a snapshot of why each member qualified."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"
BATCH_STATUSES = (PENDING_APPROVAL, APPROVED, REJECTED, EXPIRED)


class Batch(Base):
    """The contacts one trigger found newly qualifying in one evaluation."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(32), index=True)
    segment: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), index=True)
    size: Mapped[int]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(120))
    # The offer rate the batch was built on (rate-drop batches), and where it came from.
    rate: Mapped[Decimal | None]
    rate_product: Mapped[str | None] = mapped_column(String(4))
    rate_as_of: Mapped[date | None] = mapped_column(Date)
    rate_source: Mapped[str | None] = mapped_column(String(300))
    # Each product's offer the members were priced on, and the observation behind it:
    # {"30y": {"rate", "index_rate", "offset", "as_of", "source"}}. An approval checks it.
    priced_on: Mapped[dict[str, Any] | None]
    # Slack card of a pending batch, so a decision can update it in place.
    slack_channel: Mapped[str | None] = mapped_column(String(40))
    slack_ts: Mapped[str | None] = mapped_column(String(40))


class BatchMember(Base):
    """One person in a batch, for one occasion, with why they qualified."""

    __tablename__ = "batch_members"
    __table_args__ = (
        # The guard that makes evaluation idempotent: one live membership per person, trigger
        # and occasion (a milestone, an anniversary year, a rate-drop wave).
        Index(
            "uq_batch_members_live_occasion",
            "trigger",
            "contact_id",
            "occasion",
            unique=True,
            sqlite_where=text("live"),
            postgresql_where=text("live"),
        ),
        Index("ix_batch_members_contact_trigger", "contact_id", "trigger"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    trigger: Mapped[str] = mapped_column(String(32))
    occasion: Mapped[str] = mapped_column(String(64))
    # False once the batch is rejected or expires, so the person may qualify again.
    live: Mapped[bool] = mapped_column(default=True)
    offer_rate: Mapped[Decimal | None]
    monthly_savings_cents: Mapped[int | None] = mapped_column(BigInteger)
    snapshot: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
