"""The few functions that coordinate across domains: import, evaluate, approve, reject."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache, partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.attribution.service import credit_funded_loans
from core.batches import service as batches
from core.batches.candidate import Candidate
from core.batches.models import APPROVED, Batch
from core.batches.service import BatchExpired
from core.book import importer
from core.book.importer import ImportResult
from core.bulk import any_of
from core.config import AttributionConfig, BatchesConfig, Config, RatesConfig
from core.outreach.models import ACTIVE, Enrollment
from core.outreach.service import EnrollResult, end_sequences, enroll_batch
from core.rates.service import Offer, current_offer, format_rate
from core.tracks.config import Track
from core.triggers.base import TriggerContext, people_left_alone
from core.triggers.registry import TRIGGERS

PRODUCTS = ("30y", "15y")
WINDOW_DAYS = AttributionConfig().window_days


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
    # Per trigger, the people it found whom a pending batch of a higher-priority trigger holds
    # (by that trigger): left out, so the better track is not lost when that batch is approved.
    reserved: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class _Claims:
    """Who the triggers already run in this evaluation hold, so a later one leaves them alone."""

    walking: set[int] = field(default_factory=set)  # put on a track by this evaluation
    waiting: dict[int, str] = field(default_factory=dict)  # in a pending batch, by its trigger

    def free(self, name: str, found: list[Candidate], evaluation: Evaluation) -> list[Candidate]:
        """The candidates nobody holds yet; the reserved ones are counted in `evaluation`."""
        kept, reserved = [], Counter[str]()
        for candidate in found:
            holder = self.waiting.get(candidate.contact_id)
            if holder is not None:
                reserved[holder] += 1
            elif candidate.contact_id not in self.walking:
                kept.append(candidate)
        if reserved:
            evaluation.reserved[name] = dict(reserved)
        return kept

    def wait(self, trigger: str, contact_ids: Iterable[int]) -> None:
        """These people wait in a pending batch of `trigger` (the first holder keeps them)."""
        for contact_id in contact_ids:
            self.waiting.setdefault(contact_id, trigger)


def evaluate(
    *,
    session: Session,
    now: datetime,
    config: Config,
    tracks: Mapping[str, Track],
    only: Iterable[str] | None = None,
) -> Evaluation:
    """Run the enabled triggers by priority: at most one batch each, of people newly qualifying."""
    ctx = trigger_context(session=session, now=now, config=config)
    evaluation = Evaluation([], {})
    # A person a higher-priority trigger holds (on its track, or awaiting approval in its batch)
    # is left out of the later triggers: else an auto-approved batch enrolls them first and the
    # better track, once approved, finds them busy.
    claims = _Claims()
    earlier = batches.pending_members(session=session, now=now)
    for name in config.triggers.priority:
        settings = getattr(config.triggers, name)
        if settings.enabled and (only is None or name in only):
            _run_trigger(ctx, name, claims, evaluation, tracks)
        # A trigger that did not run today still holds the people of its pending batches.
        claims.wait(name, earlier.get(name, ()))
    return evaluation


def _run_trigger(
    ctx: TriggerContext,
    name: str,
    claims: _Claims,
    evaluation: Evaluation,
    tracks: Mapping[str, Track],
) -> None:
    """One trigger's batch of the people it newly finds whom no earlier trigger holds."""
    session, trigger = ctx.session, TRIGGERS[name]
    found = claims.free(name, trigger.find(ctx, for_segment=False).candidates(), evaluation)
    fresh = batches.new_candidates(session=session, trigger=name, candidates=found)
    batch = batches.create_batch(
        session=session,
        trigger=name,
        segment=trigger.segment,
        candidates=fresh,
        now=ctx.now,
        approval_required=ctx.config.approval_required(name),
        expiry_hours=ctx.config.batches.pending_expiry_hours,
        offer=ctx.offers.get("30y") if name == "rate_drop" else None,
        priced_on=_offers_used(ctx.offers, fresh),
    )
    if batch is None:
        return
    evaluation.batches.append(batch)
    if batch.status == APPROVED:
        holdout = ctx.config.holdout.fraction_for(name)
        result = enroll_batch(
            session=session, batch=batch, now=ctx.now, tracks=tracks, holdout=holdout
        )
        evaluation.enrolled[batch.id] = result
        # The held-out are taken too: no later trigger may message them in this evaluation.
        claims.walking |= result.people | result.held_out
    else:
        claims.wait(name, (candidate.contact_id for candidate in fresh))


def _offers_used(offers: Mapping[str, Offer], candidates: list[Candidate]) -> dict[str, Offer]:
    """The offers these candidates' snapshots were priced on (none for a trigger without rates)."""
    used = {candidate.snapshot.get("product") for candidate in candidates}
    return {product: offer for product, offer in offers.items() if product in used}


