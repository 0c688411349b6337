"""Who may touch an outbox row: claim, hand-over, guarded settle, release and recovery.

Every write to a claimed message goes through a guard in the database, never through an
unconditional ORM flush: ``status = 'sending' AND claimed_by = :me`` (and, for the hand-over,
``sent_at IS NULL``). A worker whose claim was taken back by recovery and given to another
worker therefore changes nothing: its row count is 0 and it leaves the message alone.

1. **Claim**: due ``scheduled`` messages become ``sending`` (claimed_by, claimed_at,
   attempts + 1) in a short transaction committed before any provider call. On PostgreSQL
   the candidates are picked in a ``MATERIALIZED`` CTE with ``FOR UPDATE SKIP LOCKED``: as a
   plain ``IN (subquery)`` the planner may re-run the subquery per row and ignore its LIMIT
   (with stale statistics a claim of 5 took 8), so one worker took the whole queue.
2. **Hand-over**: the mark that the provider is about to get the message (``sent_at``),
   committed before the call. A crash leaves at most the message in flight.
3. **Recover**: a ``sending`` message whose hand-over is older than ``IN_FLIGHT_TIMEOUT``
   may have reached the borrower: ``unknown``, never resent. One only claimed (no hand-over)
   for that long goes back to the queue; its worker, if it is alive after all, can no longer
   settle it. Recovery keys on each message's own hand-over time, so a long chunk does not
   make a message handed over a moment ago look stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.audit.models import AuditEvent
from core.audit.service import record
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message

IN_FLIGHT_TIMEOUT = timedelta(minutes=10)
CHUNK = 200  # messages claimed per short claim transaction
CRASHED_IN_FLIGHT = "crashed_in_flight"
_TABLE = Message.__table__
_AUDIT = AuditEvent.__table__
_ENROLLMENTS = Enrollment.__table__


def claim_due(
    *, session: Session, now: datetime, worker_id: str, limit: int, after_id: int = 0
) -> list[int]:
    """Mark up to `limit` due messages (id > after_id) as sending for this worker; their ids.

    The caller commits at once, before any provider call.
    """
    candidates = (
        select(Message.id)
        .where(
            Message.status == outbox.SCHEDULED,
            Message.due_at <= now,
            Message.id > after_id,
        )
        .order_by(Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim = update(Message).values(
        status=outbox.SENDING,
        claimed_by=worker_id[:80],
        claimed_at=now,
        attempts=Message.attempts + 1,
        updated_at=now,
    )
    if session.get_bind().dialect.name == "postgresql":
        picked = candidates.cte("picked").prefix_with("MATERIALIZED")
        claim = claim.where(Message.id == picked.c.id)
    else:  # SQLite runs the subquery once; one writer at a time anyway
        claim = claim.where(Message.id.in_(candidates.scalar_subquery()))
    claimed = session.execute(
        claim.where(Message.status == outbox.SCHEDULED)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars())


# Guards, by what is about to be written (see the module docstring).
_CLAIMED = "claimed"  # still ours: status sending, claimed by this worker
_HAND_OVER = "hand_over"  # ours and not handed to a provider yet
_ANSWERED = "answered"  # ours, or marked unknown by recovery while our call was in flight


@lru_cache(maxsize=256)
def _guarded(columns: tuple[str, ...], guard: str) -> Any:
    """The guarded UPDATE of `columns`, built once: the id, the worker and the values are bind
    parameters, so a worker compiles each shape of outcome once, not once per message."""
    where = [_TABLE.c.id == bindparam("guard_id"), _TABLE.c.claimed_by == bindparam("guard_me")]
    if guard == _ANSWERED:
        where.append(
            or_(
                _TABLE.c.status == outbox.SENDING,
                and_(_TABLE.c.status == outbox.UNKNOWN, _TABLE.c.rule == CRASHED_IN_FLIGHT),
            )
        )
    else:
        where.append(_TABLE.c.status == outbox.SENDING)
    if guard == _HAND_OVER:
        where.append(_TABLE.c.sent_at.is_(None))
    return _TABLE.update().where(*where).values({c: bindparam(f"set_{c}") for c in columns})


def _parameters(message: Message, worker_id: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "guard_id": message.id,
        "guard_me": worker_id[:80],
        **{f"set_{name}": value for name, value in values.items()},
    }


def _write(
    session: Session, message: Message, worker_id: str, guard: str, values: dict[str, Any]
) -> bool:
    statement = _guarded(tuple(values), guard)
    if session.execute(statement, _parameters(message, worker_id, values)).rowcount != 1:
        return False
    _remember(message, values)
    return True


def _remember(message: Message, values: dict[str, Any]) -> None:
    for name, value in values.items():
        set_committed_value(message, name, value)  # written above, not to be flushed again


def hand_over(
    *, session: Session, message: Message, worker_id: str, now: datetime, **values: Any
) -> bool:
    """Mark `message` as handed to the provider (with `values`, e.g. its rendering); False
    when the claim is no longer this worker's or it was handed over already. The caller
    commits before calling the provider."""
    values = {"sent_at": now, "updated_at": now, **values}
    return _write(session, message, worker_id, _HAND_OVER, values)


def settle(
    *,
    session: Session,
    message: Message,
    worker_id: str,
    values: dict[str, Any],
    after_call: bool = False,
    audit: dict[str, Any] | None = None,
    completes: int | None = None,
) -> bool:
    """Write a claimed message's outcome, with its `audit` event and, when it was the track's
    last touch, the enrollment it `completes`; False (nothing written) when the claim was lost.

    `after_call`: the provider answered a call this worker made. That answer also settles a
    message recovery had marked ``unknown`` (``crashed_in_flight``) meanwhile: the worker's
    real answer is better than recovery's guess, and nobody else can have claimed it.
    """
    guard = _ANSWERED if after_call else _CLAIMED
    if session.get_bind().dialect.name == "postgresql" and (audit or completes):
        return _settle_in_one_statement(
            session, message, worker_id, guard, values, audit, completes
        )
    if not _write(session, message, worker_id, guard, values):
        return False
    if audit:
        session.execute(insert(_AUDIT), audit)
    if completes:
        session.execute(_COMPLETION, {"done_id": completes, "done_at": values["updated_at"]})
    return True


_COMPLETION = (
    _ENROLLMENTS.update()
    .where(_ENROLLMENTS.c.id == bindparam("done_id"), _ENROLLMENTS.c.status == outbox.ACTIVE)
    .values(status=outbox.COMPLETED, ended_at=bindparam("done_at"))
)


@lru_cache(maxsize=256)
def _settle_statement(
    columns: tuple[str, ...], guard: str, audit: tuple[str, ...], completes: bool
) -> Any:
    """PostgreSQL: the guarded outcome, its audit event and the enrollment's completion as one
    statement (data-modifying CTEs), built once per shape; the event and the completion happen
    only if the guard matched. Three round trips per message were most of a worker's time."""
    settled = _guarded(columns, guard).returning(_TABLE.c.id).cte("settled")
    writes = []
    if audit:
        rows = select(*(bindparam(f"audit_{c}", type_=_AUDIT.c[c].type) for c in audit)).where(
            exists(select(settled.c.id))
        )
        writes.append(insert(_AUDIT).from_select(list(audit), rows).cte("audited"))
    if completes:
        completion = _COMPLETION.where(exists(select(settled.c.id)))
        writes.append(completion.cte("completed"))
    return select(func.count()).select_from(settled).add_cte(*writes)


