"""Recording market rates and turning today's index into the broker's offer rate."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.config import RatesConfig
from core.rates.feeds import RateFeed
from core.rates.models import MarketRate
from core.rates.parsers import (
    PRODUCTS,
    Observation,
    RateError,
    load_history_file,
    parse_rate,
)

log = logging.getLogger(__name__)

BUNDLED_HISTORY = Path(__file__).resolve().parent.parent / "data" / "pmms_weekly.csv"
BUNDLED_SOURCE = "pmms"
MANUAL_SOURCE = "manual"
# Freddie Mac revises a week now and then; re-reading two weeks back picks the revisions up.
REFETCH_OVERLAP = timedelta(days=14)
_STORED_PLACES = Decimal("0.00001")  # the market_rates.rate column keeps five decimals
_SOURCE_LENGTH = 200
_PRODUCT_WORDS = {"30y": "30-year", "15y": "15-year"}


class RateMoveError(RateError):
    """A typed rate so far from the product's latest observation that it needs --confirm."""


@dataclass(frozen=True)
class HeldRate:
    """An observation stored but kept out of the index until an operator confirms it."""

    product: str
    on: date
    rate: Decimal
    source: str
    reason: str


@dataclass(frozen=True)
class RecordResult:
    """What recording a batch of observations did, and the index in effect afterwards."""

    inserted: int
    updated: int
    unchanged: int
    latest: dict[str, Observation | None]
    held: list[HeldRate] = field(default_factory=list)  # held by this recording
    future: int = 0  # refused: dated after today


@dataclass(frozen=True)
class Offer:
    """The rate a borrower would be offered today: a market index plus the broker's offset."""

    product: str
    index_rate: Decimal
    offset: Decimal
    rate: Decimal
    as_of: date
    source: str

    def describe(self) -> str:
        """One line saying which rate was used, for every message and card that quotes it."""
        sign = "-" if self.offset < 0 else "+"
        return (
            f"{index_words(self.source, self.product, self.index_rate, self.as_of)} "
            f"{sign} {format_rate(abs(self.offset))} offset = {format_rate(self.rate)}%"
        )


def format_rate(value: Decimal) -> str:
    """A rate in percent with at least two decimals and no trailing zeros beyond them."""
    text = f"{value.normalize():f}"
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _plain(value: Decimal) -> str:
    """A rate without trailing zeros or exponent, as the audit trail keeps it: 6.125, 7."""
    return f"{value.normalize():f}"


def index_words(source: str, product: str, rate: Decimal, on: date) -> str:
    """The index in words a loan officer recognizes: where it came from, its rate and date."""
    term = _PRODUCT_WORDS.get(product, product)
    shown = f"{format_rate(rate)}%"
    when = f"({on.isoformat()})"
    if source == BUNDLED_SOURCE:
        return f"Freddie Mac PMMS {term} average {shown} {when}"
    if source.startswith("fred:"):
        series = source.removeprefix("fred:")
        return f"Freddie Mac PMMS {term} average {shown} {when} via FRED {series}"
    if source == MANUAL_SOURCE:
        return f"{term} rate {shown} set manually {when}"
    return f"{term} rate {shown} from {source.removeprefix('file:')} {when}"


def _checked(observation: Observation) -> Observation:
    """The observation with its rate read by the one rate parser; RateError when it is wrong."""
    if observation.product not in PRODUCTS:
        raise RateError(f"product {observation.product!r} is not one of {', '.join(PRODUCTS)}")
    try:
        # The same parser as every other way in: a Decimal 0.065 is 6.5 % like the text is.
        rate = parse_rate(format(observation.rate, "f"))
    except RateError as exc:
        raise RateError(f"{observation.product} rate of {observation.on}: {exc}") from None
    source = observation.source[:_SOURCE_LENGTH]
    return Observation(
        on=observation.on,
        product=observation.product,
        rate=rate.quantize(_STORED_PLACES),
        source=source,
    )


def _existing(
    session: Session, wanted: dict[tuple[date, str, str], Observation]
) -> dict[tuple[date, str, str], MarketRate]:
    """Stored rows sharing a key with `wanted`, read one date range per (product, source)."""
    ranges: dict[tuple[str, str], tuple[date, date]] = {}
    for on, product, source in wanted:
        low, high = ranges.get((product, source), (on, on))
        ranges[(product, source)] = (min(low, on), max(high, on))
    found: dict[tuple[date, str, str], MarketRate] = {}
    for (product, source), (low, high) in ranges.items():
        rows = session.scalars(
            select(MarketRate).where(
                MarketRate.product == product,
                MarketRate.source == source,
                MarketRate.on.between(low, high),
            )
        )
        for row in rows:
            key = (row.on, row.product, row.source)
            if key in wanted:
                found[key] = row
    return found