def approve_batch(
    *,
    session: Session,
    batch_id: int,
    by: str,
    now: datetime,
    tracks: Mapping[str, Track],
    config: Config | None = None,
) -> tuple[Batch, EnrollResult]:
    """Approve a pending batch and enroll its members (their first touches become due).

    A rate-drop batch whose rates moved since it was made is refused and expires at once
    (BatchExpired: commit the session so the expiry stays). Without `config`, today's offer
    uses the batch's own offsets and the shipped tolerance, and the shipped holdout applies.
    """
    batch = batches.pending_batch(session=session, batch_id=batch_id, now=now)
    moved = rates_moved(session=session, batch=batch, on=now.date(), config=config)
    if moved is not None:
        batches.expire_batch(session=session, batch=batch, now=now, actor=by, reason=moved)
        raise BatchExpired(moved)
    batch = batches.decide(session=session, batch_id=batch_id, approve=True, by=by, now=now)
    holdout = (config or Config()).holdout.fraction_for(batch.trigger)
    return batch, enroll_batch(
        session=session, batch=batch, now=now, tracks=tracks, holdout=holdout
    )


def rates_moved(
    *, session: Session, batch: Batch, on: date, config: Config | None = None
) -> str | None:
    """Why the rates a batch was priced on no longer hold on `on` (one line), or None."""
    tolerance = (config.batches if config else BatchesConfig()).rate_tolerance_points
    for product, basis in _priced_on(batch).items():
        rates = config.rates if config else _offsets_of(basis)
        today = current_offer(session=session, product=product, on=on, config=rates)
        was = f"{format_rate(Decimal(basis['rate']))} %"
        made_on = f"the {product} rate batch {batch.id} was made on ({was} of {basis['as_of']})"
        if today is None:
            return f"{made_on} is no longer in use: {_EVALUATE_AGAIN}"
        now_rate = f"{format_rate(today.rate)} %"
        if abs(today.rate - Decimal(basis["rate"])) > tolerance:
            what = "rates" if product == batch.rate_product else f"{product} rates"
            since = f"since batch {batch.id} was made"
            return f"{what} moved from {was} to {now_rate} {since}: {_EVALUATE_AGAIN}"
        # Within the tolerance but another observation: a newer week, or a manual rate typed in.
        same_source = basis.get("source") in (None, today.source)
        if today.as_of.isoformat() != basis["as_of"] or not same_source:
            latest = f"{now_rate} of {today.as_of.isoformat()} is"
            return f"{made_on} is no longer the latest ({latest}): {_EVALUATE_AGAIN}"
    return None


_EVALUATE_AGAIN = "run `winback evaluate` for a fresh batch"


def _priced_on(batch: Batch) -> dict[str, dict[str, Any]]:
    """Each product's offer the batch was priced on, the stated one first."""
    if batch.priced_on:
        first = batch.rate_product
        return dict(sorted(batch.priced_on.items(), key=lambda item: item[0] != first))
    if batch.rate is None or batch.rate_product is None or batch.rate_as_of is None:
        return {}  # not priced on a rate
    # Made before batches kept their observations: the stated rate and its date are known.
    return {batch.rate_product: {"rate": str(batch.rate), "as_of": batch.rate_as_of.isoformat()}}


def _offsets_of(basis: dict[str, Any]) -> RatesConfig:
    """Rates settings with the offset the batch was priced with (when no configuration is given)."""
    offset = Decimal(basis.get("offset", "0"))
    return RatesConfig(offset_30y=offset, offset_15y=offset)


def reject_batch(*, session: Session, batch_id: int, by: str, now: datetime) -> Batch:
    """Reject a pending batch; its members may qualify again later."""
    return batches.decide(session=session, batch_id=batch_id, approve=False, by=by, now=now)


def import_book(
    *, session: Session, now: datetime, actor: str = "cli", window_days: int = WINDOW_DAYS,
    **kwargs: Any,
) -> ImportResult:  # fmt: skip
    """Import an export from a stream (`core.book.importer.import_book`); a newly funded loan
    is credited to the outreach that won it (core.attribution) and ends that person's outreach
    at once, in the same transaction: they already came back."""
    result = importer.import_book(session=session, now=now, actor=actor, **kwargs)
    _end_sequences_of_funded(session, result, now, actor, window_days)
    return result


def import_file(
    *, session: Session, path: Path, now: datetime, actor: str = "cli",
    window_days: int = WINDOW_DAYS, **kwargs: Any,
) -> ImportResult:  # fmt: skip
    """Import the file at `path`, as `import_book` does."""
    result = importer.import_file(session=session, path=path, now=now, actor=actor, **kwargs)
    _end_sequences_of_funded(session, result, now, actor, window_days)
    return result


def _end_sequences_of_funded(
    session: Session, result: ImportResult, now: datetime, actor: str, window_days: int
) -> None:
    if not result.newly_funded:
        return
    credit_funded_loans(
        session=session, contact_ids=sorted(result.newly_funded), now=now,
        window_days=window_days, actor=actor,
    )  # fmt: skip
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
