"""A card to post: one row per thing that must reach a chat channel exactly once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

_ID = BigInteger().with_variant(Integer, "sqlite")

# Card kinds.
REPLY = "reply"  # a warm reply, with Claim
CALL_TASK = "call_task"  # a track's "call this borrower" step
ESCALATION = "escalation"  # a reply unclaimed past the SLA, to the team channel
REMINDER = "reminder"  # claimed a day ago and no outcome yet, to the claimer
BATCH = "batch"  # a batch waiting for a manager's approval
DIGEST = "digest"  # the weekly digest, to the approvals channel (key digest:<ISO year>-W<week>)

# Card states.
PENDING = "pending"  # not posted yet (or posting failed and will be retried)
POSTED = "posted"
CANCELLED = "cancelled"  # no longer needed (an escalation whose reply got claimed)


class Card(Base):
    """One card and its posting state; ``key`` (kind + subject) makes a second copy impossible.

    Posting leases the row (``lease_owner``/``lease_until``) so two workers never post it at
    once; ``maybe_posted`` records that Slack may have the message after a timeout or a 5xx, so
    the next attempt looks for it (by its metadata) before posting again.
    """

    __tablename__ = "cards"
    __table_args__ = (Index("ix_cards_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    lo_id: Mapped[int | None] = mapped_column(ForeignKey("loan_officers.id"))
    thread_of: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    status: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None]
    maybe_posted: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_error: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(40))
    ts: Mapped[str | None] = mapped_column(String(40))
    posted_at: Mapped[datetime | None]
    needs_update: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime]