def _not_future(observations: Iterable[Observation], today: date) -> tuple[list[Observation], int]:
    """The observations dated today or earlier, and how many were refused as future-dated."""
    kept, future = [], 0
    for observation in observations:
        if observation.on > today:
            log.warning(
                "refused %s rate %s%% from %s: dated %s, after today (%s)",
                observation.product,
                format_rate(observation.rate),
                observation.source,
                observation.on.isoformat(),
                today.isoformat(),
            )
            future += 1
        else:
            kept.append(observation)
    return kept, future


def record_observations(
    *,
    session: Session,
    observations: Iterable[Observation],
    now: datetime,
    max_move: Decimal | None = None,
) -> RecordResult:
    """Store observations, keyed by (date, product, source): insert new, update changed rates.

    Observations dated after today are refused (counted, not stored). With `max_move`, a new
    newest observation farther than that from the product's latest is stored but held.
    """
    wanted = {}
    for observation in map(_checked, observations):
        wanted[(observation.on, observation.product, observation.source)] = observation
    kept, future = _not_future(wanted.values(), now.date())
    wanted = {(item.on, item.product, item.source): item for item in kept}
    existing = _existing(session, wanted)
    changed = [
        item
        for key, item in wanted.items()
        if key not in existing or existing[key].rate != item.rate
    ]
    verdicts = {} if max_move is None else _judge_moves(session, changed, now.date(), max_move)
    new_rows = []
    for observation in changed:
        key = (observation.on, observation.product, observation.source)
        reason = verdicts.get(key)
        row = existing.get(key)
        if row is None:
            new_rows.append(
                MarketRate(
                    on=observation.on,
                    product=observation.product,
                    rate=observation.rate,
                    source=observation.source,
                    recorded_at=now,
                    held_reason=reason,
                )
            )
        else:
            row.rate, row.recorded_at = observation.rate, now
            if key in verdicts:  # a checked revision: held again, or released if it now fits
                row.held_reason = reason
    session.add_all(new_rows)
    session.flush()
    held = [
        HeldRate(product=product, on=on, rate=wanted[(on, product, source)].rate, source=source,
                 reason=reason)
        for (on, product, source), reason in verdicts.items()
        if reason is not None
    ]  # fmt: skip
    for item in held:
        log.warning("%s", held_warning(item))
    return RecordResult(
        inserted=len(new_rows),
        updated=len(changed) - len(new_rows),
        unchanged=len(wanted) - len(changed),
        latest=latest_observations(session=session, on=now.date()),
        held=held,
        future=future,
    )


def held_warning(item: HeldRate) -> str:
    """The line that tells an operator a feed's rate is held and how to release it."""
    return (
        f"held {item.product} rate {format_rate(item.rate)} % of {item.on.isoformat()} from "
        f"{item.source}: {item.reason}; if it is right: winback rates confirm "
        f"--product {item.product} --date {item.on.isoformat()}"
    )


def _move_reason(rate: Decimal, reference: Observation) -> str:
    """How far a rate is from the reference observation, in the words of the error line."""
    points = format_rate(abs(rate - reference.rate))
    return (
        f"{points} points from the latest observation "
        f"({format_rate(reference.rate)} % on {reference.on.isoformat()})"
    )


def _reference(
    session: Session, product: str, today: date, besides: set[tuple[date, str]]
) -> Observation | None:
    """The product's index in effect today, not counting the (date, source) pairs `besides`."""
    query = (
        select(MarketRate)
        .where(
            MarketRate.product == product,
            MarketRate.on <= today,
            MarketRate.held_reason.is_(None),
        )
        .order_by(*_newest_first())
        .limit(len(besides) + 1)
    )
    for row in session.scalars(query):
        if (row.on, row.source) not in besides:
            return _as_observation(row)
    return None


