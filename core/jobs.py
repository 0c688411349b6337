"""What the worker does, as plain functions: each opens its own session(s) and commits.

`winback tick` runs them all once, in order; the worker schedules them. On PostgreSQL the
singleton jobs (fetch rates, evaluate, expire batches) run under a transaction-scoped advisory
lock, so however many workers run, only one does that work at a time; the others skip it. The
lock is keyed by database and schema (core.locks), so other installs on the server never block it.
Dispatch needs no such lock: claiming with SKIP LOCKED lets workers share the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.audit.service import record
from core.batches.models import Batch
from core.batches.service import expire_pending
from core.cards.batch_view import cards_for_pending_batches, mark_batch_card_stale
from core.cards.digest import make_weekly_digest
from core.cards.escalation import escalate_due
from core.cards.posting import PostingOptions, post_due_cards
from core.cards.service import cards_for_open_tasks, cards_for_unrouted
from core.config import Config, RatesConfig, RepliesConfig
from core.flows import evaluate
from core.locks import only_one_worker
from core.outreach.claims import recover_in_flight
from core.outreach.dispatcher import DispatchOptions, dispatch
from core.rates.feeds import RateFeed
from core.rates.parsers import FeedError
from core.rates.service import fetch_and_record, held_rates, rate_changed_since
from core.tracks.config import Track

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]
EVALUATED = "evaluation.ran"
EVALUATE_EVERY = timedelta(days=1)
# The singleton jobs' lock names; core.locks turns each into a key for this database and schema.
LOCK_FETCH = "fetch_rates"
LOCK_EVALUATE = "evaluate"
LOCK_EXPIRE = "expire_batches"


def fetch_rates_job(
    *,
    session_factory: SessionFactory,
    now: datetime,
    feed: RateFeed,
    rates: RatesConfig | None = None,
) -> dict[str, Any]:
    """Fetch today's market rates, holding typo-like jumps; a feed failure is reported, not raised.

    `rates` defaults to the shipped [rates] settings; the summary lists every observation still
    held for an operator's `winback rates confirm`, with why, so no tick lets one go unnoticed.
    """
    max_move = (rates or RatesConfig()).max_move_points
    with session_factory() as session, session.begin():
        if not only_one_worker(session, LOCK_FETCH):
            return {"skipped": "another worker is fetching"}
        try:
            result = fetch_and_record(session=session, feed=feed, now=now, max_move=max_move)
        except FeedError as exc:
            logger.warning("rates not fetched: %s", exc)
            summary: dict[str, Any] = {"error": str(exc)}
        else:
            summary = {"inserted": result.inserted, "updated": result.updated}
            if result.future:
                summary["future"] = result.future
        held = held_rates(session=session)
    # Keys appear only when there is something to say, so a quiet week reads as before.
    if held:
        summary["held"] = [
            {"product": item.product, "date": item.on.isoformat(), "rate": float(item.rate),
             "source": item.source, "why": item.reason}
            for item in held
        ]  # fmt: skip
    return summary


def last_evaluation(session: Session) -> datetime | None:
    """When the triggers were last evaluated by the scheduler (from the audit trail)."""
    return session.scalar(select(func.max(AuditEvent.at)).where(AuditEvent.action == EVALUATED))


def _why_evaluate(session: Session, now: datetime) -> str | None:
    last = last_evaluation(session)
    if last is None:
        return "first evaluation"
    if now - last >= EVALUATE_EVERY:
        return "a day passed"
    if rate_changed_since(session=session, since=last, on=now.date()):
        return "a new rate observation moved the market"
    return None


def evaluate_job(
    *,
    session_factory: SessionFactory,
    now: datetime,
    config: Config,
    tracks: Mapping[str, Track],
) -> dict[str, Any]:
    """Evaluate every trigger when a new observation moved the rate or a day passed."""
    with session_factory() as session, session.begin():
        if not only_one_worker(session, LOCK_EVALUATE):
            return {"skipped": "another worker is evaluating"}
        expired = _expire_with_their_cards(session, now)
        why = _why_evaluate(session, now)
        if why is None:
            return {"evaluated": False, "expired": len(expired), "batches": []}
        result = evaluate(session=session, now=now, config=config, tracks=tracks)
        batches = [
            {"id": b.id, "trigger": b.trigger, "segment": b.segment, "size": b.size,
             "status": b.status}
            for b in result.batches
        ]  # fmt: skip
        record(
            session=session,
            at=now,
            actor="scheduler",
            action=EVALUATED,
            reason=why,
            details={"batches": [b["id"] for b in batches]},
        )
    return {"evaluated": True, "why": why, "expired": len(expired), "batches": batches}


def expire_batches_job(*, session_factory: SessionFactory, now: datetime) -> dict[str, Any]:
    """Expire pending batches whose approval window ran out."""
    with session_factory() as session, session.begin():
        if not only_one_worker(session, LOCK_EXPIRE):
            return {"skipped": "another worker is expiring"}
        expired = _expire_with_their_cards(session, now)
    return {"expired": [batch.id for batch in expired]}


def _expire_with_their_cards(session: Session, now: datetime) -> list[Batch]:
    """Expire what ran out of time; each one's approval card is re-rendered by the cards job,
    so its buttons say it expired instead of inviting a click that can only be refused."""
    expired = expire_pending(session=session, now=now)
    for batch in expired:
        mark_batch_card_stale(session, batch_id=batch.id)
    return expired


def recover_in_flight_job(*, session_factory: SessionFactory, now: datetime) -> dict[str, Any]:
    """Mark messages interrupted mid-send as unknown (never resent)."""
    with session_factory() as session, session.begin():
        recovered = recover_in_flight(session=session, now=now)
    if recovered:
        logger.warning("%d message(s) interrupted mid-send marked unknown", len(recovered))
    return {"unknown": recovered}


def dispatch_job(
    *, session_factory: SessionFactory, now: datetime, options: DispatchOptions
) -> dict[str, Any]:
    """One dispatch pass; the report as JSON."""
    return dispatch(session_factory=session_factory, now=now, options=options).as_json()


def cards_job(
    *,
    session_factory: SessionFactory,
    now: datetime,
    posting: PostingOptions,
    replies: RepliesConfig,
) -> dict[str, Any]:
    """Make the cards that are due (replies, call tasks, escalations, reminders) and post them."""
    with session_factory() as session, session.begin():
        made = cards_for_unrouted(session, now=now) + cards_for_open_tasks(session, now=now)
        made += cards_for_pending_batches(session, now=now)
        escalation = escalate_due(session, now=now, config=replies)
    summary: dict[str, Any] = {"made": made} if made else {}
    summary.update({key: value for key, value in escalation.items() if value})
    summary.update(post_due_cards(session_factory=session_factory, options=posting, now=now))
    return summary


def digest_job(*, session_factory: SessionFactory, now: datetime, config: Config) -> dict[str, Any]:
    """Make the week's digest card once it is due (the cards job posts it); no lock needed:
    its unique key lets one of any number of workers make it."""
    with session_factory() as session, session.begin():
        made = make_weekly_digest(session, now=now, config=config)
    return {"made": made} if made else {}


def tick(
    *,
    session_factory: SessionFactory,
    now: datetime,
    options: DispatchOptions,
    feed: RateFeed | None,
    posting: PostingOptions | None = None,
) -> dict[str, Any]:
    """Everything the worker does, once, in order; a JSON-able summary of each step."""
    summary: dict[str, Any] = {}
    summary["rates"] = (
        fetch_rates_job(
            session_factory=session_factory, now=now, feed=feed, rates=options.config.rates
        )
        if feed is not None
        else {"skipped": "no feed"}
    )
    summary["evaluation"] = evaluate_job(
        session_factory=session_factory, now=now, config=options.config, tracks=options.tracks
    )
    summary["expired"] = expire_batches_job(session_factory=session_factory, now=now)["expired"]
    recovered = recover_in_flight_job(session_factory=session_factory, now=now)
    summary["recovered"] = recovered["unknown"]
    summary["dispatch"] = dispatch_job(session_factory=session_factory, now=now, options=options)
    if posting is not None:
        digest = digest_job(session_factory=session_factory, now=now, config=options.config)
        if digest:  # only when there is one, so the summary of most ticks reads as before
            summary["digest"] = digest
        summary["cards"] = cards_job(
            session_factory=session_factory, now=now, posting=posting,
            replies=options.config.replies,
        )  # fmt: skip
    return summary
