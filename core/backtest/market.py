"""The survey weeks of a range and the offer rates on each, from one read of the rate table."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Config
from core.flows import PRODUCTS
from core.rates.models import MarketRate
from core.rates.parsers import load_history_file
from core.rates.service import Offer, history_source, record_observations


def load_range_history(
    *, session: Session, path: Path, start: date, end: date, now: datetime
) -> None:
    """Record the observations of a history file that a replay of start..end can see.

    Those are the ones dated up to `end`, from each product's last one on or before `start`
    (the index in effect on the first day): recording all 56 years of the bundled history
    cost as much as importing a 2,000-loan book.
    """
    observations = load_history_file(path, source=history_source(path))
    first = {
        product: max(
            (seen.on for seen in observations if seen.product == product and seen.on <= start),
            default=date.min,
        )
        for product in {seen.product for seen in observations}
    }
    seen_by_replay = [seen for seen in observations if first[seen.product] <= seen.on <= end]
    record_observations(session=session, observations=seen_by_replay, now=now)


def survey_weeks(*, session: Session, start: date, end: date) -> list[date]:
    """The dates of the 30-year observations recorded between start and end (inclusive)."""
    query = (
        select(MarketRate.on)
        .where(MarketRate.product == "30y", MarketRate.on.between(start, end))
        .distinct()
        .order_by(MarketRate.on)
    )
    return list(session.scalars(query))


def weekly_offers(*, session: Session, weeks: list[date], config: Config) -> list[dict[str, Offer]]:
    """Each week's offer per product, as `core.flows.offers_on` finds it on that day.

    The private database holds one history file recorded as it is (`load_range_history`):
    one observation per product and day, none held back. The index in effect on a day is
    then the latest observation dated on or before it, found here for every week from one
    read instead of two queries a week (the tests hold it to `offers_on`).
    """
    rows = session.execute(
        select(MarketRate.product, MarketRate.on, MarketRate.rate, MarketRate.source)
        .where(MarketRate.on <= max(weeks, default=date.min))
        .order_by(MarketRate.on)
    ).all()
    offers: list[dict[str, Offer]] = [{} for _ in weeks]
    for product in PRODUCTS:
        observed = [row for row in rows if row.product == product]
        days = [row.on for row in observed]
        offset = config.rates.offset(product)
        for index, week in enumerate(weeks):
            at = bisect_right(days, week)
            if at:
                index_row = observed[at - 1]
                offers[index][product] = Offer(
                    product=product, index_rate=index_row.rate, offset=offset,
                    rate=index_row.rate + offset, as_of=index_row.on, source=index_row.source,
                )  # fmt: skip
    return offers