def _judge_moves(
    session: Session, changed: list[Observation], today: date, max_move: Decimal
) -> dict[tuple[date, str, str], str | None]:
    """For each new or revised observation that would lead the index, why it is held (or None).

    Only observations on or after the product's latest are judged, each against the one before
    it: older weeks are history, whose real jumps (1980: 1.4 points in a week) stand.
    """
    verdicts: dict[tuple[date, str, str], str | None] = {}
    for product in PRODUCTS:
        mine = sorted(
            (item for item in changed if item.product == product),
            key=lambda item: (item.on, item.source != MANUAL_SOURCE),
        )
        reference = _reference(session, product, today, {(item.on, item.source) for item in mine})
        if reference is None:
            continue  # nothing to compare with: a first fetch is history like a loaded file
        for item in mine:
            if item.on < reference.on:
                continue
            key = (item.on, item.product, item.source)
            if abs(item.rate - reference.rate) > max_move:
                verdicts[key] = _move_reason(item.rate, reference)
            else:
                verdicts[key], reference = None, item
    return verdicts


def _newest_first() -> tuple[object, ...]:
    """Ordering that puts the index in effect first: newest date, then manual, then latest."""
    manual_first = case((MarketRate.source == MANUAL_SOURCE, 0), else_=1)
    return (
        MarketRate.on.desc(),
        manual_first,
        MarketRate.recorded_at.desc(),
        MarketRate.id.desc(),
    )


def latest_index(*, session: Session, product: str, on: date) -> MarketRate | None:
    """The product's newest market rate in use dated on or before `on` (manual wins a tie)."""
    query = (
        select(MarketRate)
        .where(MarketRate.product == product, MarketRate.on <= on, MarketRate.held_reason.is_(None))
        .order_by(*_newest_first())
        .limit(1)
    )
    return session.scalars(query).first()


def _as_observation(row: MarketRate | None) -> Observation | None:
    """A stored row as a plain observation."""
    if row is None:
        return None
    return Observation(on=row.on, product=row.product, rate=row.rate, source=row.source)


def latest_observations(*, session: Session, on: date) -> dict[str, Observation | None]:
    """The index in effect on `on` for each product (None where nothing is recorded yet)."""
    return {
        product: _as_observation(latest_index(session=session, product=product, on=on))
        for product in PRODUCTS
    }


def current_offer(*, session: Session, product: str, on: date, config: RatesConfig) -> Offer | None:
    """The offer rate on `on`: the index in effect plus the configured offset, if any index."""
    index = latest_index(session=session, product=product, on=on)
    if index is None:
        return None
    offset = config.offset(product)
    return Offer(
        product=product,
        index_rate=index.rate,
        offset=offset,
        rate=index.rate + offset,
        as_of=index.on,
        source=index.source,
    )


def product_for_term(term_months: int | None, config: RatesConfig) -> str:
    """The market product a loan compares with: '15y' for short terms, else '30y'."""
    if term_months is not None and term_months <= config.fifteen_year_max_term_months:
        return "15y"
    return "30y"


def _latest_recorded_by(
    session: Session, product: str, cutoff: datetime | None, on: date | None
) -> MarketRate | None:
    """The product's index in effect counting only rows recorded at or before `cutoff`."""
    query = select(MarketRate).where(
        MarketRate.product == product, MarketRate.held_reason.is_(None)
    )
    if cutoff is not None:
        query = query.where(MarketRate.recorded_at <= cutoff)
    if on is not None:
        query = query.where(MarketRate.on <= on)
    return session.scalars(query.order_by(*_newest_first()).limit(1)).first()


def rate_changed_since(*, session: Session, since: datetime, on: date | None = None) -> bool:
    """True when something recorded after `since` moved a product's index (dated ≤ `on`)."""
    for product in PRODUCTS:
        now_latest = _latest_recorded_by(session, product, None, on)
        if now_latest is None or now_latest.recorded_at <= since:
            continue
        # An in-place update overwrites the old value, so the comparison is with the best
        # row recorded before `since`; a correction back to that value reads as no move.
        before = _latest_recorded_by(session, product, since, on)
        if before is None or before.rate != now_latest.rate:
            return True
    return False


