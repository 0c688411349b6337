"""The holdout: a deterministic share of each approved batch that is never messaged.

Who is held out is decided by a hash, not a coin toss: ``sha256("{trigger}:{contact_id}")``
read as a number in [0, 1) is under the trigger's fraction (``[holdout]``, 5 % by default). The
same person is held out of the same trigger every time, on every machine, so a re-run or a
second worker never flips anyone. Held-out people are chosen among the members who would have
been enrolled (not already on a track), recorded here and audited, and get no enrollment and no
message; `winback stats` compares their funded rate with the messaged people's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.batches.models import Batch, BatchMember
from core.bulk import bulk_insert
from core.db import Base

_SCALE = float(2**64)


def holdout_score(trigger: str, contact_id: int) -> float:
    """The person's fixed place in [0, 1) for this trigger."""
    digest = hashlib.sha256(f"{trigger}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def is_held_out(trigger: str, contact_id: int, fraction: float) -> bool:
    """Whether this person is in the trigger's holdout at this fraction."""
    return holdout_score(trigger, contact_id) < fraction


class HeldOut(Base):
    """A batch member who qualified, was held out for measurement, and is never messaged."""

    __tablename__ = "held_out_members"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    batch_member_id: Mapped[int] = mapped_column(ForeignKey("batch_members.id"), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    fraction: Mapped[float]
    held_at: Mapped[datetime]


def hold_out(
    session: Session, *, batch: Batch, members: Sequence[BatchMember], fraction: float,
    now: datetime,
) -> frozenset[int]:  # fmt: skip
    """Record which of these members are held out of `batch` at `fraction`; their contact ids."""
    if fraction <= 0:
        return frozenset()
    held = [m for m in members if is_held_out(batch.trigger, m.contact_id, fraction)]
    rows = [
        {"batch_id": batch.id, "batch_member_id": m.id, "contact_id": m.contact_id,
         "trigger": batch.trigger, "fraction": fraction, "held_at": now}
        for m in held
    ]  # fmt: skip
    bulk_insert(session, HeldOut.__table__, rows)
    return frozenset(m.contact_id for m in held)
