"""Recording market rates and reading the offer rate, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.config import RatesConfig
from core.rates.models import MarketRate
from core.rates.parsers import FeedError, Observation, load_history_file
from core.rates.service import (
    BUNDLED_HISTORY,
    RateError,
    current_offer,
    fetch_and_record,
    latest_index,
    load_history,
    product_for_term,
    rate_changed_since,
    record_manual_rate,
    record_observations,
)

T1 = datetime(2026, 9, 24, 15, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=1)
T3 = T1 + timedelta(days=1)
OCT_1 = datetime(2026, 10, 1, 15, 0, tzinfo=UTC)
MOVE = Decimal("1.0")  # the shipped max_move_points


def obs(on: str, rate: str, product: str = "30y", source: str = "pmms") -> Observation:
    """An observation written the way people read one."""
    return Observation(
        on=date.fromisoformat(on), product=product, rate=Decimal(rate), source=source
    )


def stored(session: Session) -> int:
    """How many market rates are stored."""
    return session.scalar(select(func.count()).select_from(MarketRate)) or 0


class FakeFeed:
    """A feed answering fixed observations and remembering what it was asked."""

    def __init__(self, observations: list[Observation], error: FeedError | None = None) -> None:
        self.observations = observations
        self.error = error
        self.asked: list[date | None] = []

    def fetch(self, *, since: date | None = None) -> list[Observation]:
        """The observations on or after `since`."""
        self.asked.append(since)
        if self.error:
            raise self.error
        return [item for item in self.observations if since is None or item.on >= since]


# ---------------------------------------------------------------------------------------------
# Recording


def test_loading_bundled_history_twice_inserts_nothing_the_second_time(session: Session) -> None:
    expected = len(load_history_file(BUNDLED_HISTORY))
    first = load_history(session=session, path=BUNDLED_HISTORY, now=T1)
    assert (first.inserted, first.updated, first.unchanged) == (expected, 0, 0)
    assert expected > 4000  # both products, weekly since 1971 / 1991
    second = load_history(session=session, path=BUNDLED_HISTORY, now=T2)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, expected)
    assert stored(session) == expected
    latest = second.latest["30y"]
    assert latest is not None
    assert (latest.on, latest.rate, latest.source) == (date(2026, 9, 24), Decimal("7.03"), "pmms")


def test_bundled_file_is_pmms_wherever_it_lives_and_other_files_keep_their_name(
    session: Session, tmp_path: Path
) -> None:
    copy = tmp_path / "elsewhere" / BUNDLED_HISTORY.name
    copy.parent.mkdir()
    shutil.copy(BUNDLED_HISTORY, copy)
    load_history(session=session, path=BUNDLED_HISTORY, now=T1)
    assert load_history(session=session, path=copy, now=T2).inserted == 0

    mine = tmp_path / "broker_history.csv"
    mine.write_text("date,rate_30y,rate_15y\n2026-09-24,6.50,5.75\n")
    assert load_history(session=session, path=mine, now=T2).inserted == 2
    moved = tmp_path / "other" / "broker_history.csv"
    moved.parent.mkdir()
    shutil.copy(mine, moved)
    assert load_history(session=session, path=moved, now=T3).inserted == 0
    sources = set(session.scalars(select(MarketRate.source).distinct()))
    assert sources == {"pmms", "file:broker_history.csv"}


def test_a_changed_rate_is_counted_as_updated_and_stored(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-09-24", "6.12")], now=T1)
    result = record_observations(
        session=session,
        observations=[obs("2026-09-24", "6.15"), obs("2026-09-24", "5.40", "15y")],
        now=T2,
    )
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 0)
    row = latest_index(session=session, product="30y", on=date(2026, 9, 24))
    assert row is not None
    assert (row.rate, row.recorded_at) == (Decimal("6.15"), T2)
    assert stored(session) == 2


def test_same_rate_with_more_trailing_zeros_is_unchanged(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-09-24", "6.1")], now=T1)
    again = record_observations(session=session, observations=[obs("2026-09-24", "6.100")], now=T2)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)


@pytest.mark.parametrize(
    "bad",
    [obs("2026-09-24", "25"), obs("2026-09-24", "0"), obs("2026-09-24", "-1"),
     obs("2026-09-24", "NaN"), obs("2026-09-24", "20.01"), obs("2026-09-24", "0.99"),
     obs("2026-09-24", "0.005"), obs("2026-09-24", "6", product="5/1")],
)  # fmt: skip
def test_implausible_rates_and_unknown_products_are_refused(
    session: Session, bad: Observation
) -> None:
    with pytest.raises(RateError):
        record_observations(session=session, observations=[bad], now=T1)
    assert stored(session) == 0


def test_manual_rate_is_recorded_with_an_audit_event(session: Session) -> None:
    result = record_manual_rate(
        session=session,
        rate=Decimal("6.125"),
        product="15y",
        on=date(2026, 9, 24),
        now=T1,
        actor="cli",
    )
    assert result.inserted == 1
    latest = result.latest["15y"]
    assert latest is not None and (latest.source, latest.rate) == ("manual", Decimal("6.125"))
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "rate_set")).one()
    assert (event.actor, event.details) == (
        "cli",
        {"product": "15y", "on": "2026-09-24", "rate": "6.125"},
    )


# ---------------------------------------------------------------------------------------------
# Reading the index and the offer


def test_latest_index_is_newest_on_or_before_the_day_never_a_future_one(session: Session) -> None:
    rows = [obs("2026-09-10", "6.76"), obs("2026-09-17", "6.95"), obs("2026-10-01", "6.50")]
    record_observations(session=session, observations=rows, now=OCT_1)

    def rate_on(day: str) -> Decimal | None:
        row = latest_index(session=session, product="30y", on=date.fromisoformat(day))
        return row.rate if row else None

    assert rate_on("2026-09-09") is None
    assert rate_on("2026-09-10") == Decimal("6.76")
    assert rate_on("2026-09-24") == Decimal("6.95")
    assert rate_on("2026-10-01") == Decimal("6.50")
    assert latest_index(session=session, product="15y", on=date(2026, 10, 1)) is None


def test_on_a_shared_date_manual_wins_then_the_most_recently_recorded(session: Session) -> None:
    day = "2026-09-24"
    record_observations(session=session, observations=[obs(day, "6.90", source="a")], now=T1)
    record_observations(session=session, observations=[obs(day, "6.80", source="b")], now=T2)
    row = latest_index(session=session, product="30y", on=date(2026, 9, 24))
    assert row is not None and row.source == "b"
    record_observations(session=session, observations=[obs(day, "7.00", source="manual")], now=T1)
    row = latest_index(session=session, product="30y", on=date(2026, 9, 24))
    assert row is not None and (row.source, row.rate) == ("manual", Decimal("7.00"))


def test_offer_is_index_plus_offset_and_names_source_and_date(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-09-24", "6.12")], now=T1)
    config = RatesConfig(offset_30y=Decimal("0.25"), offset_15y=Decimal("-0.10"))
    offer = current_offer(session=session, product="30y", on=date(2026, 9, 30), config=config)
    assert offer is not None
    assert (offer.index_rate, offer.offset, offer.rate) == (
        Decimal("6.12"),
        Decimal("0.25"),
        Decimal("6.37"),
    )
    assert offer.as_of == date(2026, 9, 24)
    assert offer.describe() == (
        "Freddie Mac PMMS 30-year average 6.12% (2026-09-24) + 0.25 offset = 6.37%"
    )
    assert (
        current_offer(session=session, product="15y", on=date(2026, 9, 30), config=config) is None
    )


def test_manual_offer_says_so_and_shows_a_negative_offset(session: Session) -> None:
    record_manual_rate(
        session=session, rate=Decimal("5.5"), product="15y", on=date(2026, 9, 24), now=T1, actor="x"
    )
    config = RatesConfig(offset_15y=Decimal("-0.125"))
    offer = current_offer(session=session, product="15y", on=date(2026, 9, 24), config=config)
    assert offer is not None and offer.rate == Decimal("5.375")
    assert (
        offer.describe() == "15-year rate 5.50% set manually (2026-09-24) - 0.125 offset = 5.375%"
    )


@pytest.mark.parametrize(
    ("term", "product"), [(None, "30y"), (180, "15y"), (240, "15y"), (241, "30y"), (360, "30y")]
)
def test_loans_of_twenty_years_or_less_compare_with_the_15_year_rate(
    term: int | None, product: str
) -> None:
    assert product_for_term(term, RatesConfig()) == product


def test_the_fifteen_year_boundary_follows_configuration() -> None:
    config = RatesConfig(fifteen_year_max_term_months=180)
    assert (product_for_term(180, config), product_for_term(181, config)) == ("15y", "30y")


# ---------------------------------------------------------------------------------------------
# Did the rate move?


def test_rate_changed_since_only_when_the_latest_rate_moved(session: Session) -> None:
    week = [obs("2026-09-17", "6.95"), obs("2026-09-17", "6.26", "15y")]
    record_observations(session=session, observations=week, now=T1)
    assert rate_changed_since(session=session, since=T1 - timedelta(seconds=1))

    record_observations(session=session, observations=week, now=T2)  # identical re-fetch
    assert not rate_changed_since(session=session, since=T1)

    flat = [*week, obs("2026-09-24", "6.95")]  # a new week, same rate
    record_observations(session=session, observations=flat, now=T2)
    assert not rate_changed_since(session=session, since=T1)

    record_observations(session=session, observations=[obs("2026-09-24", "6.42", "15y")], now=T3)
    assert rate_changed_since(session=session, since=T2)
    assert not rate_changed_since(session=session, since=T3)


def test_an_older_backfilled_week_does_not_count_as_a_move(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-09-24", "7.03")], now=T1)
    record_observations(session=session, observations=[obs("2026-09-10", "6.76")], now=T2)
    assert not rate_changed_since(session=session, since=T1)


def test_a_correction_of_the_latest_week_counts_as_a_move(session: Session) -> None:
    rows = [obs("2026-09-17", "6.95"), obs("2026-09-24", "7.03")]
    record_observations(session=session, observations=rows, now=T1)
    record_observations(session=session, observations=[obs("2026-09-24", "7.01")], now=T2)
    assert rate_changed_since(session=session, since=T1)


def test_a_future_dated_rate_moves_nothing_before_its_day(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-09-24", "7.03")], now=T1)
    record_observations(session=session, observations=[obs("2026-10-01", "6.50")], now=OCT_1)
    assert not rate_changed_since(session=session, since=T1, on=date(2026, 9, 30))
    assert rate_changed_since(session=session, since=T1, on=date(2026, 10, 1))


# ---------------------------------------------------------------------------------------------
# Fetching


def test_first_fetch_asks_for_everything_later_ones_for_two_weeks_back(session: Session) -> None:
    feed = FakeFeed([obs("2026-09-17", "6.95"), obs("2026-09-17", "6.26", "15y")])
    assert fetch_and_record(session=session, feed=feed, now=T1, max_move=MOVE).inserted == 2
    feed.observations += [obs("2026-09-24", "7.03"), obs("2026-09-24", "6.42", "15y")]
    record_manual_rate(
        session=session,
        rate=Decimal("6"),
        product="30y",
        on=date(2026, 9, 30),
        now=OCT_1,
        actor="x",
    )
    again = fetch_and_record(session=session, feed=feed, now=OCT_1, max_move=MOVE)
    assert feed.asked == [None, date(2026, 9, 3)]  # a manual rate does not move the window
    assert (again.inserted, again.unchanged) == (2, 2)


def test_a_feed_failure_propagates_and_records_nothing(session: Session) -> None:
    feed = FakeFeed([], error=FeedError("got an HTML page instead of rate data", where="x"))
    with pytest.raises(FeedError):
        fetch_and_record(session=session, feed=feed, now=T1, max_move=MOVE)
    assert stored(session) == 0


# ---------------------------------------------------------------------------------------------
# Property: the index in effect is what a person would pick from the table

DAYS = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 3, 1))
OBSERVATIONS = st.lists(
    st.builds(
        Observation,
        on=DAYS,
        product=st.sampled_from(["30y", "15y"]),
        rate=st.decimals(min_value="1", max_value="20", places=3),
        source=st.sampled_from(["pmms", "manual", "fred:MORTGAGE30US"]),
    ),
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(observations=OBSERVATIONS, day=DAYS)
def test_latest_index_matches_picking_by_hand(
    session: Session, observations: list[Observation], day: date
) -> None:
    savepoint = session.begin_nested()
    try:
        record_observations(session=session, observations=observations, now=T1)
        kept = {(item.on, item.product, item.source): item for item in observations}
        for product in ("30y", "15y"):
            eligible = [
                item for item in kept.values() if item.product == product and item.on <= day
            ]
            row = latest_index(session=session, product=product, on=day)
            if not eligible:
                assert row is None
                continue
            newest = max(item.on for item in eligible)
            assert row is not None and row.on == newest
            sources = {item.source for item in eligible if item.on == newest}
            if "manual" in sources:
                assert row.source == "manual"
            assert row.rate == kept[(row.on, product, row.source)].rate
    finally:
        savepoint.rollback()