def record_manual_rate(
    *,
    session: Session,
    rate: Decimal,
    product: str,
    on: date,
    now: datetime,
    actor: str,
    max_move: Decimal | None = None,
    confirm: bool = False,
) -> RecordResult:
    """Record a rate the broker typed in (source 'manual'), with an audit event.

    Refused when dated after today, and (RateMoveError) when farther than `max_move` from the
    product's latest observation unless `confirm`.
    """
    today = now.date()
    if on > today:
        raise RateError(f"the {product} rate is dated {on}, after today ({today})")
    observation = _checked(Observation(on=on, product=product, rate=rate, source=MANUAL_SOURCE))
    details = {"product": product, "on": on.isoformat(), "rate": _plain(observation.rate)}
    if max_move is not None:
        # A typed rate is judged against the latest whatever its date: a typo is a typo.
        reference = _reference(session, product, today, {(on, MANUAL_SOURCE)})
        if reference and abs(observation.rate - reference.rate) > max_move:
            moved = _move_reason(observation.rate, reference)
            if not confirm:
                raise RateMoveError(
                    f"{product} rate {format_rate(observation.rate)} % is {moved}: "
                    "run again with --confirm if it is right"
                )
            details["confirmed_move"] = moved
    result = record_observations(session=session, observations=[observation], now=now)
    record(
        session=session,
        at=now,
        actor=actor,
        action="rate_set",
        subject_type="market_rate",
        subject_id=f"{product}:{on.isoformat()}",
        details=details,
    )
    return result


def _held_rows(session: Session, product: str | None, on: date | None) -> list[MarketRate]:
    """The held rows, of one product and one date when given, oldest first."""
    query = select(MarketRate).where(MarketRate.held_reason.is_not(None))
    if product is not None:
        query = query.where(MarketRate.product == product)
    if on is not None:
        query = query.where(MarketRate.on == on)
    return list(session.scalars(query.order_by(MarketRate.on, MarketRate.product, MarketRate.id)))


def _held(row: MarketRate) -> HeldRate:
    """A held row as a plain value."""
    return HeldRate(
        product=row.product,
        on=row.on,
        rate=row.rate,
        source=row.source,
        reason=row.held_reason or "",
    )


def held_rates(*, session: Session) -> list[HeldRate]:
    """Every observation held out of the index until an operator confirms it, oldest first."""
    return [_held(row) for row in _held_rows(session, None, None)]


def confirm_held(
    *,
    session: Session,
    now: datetime,
    actor: str,
    product: str | None = None,
    on: date | None = None,
) -> list[HeldRate]:
    """Release held observations (of a product, of a date) into the index, each audited."""
    confirmed = []
    for row in _held_rows(session, product, on):
        item = _held(row)
        # It enters the index now: recorded_at moves so the next evaluation sees the move.
        row.held_reason, row.recorded_at = None, now
        record(
            session=session,
            at=now,
            actor=actor,
            action="rate_confirmed",
            subject_type="market_rate",
            subject_id=f"{item.product}:{item.on.isoformat()}",
            reason=item.reason,
            details={"source": item.source, "rate": _plain(item.rate)},
        )
        confirmed.append(item)
    session.flush()
    return confirmed


def _refetch_start(session: Session) -> date | None:
    """Where a feed fetch should begin: two weeks before the oldest product's newest feed row."""
    newest = dict(
        session.execute(
            select(MarketRate.product, func.max(MarketRate.on))
            .where(MarketRate.source != MANUAL_SOURCE)
            .group_by(MarketRate.product)
        ).all()
    )
    if any(newest.get(product) is None for product in PRODUCTS):
        return None  # a product with no history yet: fetch everything the feed has
    return min(newest[product] for product in PRODUCTS) - REFETCH_OVERLAP


def fetch_and_record(
    *, session: Session, feed: RateFeed, now: datetime, max_move: Decimal | None
) -> RecordResult:
    """Fetch new observations and record them, holding jumps past `max_move`; FeedError raises."""
    observations = feed.fetch(since=_refetch_start(session))
    return record_observations(
        session=session, observations=observations, now=now, max_move=max_move
    )


def history_source(path: Path) -> str:
    """The stable source name for a history file: 'pmms' for the bundled one, else its name."""
    if path.name == BUNDLED_HISTORY.name or path.resolve() == BUNDLED_HISTORY:
        return BUNDLED_SOURCE
    return f"file:{path.name}"


def load_history(*, session: Session, path: Path, now: datetime) -> RecordResult:
    """Record a history CSV as it is (real jumps stand), up to today; FeedError if unreadable."""
    observations = load_history_file(path, source=history_source(path))
    return record_observations(session=session, observations=observations, now=now)
