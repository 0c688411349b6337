"""The few functions that coordinate across domains: import, evaluate, approve, reject."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches import service as batches
from core.batches.models import APPROVED, Batch
from core.book import importer
from core.book.importer import ImportResult
from core.bulk import any_of
from core.config import Config
from core.outreach.models import ACTIVE, Enrollment
from core.outreach.service import EnrollResult, end_sequences, enroll_batch
from core.rates.service import Offer, current_offer
from core.tracks.config import Track
from core.triggers.base import TriggerContext, people_left_alone
from core.triggers.registry import TRIGGERS

PRODUCTS = ("30y", "15y")


def offers_on(*, session: Session, now: datetime, config: Config) -> dict[str, Offer]:
    """Today's offer rate for each product that has a market observation."""
    offers = {}
    for product in PRODUCTS:
        offer = current_offer(session=session, product=product, on=now.date(), config=config.rates)
        if offer is not None:
            offers[product] = offer
    return offers


def trigger_context(*, session: Session, now: datetime, config: Config) -> TriggerContext:
    """The context every trigger evaluates in."""
    return TriggerContext(
        session=session,
        now=now,
        config=config,
        who_to_leave_alone=cache(partial(people_left_alone, session, now.date())),
        offers=offers_on(session=session, now=now, config=config),
    )


@dataclass(frozen=True)
class Evaluation:
    """The batches one evaluation created, and what enrolling the auto-approved ones did."""

    batches: list[Batch]
    enrolled: dict[int, EnrollResult]


def evaluate(
    *,
    session: Session,
    now: datetime,
    config: Config,
    tracks: Mapping[str, Track],
    only: Iterable[str] | None = None,
) -> Evaluation:
    """Run every enabled trigger; at most one new batch each, only for newly qualifying people."""
    ctx = trigger_context(session=session, now=now, config=config)
    created: list[Batch] = []
    enrolled: dict[int, EnrollResult] = {}
    # People put on a track by an earlier trigger of this evaluation are walking one now.
    walking: set[int] = set()
    for name, trigger in TRIGGERS.items():
        settings = getattr(config.triggers, name)
        if not settings.enabled or (only is not None and name not in only):
            continue
        found = trigger.find(ctx, for_segment=False).candidates()
        found = [candidate for candidate in found if candidate.contact_id not in walking]
        fresh = batches.new_candidates(session=session, trigger=name, candidates=found)
        offer = ctx.offers.get("30y") if name == "rate_drop" else None
        batch = batches.create_batch(
            session=session,
            trigger=name,
            segment=trigger.segment,
            candidates=fresh,
            now=now,
            approval_required=settings.approval_required,
            expiry_hours=config.batches.pending_expiry_hours,
            offer=offer,
        )
        if batch is None:
            continue
        created.append(batch)
        if batch.status == APPROVED:
            enrolled[batch.id] = enroll_batch(session=session, batch=batch, now=now, tracks=tracks)
            walking |= enrolled[batch.id].people
    return Evaluation(created, enrolled)


def approve_batch(
    *, session: Session, batch_id: int, by: str, now: datetime, tracks: Mapping[str, Track]
) -> tuple[Batch, EnrollResult]:
    """Approve a pending batch and enroll its members (their first touches become due)."""
    batch = batches.decide(session=session, batch_id=batch_id, approve=True, by=by, now=now)
    return batch, enroll_batch(session=session, batch=batch, now=now, tracks=tracks)


def reject_batch(*, session: Session, batch_id: int, by: str, now: datetime) -> Batch:
    """Reject a pending batch; its members may qualify again later."""
    return batches.decide(session=session, batch_id=batch_id, approve=False, by=by, now=now)


def import_book(
    *, session: Session, now: datetime, actor: str = "cli", **kwargs: Any
) -> ImportResult:
    """Import an export from a stream (`core.book.importer.import_book`); a newly funded loan
    ends that person's outreach at once: they already came back."""
    result = importer.import_book(session=session, now=now, actor=actor, **kwargs)
    _end_sequences_of_funded(session, result, now, actor)
    return result


def import_file(
    *, session: Session, path: Path, now: datetime, actor: str = "cli", **kwargs: Any
) -> ImportResult:
    """Import the file at `path`, as `import_book` does."""
    result = importer.import_file(session=session, path=path, now=now, actor=actor, **kwargs)
    _end_sequences_of_funded(session, result, now, actor)
    return result


def _end_sequences_of_funded(
    session: Session, result: ImportResult, now: datetime, actor: str
) -> None:
    if not result.newly_funded:
        return
    enrolled = session.scalars(
        select(Enrollment.contact_id)
        .where(
            Enrollment.status == ACTIVE,
            any_of(session, Enrollment.contact_id, result.newly_funded),
        )
        .distinct()
    ).all()
    for contact_id in sorted(enrolled):
        end_sequences(session=session, contact_id=contact_id, reason="funded", now=now, actor=actor)
        result.sequences_stopped += 1
