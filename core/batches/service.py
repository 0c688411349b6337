"""Creating, listing, deciding and expiring batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.audit.service import record
from core.batches.candidate import Candidate
from core.batches.models import (
    APPROVED,
    EXPIRED,
    PENDING_APPROVAL,
    REJECTED,
    Batch,
    BatchMember,
)
from core.bulk import any_of, bulk_insert
from core.rates.service import Offer


class BatchError(ValueError):
    """A batch decision that cannot be made; the message says why, for the user."""


class BatchExpired(BatchError):
    """Refused: the batch expired just now, in this session; commit it so the expiry stays."""


def new_candidates(
    *, session: Session, trigger: str, candidates: Sequence[Candidate]
) -> list[Candidate]:
    """The candidates not already in a live batch of this trigger for the same occasion."""
    if not candidates:
        return []
    contact_ids = sorted({candidate.contact_id for candidate in candidates})
    taken = set(
        session.execute(
            select(BatchMember.contact_id, BatchMember.occasion).where(
                BatchMember.trigger == trigger,
                BatchMember.live.is_(True),
                any_of(session, BatchMember.contact_id, contact_ids),
            )
        ).all()
    )
    return [c for c in candidates if (c.contact_id, c.occasion) not in taken]


def create_batch(
    *,
    session: Session,
    trigger: str,
    segment: str,
    candidates: Sequence[Candidate],
    now: datetime,
    approval_required: bool,
    expiry_hours: int,
    offer: Offer | None = None,
    priced_on: Mapping[str, Offer] | None = None,
    actor: str = "evaluator",
) -> Batch | None:
    """One batch holding `candidates` with their snapshots; None when there is nobody.

    `offer` is the rate the batch states; `priced_on` every offer its members were priced on.
    """
    if not candidates:
        return None
    batch = Batch(
        trigger=trigger,
        segment=segment,
        status=PENDING_APPROVAL if approval_required else APPROVED,
        size=len(candidates),
        created_at=now,
        expires_at=now + timedelta(hours=expiry_hours) if approval_required else None,
        decided_at=None if approval_required else now,
        decided_by=None if approval_required else "auto",
        rate=offer.rate if offer else None,
        rate_product=offer.product if offer else None,
        rate_as_of=offer.as_of if offer else None,
        rate_source=offer.describe() if offer else None,
        priced_on={p: _offer_json(o) for p, o in priced_on.items()} if priced_on else None,
    )
    session.add(batch)
    session.flush()
    bulk_insert(
        session,
        BatchMember.__table__,
        [
            {
                "batch_id": batch.id,
                "contact_id": c.contact_id,
                "loan_id": c.loan_id,
                "trigger": trigger,
                "occasion": c.occasion,
                "live": True,
                "offer_rate": c.offer_rate,
                "monthly_savings_cents": c.monthly_savings_cents,
                "snapshot": c.snapshot,
                "created_at": now,
            }
            for c in candidates
        ],
    )
    record(
        session=session,
        at=now,
        actor=actor,
        action="batch.created",
        subject_type="batch",
        subject_id=batch.id,
        details={
            "trigger": trigger,
            "size": batch.size,
            "status": batch.status,
            "rate": batch.rate_source,
        },
    )
    return batch


def _offer_json(offer: Offer) -> dict[str, Any]:
    """An offer as the batch keeps it: the rate, and which observation it came from."""
    return {
        "rate": str(offer.rate),
        "index_rate": str(offer.index_rate),
        "offset": str(offer.offset),
        "as_of": offer.as_of.isoformat(),
        "source": offer.source,
    }


def pending_members(*, session: Session, now: datetime) -> dict[str, set[int]]:
    """Who waits in a batch that can still be approved, by the batch's trigger."""
    rows = session.execute(
        select(BatchMember.trigger, BatchMember.contact_id)
        .join(Batch, Batch.id == BatchMember.batch_id)
        .where(
            Batch.status == PENDING_APPROVAL,
            or_(Batch.expires_at.is_(None), Batch.expires_at > now),
            BatchMember.live.is_(True),
        )
    )
    waiting: dict[str, set[int]] = {}
    for trigger, contact_id in rows:
        waiting.setdefault(trigger, set()).add(contact_id)
    return waiting