def _settle_in_one_statement(
    session: Session,
    message: Message,
    worker_id: str,
    guard: str,
    values: dict[str, Any],
    audit: dict[str, Any] | None,
    completes: int | None,
) -> bool:
    statement = _settle_statement(tuple(values), guard, tuple(audit or ()), bool(completes))
    parameters = _parameters(message, worker_id, values)
    parameters |= {f"audit_{name}": value for name, value in (audit or {}).items()}
    if completes:
        parameters |= {"done_id": completes, "done_at": values["updated_at"]}
    if session.execute(statement, parameters).scalar() != 1:
        return False
    _remember(message, values)
    return True


def release(*, session: Session, ids: list[int], worker_id: str, now: datetime) -> int:
    """Put claimed messages that never reached the provider back in the queue."""
    if not ids:
        return 0
    return session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.status == outbox.SENDING,
            Message.claimed_by == worker_id[:80],
            Message.sent_at.is_(None),
        )
        .values(status=outbox.SCHEDULED, attempts=Message.attempts - 1, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def recover_in_flight(
    *, session: Session, now: datetime, older_than: timedelta = IN_FLIGHT_TIMEOUT
) -> list[int]:
    """Settle messages a crashed worker left in 'sending'; the ids now 'unknown'.

    Handed to the provider more than `older_than` ago: 'unknown', surfaced, never resent.
    Claimed that long ago and never handed over: back to the queue, since no provider saw it.
    """
    cutoff = now - older_than
    stuck = list(
        session.scalars(
            select(Message)
            .where(
                Message.status == outbox.SENDING,
                or_(
                    and_(Message.sent_at.is_(None), Message.claimed_at < cutoff),
                    Message.sent_at < cutoff,
                ),
            )
            .order_by(Message.id)
            .with_for_update(skip_locked=True)
        )
    )
    unknown = []
    for message in stuck:
        message.updated_at = now
        if message.sent_at is None:
            message.status = outbox.SCHEDULED
            message.attempts = max(0, message.attempts - 1)
            action, reason = "message.released", "claimed_by_a_crashed_worker"
        else:
            message.status = outbox.UNKNOWN
            message.rule = CRASHED_IN_FLIGHT
            unknown.append(message.id)
            action, reason = "message.unknown", CRASHED_IN_FLIGHT
        record(
            session=session,
            at=now,
            actor="recovery",
            action=action,
            subject_type="message",
            subject_id=message.id,
            reason=reason,
            details={"claimed_by": message.claimed_by, "channel": message.channel},
        )
    session.flush()
    return unknown
