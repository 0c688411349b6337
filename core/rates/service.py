"""Recording market rates and turning today's index into the broker's offer rate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
    HIGHEST_RATE,
    LOWEST_RATE,
    PRODUCTS,
    Observation,
    load_history_file,
)

BUNDLED_HISTORY = Path(__file__).resolve().parent.parent / "data" / "pmms_weekly.csv"
BUNDLED_SOURCE = "pmms"
MANUAL_SOURCE = "manual"
# Freddie Mac revises a week now and then; re-reading two weeks back picks the revisions up.
REFETCH_OVERLAP = timedelta(days=14)
_STORED_PLACES = Decimal("0.00001")  # the market_rates.rate column keeps five decimals
_SOURCE_LENGTH = 200
_PRODUCT_WORDS = {"30y": "30-year", "15y": "15-year"}


class RateError(ValueError):
    """A market rate that cannot be recorded (wrong product, implausible value)."""


@dataclass(frozen=True)
class RecordResult:
    """What recording a batch of observations did, and the index in effect afterwards."""

    inserted: int
    updated: int
    unchanged: int
    latest: dict[str, Observation | None]


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
    """The observation with its rate at stored precision; RateError when it cannot be right."""
    if observation.product not in PRODUCTS:
        raise RateError(f"product {observation.product!r} is not one of {', '.join(PRODUCTS)}")
    rate = observation.rate
    if not (rate.is_finite() and LOWEST_RATE < rate < HIGHEST_RATE):
        raise RateError(f"rate {rate}% is outside {LOWEST_RATE}-{HIGHEST_RATE}%")
    rate = rate.quantize(_STORED_PLACES)
    if rate <= LOWEST_RATE:
        raise RateError(f"rate {observation.rate}% rounds to zero")
    source = observation.source[:_SOURCE_LENGTH]
    return Observation(on=observation.on, product=observation.product, rate=rate, source=source)


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


def record_observations(
    *, session: Session, observations: Iterable[Observation], now: datetime
) -> RecordResult:
    """Store observations, keyed by (date, product, source): insert new, update changed rates."""
    wanted = {}
    for observation in map(_checked, observations):
        wanted[(observation.on, observation.product, observation.source)] = observation
    existing = _existing(session, wanted)
    updated = unchanged = 0
    new_rows = []
    for key, observation in wanted.items():
        row = existing.get(key)
        if row is None:
            new_rows.append(
                MarketRate(
                    on=observation.on,
                    product=observation.product,
                    rate=observation.rate,
                    source=observation.source,
                    recorded_at=now,
                )
            )
        elif row.rate != observation.rate:
            row.rate, row.recorded_at = observation.rate, now
            updated += 1
        else:
            unchanged += 1
    session.add_all(new_rows)
    session.flush()
    return RecordResult(
        inserted=len(new_rows),
        updated=updated,
        unchanged=unchanged,
        latest=latest_observations(session=session, on=now.date()),
    )


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
    """The product's newest market rate dated on or before `on` (manual wins a tie)."""
    query = (
        select(MarketRate)
        .where(MarketRate.product == product, MarketRate.on <= on)
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
    query = select(MarketRate).where(MarketRate.product == product)
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
    *, session: Session, rate: Decimal, product: str, on: date, now: datetime, actor: str
) -> RecordResult:
    """Record a rate the broker typed in (source 'manual'), with an audit event."""
    observation = Observation(on=on, product=product, rate=rate, source=MANUAL_SOURCE)
    result = record_observations(session=session, observations=[observation], now=now)
    record(
        session=session,
        at=now,
        actor=actor,
        action="rate_set",
        subject_type="market_rate",
        subject_id=f"{product}:{on.isoformat()}",
        details={"product": product, "on": on.isoformat(), "rate": str(rate)},
    )
    return result


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


def fetch_and_record(*, session: Session, feed: RateFeed, now: datetime) -> RecordResult:
    """Fetch new observations from the feed and record them; FeedError propagates."""
    observations = feed.fetch(since=_refetch_start(session))
    return record_observations(session=session, observations=observations, now=now)


def history_source(path: Path) -> str:
    """The stable source name for a history file: 'pmms' for the bundled one, else its name."""
    if path.name == BUNDLED_HISTORY.name or path.resolve() == BUNDLED_HISTORY:
        return BUNDLED_SOURCE
    return f"file:{path.name}"


def load_history(*, session: Session, path: Path, now: datetime) -> RecordResult:
    """Record every observation of a history CSV; FeedError when it cannot be read."""
    observations = load_history_file(path, source=history_source(path))
    return record_observations(session=session, observations=observations, now=now)
