"""Deciding a batch for a person, the same way from every front end (the CLI, Slack).

One transaction: the batch is locked and checked (still pending, not timed out), a big batch
asks for its size typed in first, the approval goes through `core.flows.approve_batch` (so the
stale-rate rule applies), and a refusal that expired the batch is committed with its audit
event. The batch's Slack card is marked for re-rendering in the same transaction, so the
posting job brings it up to date even when the decision was made elsewhere (the CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from core.batches import service as batches
from core.batches.models import Batch
from core.batches.service import BatchError, BatchExpired
from core.cards.batch_view import mark_batch_card_stale, refresh_batch_card
from core.cards.posting import PostingOptions
from core.config import Config
from core.flows import approve_batch, reject_batch
from core.outreach.service import EnrollResult
from core.tracks.config import Track

# Outcomes.
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"  # refused: its rates moved, so the batch expired just now
REFUSED = "refused"  # nothing changed: already decided, timed out, or no such batch
CONFIRM = "confirm"  # nothing changed: too big for one click, its size must be typed in
WRONG_SIZE = "wrong_size"  # nothing changed: the typed size is not the batch's
CHANGED = frozenset({APPROVED, REJECTED, EXPIRED})


@dataclass(frozen=True)
class BatchDecision:
    """What one approve or reject did, the batch as it stands after, and why (for the person)."""

    batch_id: int
    outcome: str
    batch: Batch | None  # readable after the transaction; None when there is no such batch
    message: str = ""  # a refusal's reason, in words for the person
    enrolled: EnrollResult | None = None

    @property
    def changed(self) -> bool:
        """Whether the batch's state changed (approved, rejected, or expired just now)."""
        return self.outcome in CHANGED


def decide_batch(
    *,
    session_factory: Callable[[], Session],
    batch_id: int,
    approve: bool,
    by: str,
    now: datetime,
    tracks: Mapping[str, Track] | None = None,
    config: Config | None = None,
    confirm_above: int | None = None,
    typed_size: int | None = None,
    posting: PostingOptions | None = None,
) -> BatchDecision:
    """Approve (enrolling its members) or reject a pending batch in one transaction.

    With `confirm_above`, approving a batch of more members than that needs `typed_size`
    equal to its size (CONFIRM without one, WRONG_SIZE with another); a typed size is always
    checked when given. With `posting`, the batch's card is re-rendered right after.
    """
    if approve and tracks is None:
        raise ValueError("approving a batch needs the tracks to enroll its members on")
    decision = _decide(session_factory, batch_id, approve, by, now, tracks, config,
                       confirm_above, typed_size)  # fmt: skip
    if posting is not None and decision.outcome in (*CHANGED, REFUSED):
        # A refused press may come from a card that is out of date: show it as it is.
        refresh_batch_card(session_factory=session_factory, posting=posting,
                           batch_id=batch_id, now=now)  # fmt: skip
    return decision


def _decide(
    session_factory: Callable[[], Session],
    batch_id: int,
    approve: bool,
    by: str,
    now: datetime,
    tracks: Mapping[str, Track] | None,
    config: Config | None,
    confirm_above: int | None,
    typed_size: int | None,
) -> BatchDecision:
    with session_factory() as session, session.begin():
        try:
            batch = batches.pending_batch(session=session, batch_id=batch_id, now=now)
            problem = _size_problem(batch, approve, confirm_above, typed_size)
            if problem is not None:
                return BatchDecision(batch_id, problem, batch)
            if not approve:
                batch = reject_batch(session=session, batch_id=batch_id, by=by, now=now)
                mark_batch_card_stale(session, batch_id=batch_id)
                return BatchDecision(batch_id, REJECTED, batch)
            assert tracks is not None
            batch, enrolled = approve_batch(
                session=session, batch_id=batch_id, by=by, now=now, tracks=tracks, config=config
            )
            mark_batch_card_stale(session, batch_id=batch_id)
            return BatchDecision(batch_id, APPROVED, batch, enrolled=enrolled)
        except BatchExpired as exc:
            # Leaving the block normally commits the expiry and its audit event.
            mark_batch_card_stale(session, batch_id=batch_id)
            return BatchDecision(batch_id, EXPIRED, _batch(session, batch_id), str(exc))
        except BatchError as exc:
            mark_batch_card_stale(session, batch_id=batch_id)
            return BatchDecision(batch_id, REFUSED, _batch(session, batch_id), str(exc))


def _size_problem(
    batch: Batch, approve: bool, confirm_above: int | None, typed_size: int | None
) -> str | None:
    if not approve:
        return None
    if typed_size is not None:
        return None if typed_size == batch.size else WRONG_SIZE
    if confirm_above is not None and batch.size > confirm_above:
        return CONFIRM
    return None


def _batch(session: Session, batch_id: int) -> Batch | None:
    return session.get(Batch, batch_id)


def typed_size_matches(
    *, session_factory: Callable[[], Session], batch_id: int, typed_size: int
) -> bool:
    """Whether `typed_size` is the batch's size (a missing batch is left to the decision)."""
    with session_factory() as session:
        batch = session.get(Batch, batch_id)
        return batch is None or batch.size == typed_size