def list_batches(*, session: Session, status: str | None = None, limit: int = 100) -> list[Batch]:
    """Batches, newest first."""
    query = select(Batch).order_by(Batch.id.desc()).limit(limit)
    if status:
        query = query.where(Batch.status == status)
    return list(session.scalars(query))


def get_batch(*, session: Session, batch_id: int, lock: bool = False) -> Batch:
    """The batch with this id (row-locked on PostgreSQL when deciding), or BatchError."""
    query = select(Batch).where(Batch.id == batch_id)
    if lock:
        query = query.with_for_update()
        if session.get_bind().dialect.name == "sqlite":
            # SQLite has no FOR UPDATE and reads outside the write lock: without taking the lock
            # first (a no-op write), two managers approving at once would both see it pending.
            session.execute(
                update(Batch).where(Batch.id == batch_id).values(status=Batch.status)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
    batch = session.scalar(query)
    if batch is None:
        raise BatchError(f"there is no batch {batch_id}")
    return batch


def pending_batch(*, session: Session, batch_id: int, now: datetime) -> Batch:
    """The batch, row-locked, if it may still be decided; BatchError saying why not."""
    batch = get_batch(session=session, batch_id=batch_id, lock=True)
    if batch.status == PENDING_APPROVAL and batch.expires_at and batch.expires_at <= now:
        # The scheduler records the expiry; a late decision is refused, never applied.
        raise BatchError(
            f"batch {batch.id} expired at {batch.expires_at:%Y-%m-%d %H:%M} UTC (the rate may "
            "have moved): evaluate again for a fresh batch"
        )
    if batch.status != PENDING_APPROVAL:
        who = f" by {batch.decided_by}" if batch.decided_by else ""
        raise BatchError(f"batch {batch.id} is already {batch.status}{who}")
    return batch


def decide(*, session: Session, batch_id: int, approve: bool, by: str, now: datetime) -> Batch:
    """Approve or reject a pending batch; the decider is recorded in the audit trail."""
    batch = pending_batch(session=session, batch_id=batch_id, now=now)
    batch.status = APPROVED if approve else REJECTED
    batch.decided_at = now
    batch.decided_by = by
    if not approve:
        _release_members(session, [batch.id])
    record(
        session=session,
        at=now,
        actor=by,
        action=f"batch.{batch.status}",
        subject_type="batch",
        subject_id=batch.id,
        details={"trigger": batch.trigger, "size": batch.size, "rate": batch.rate_source},
    )
    session.flush()
    return batch


def _release_members(session: Session, batch_ids: list[int]) -> None:
    # Members of a rejected or expired batch may qualify again at the next evaluation.
    session.execute(
        update(BatchMember).where(BatchMember.batch_id.in_(batch_ids)).values(live=False)
    )


def _expire(
    session: Session,
    batches: list[Batch],
    now: datetime,
    *,
    actor: str = "scheduler",
    reason: str = "pending longer than the expiry: the rate may have moved",
) -> None:
    for batch in batches:
        batch.status = EXPIRED
        batch.decided_at = now
        batch.decided_by = "expiry"
        record(
            session=session,
            at=now,
            actor=actor,
            action="batch.expired",
            subject_type="batch",
            subject_id=batch.id,
            reason=reason,
            details={"trigger": batch.trigger, "size": batch.size, "rate": batch.rate_source},
        )
    _release_members(session, [batch.id for batch in batches])


def expire_batch(*, session: Session, batch: Batch, now: datetime, actor: str, reason: str) -> None:
    """Expire one pending batch at once (its members may qualify again), with who and why."""
    _expire(session, [batch], now, actor=actor, reason=reason)
    session.flush()


def expire_pending(*, session: Session, now: datetime) -> list[Batch]:
    """Expire pending batches whose time ran out; they are returned."""
    stale = list(
        session.scalars(
            select(Batch)
            .where(Batch.status == PENDING_APPROVAL, Batch.expires_at <= now)
            .with_for_update(skip_locked=True)
        )
    )
    if stale:
        _expire(session, stale, now)
    return stale


def members(*, session: Session, batch_id: int) -> list[BatchMember]:
    """A batch's members."""
    return list(session.scalars(select(BatchMember).where(BatchMember.batch_id == batch_id)))
