"""A rate move that looks like a typo: typed ones need --confirm, a feed's are held until
confirmed and never reach the offer or the triggers; nothing is dated after today."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.config import RatesConfig
from core.rates.models import MarketRate
from core.rates.parsers import Observation
from core.rates.service import (
    RateError,
    RateMoveError,
    confirm_held,
    current_offer,
    fetch_and_record,
    held_rates,
    latest_index,
    load_history,
    rate_changed_since,
    record_manual_rate,
    record_observations,
)
from tests.rates.test_service import FakeFeed, obs
from tests.triggers.factories import NOW as TRIGGERS_NOW
from tests.triggers.factories import make_loan, qualifying

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
LAST_WEEK = date(2026, 11, 26)
MOVE = Decimal("1.0")


def index_rate(session: Session, product: str = "30y", on: date = TODAY) -> Decimal | None:
    """The rate of the index in effect, as the offer and the triggers read it."""
    row = latest_index(session=session, product=product, on=on)
    return row.rate if row else None


def fetch(session: Session, *observations: Observation, now: datetime = NOW):  # type: ignore[no-untyped-def]
    """One feed fetch answering these observations, with the shipped max move."""
    feed = FakeFeed(list(observations))
    return fetch_and_record(session=session, feed=feed, now=now, max_move=MOVE)


def set_by_hand(session: Session, rate: str, *, on: date = TODAY, confirm: bool = False):  # type: ignore[no-untyped-def]
    """`winback rates set RATE` as the CLI calls it."""
    return record_manual_rate(
        session=session, rate=Decimal(rate), product="30y", on=on, now=NOW, actor="cli",
        max_move=MOVE, confirm=confirm,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Typed by hand


def test_a_typed_rate_far_from_the_latest_is_refused_naming_both(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-11-26", "5.95")], now=NOW)
    with pytest.raises(RateMoveError) as refused:
        set_by_hand(session, "8.10")
    assert str(refused.value) == (
        "30y rate 8.10 % is 2.15 points from the latest observation (5.95 % on 2026-11-26): "
        "run again with --confirm if it is right"
    )
    assert index_rate(session) == Decimal("5.95")


def test_a_confirmed_typed_move_is_recorded_and_audited(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-11-26", "5.95")], now=NOW)
    set_by_hand(session, "8.10", confirm=True)
    assert index_rate(session) == Decimal("8.10")
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "rate_set")).one()
    assert event.details["confirmed_move"] == (
        "2.15 points from the latest observation (5.95 % on 2026-11-26)"
    )


def test_a_move_of_exactly_the_limit_needs_no_confirmation(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-11-26", "5.95")], now=NOW)
    set_by_hand(session, "6.95")
    assert index_rate(session) == Decimal("6.95")
    with pytest.raises(RateMoveError):
        set_by_hand(session, "4.94", on=LAST_WEEK)  # 1.01 below today's manual 6.95


def test_correcting_a_typed_rate_compares_with_the_other_observations(session: Session) -> None:
    record_observations(session=session, observations=[obs("2026-11-26", "5.95")], now=NOW)
    set_by_hand(session, "8.10", confirm=True)
    set_by_hand(session, "6.10")  # back near 5.95: the wrong 8.10 it replaces does not count
    assert index_rate(session) == Decimal("6.10")


def test_the_first_rate_ever_typed_needs_no_confirmation(session: Session) -> None:
    set_by_hand(session, "8.10")
    assert index_rate(session) == Decimal("8.10")


def test_a_typed_rate_dated_after_today_is_refused(session: Session) -> None:
    with pytest.raises(RateError, match=r"dated 2026-12-04, after today \(2026-12-03\)"):
        set_by_hand(session, "6.5", on=TODAY + timedelta(days=1))
    assert session.scalars(select(MarketRate)).first() is None


# ---------------------------------------------------------------------------------------------
# From a feed


def test_a_feed_jump_is_stored_but_held_out_of_the_offer(session: Session) -> None:
    fetch(session, obs("2026-11-26", "5.95"), obs("2026-11-26", "5.20", "15y"))
    result = fetch(session, obs("2026-12-03", "8.10"), obs("2026-12-03", "5.30", "15y"))

    assert result.inserted == 2
    (held,) = result.held
    assert (held.product, held.on, held.rate) == ("30y", TODAY, Decimal("8.10"))
    assert held.reason == "2.15 points from the latest observation (5.95 % on 2026-11-26)"
    offer = current_offer(session=session, product="30y", on=TODAY, config=RatesConfig())
    assert offer is not None and (offer.index_rate, offer.as_of) == (Decimal("5.95"), LAST_WEEK)
    assert index_rate(session, "15y") == Decimal("5.30")  # the other product is in use
    assert result.latest["30y"] is not None and result.latest["30y"].rate == Decimal("5.95")
    assert [item.rate for item in held_rates(session=session)] == [Decimal("8.10")]


def test_a_held_jump_is_logged_with_how_to_confirm_it(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    fetch(session, obs("2026-11-26", "5.95"))
    with caplog.at_level("WARNING", logger="core.rates"):
        fetch(session, obs("2026-12-03", "8.10"))
    assert (
        "held 30y rate 8.10 % of 2026-12-03 from pmms: 2.15 points from the latest observation "
        "(5.95 % on 2026-11-26); if it is right: winback rates confirm --product 30y "
        "--date 2026-12-03"
    ) in caplog.text


def test_a_held_rate_moves_nothing_until_confirmed_then_it_does(session: Session) -> None:
    fetched = NOW - timedelta(hours=1)
    fetch(session, obs("2026-11-26", "5.95"), now=fetched - timedelta(days=1))
    fetch(session, obs("2026-12-03", "8.10"), now=fetched)
    assert not rate_changed_since(session=session, since=fetched - timedelta(seconds=1))

    confirmed = confirm_held(session=session, now=NOW, actor="maria", product="30y", on=TODAY)

    assert [(item.on, item.rate) for item in confirmed] == [(TODAY, Decimal("8.10"))]
    assert index_rate(session) == Decimal("8.10")
    assert rate_changed_since(session=session, since=fetched)  # the evaluation sees it now
    assert held_rates(session=session) == []
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "rate_confirmed")).one()
    assert (event.actor, event.subject_id, event.reason) == (
        "maria",
        "30y:2026-12-03",
        "2.15 points from the latest observation (5.95 % on 2026-11-26)",
    )
    assert confirm_held(session=session, now=NOW, actor="maria") == []


def test_confirm_only_releases_what_it_names(session: Session) -> None:
    fetch(session, obs("2026-11-26", "5.95"), obs("2026-11-26", "5.20", "15y"))
    fetch(session, obs("2026-12-03", "8.10"), obs("2026-12-03", "3.90", "15y"))
    assert confirm_held(session=session, now=NOW, actor="x", on=LAST_WEEK) == []
    assert [
        item.product for item in confirm_held(session=session, now=NOW, actor="x", product="15y")
    ] == ["15y"]
    assert (index_rate(session, "15y"), index_rate(session)) == (Decimal("3.90"), Decimal("5.95"))


def test_the_next_weeks_after_a_real_jump_stay_held_with_it(session: Session) -> None:
    fetch(session, obs("2026-11-19", "5.95"))
    fetch(session, obs("2026-11-26", "8.10"))
    result = fetch(session, obs("2026-11-26", "8.10"), obs("2026-12-03", "8.05"))
    # Still 2.10 from the last rate in use: a real jump is confirmed once, for all its weeks.
    assert [item.on for item in result.held] == [TODAY]
    assert [item.on for item in held_rates(session=session)] == [LAST_WEEK, TODAY]
    confirm_held(session=session, now=NOW, actor="x", product="30y")
    assert index_rate(session) == Decimal("8.05")


def test_new_weeks_are_judged_each_against_the_one_before(session: Session) -> None:
    fetch(session, obs("2026-11-12", "6.00"))
    result = fetch(
        session, obs("2026-11-19", "6.90"), obs("2026-11-26", "7.80"), obs("2026-12-03", "8.70")
    )
    assert result.held == []  # 0.90 a week is a steep market, not a typo
    assert index_rate(session) == Decimal("8.70")


def test_a_revision_that_fits_releases_the_hold_and_one_that_does_not_keeps_it(
    session: Session,
) -> None:
    fetch(session, obs("2026-11-26", "5.95"))
    fetch(session, obs("2026-12-03", "8.10"))
    again = fetch(session, obs("2026-12-03", "8.20"))
    assert (again.updated, [item.rate for item in again.held]) == (1, [Decimal("8.20")])
    fixed = fetch(session, obs("2026-12-03", "6.10"))
    assert (fixed.updated, fixed.held) == (1, [])
    assert index_rate(session) == Decimal("6.10")


def test_the_first_fetch_and_older_weeks_are_history_and_never_held(session: Session) -> None:
    # Weekly PMMS moved 1.40 points in March 1980: real, and the first fetch brings it all.
    history = [obs("1980-03-07", "14.00"), obs("1980-03-14", "15.40"), obs("2026-11-26", "5.95")]
    assert fetch(session, *history).held == []
    backfill = fetch(session, obs("1980-02-29", "13.03"), obs("1979-11-02", "12.80"))
    assert (backfill.inserted, backfill.held) == (2, [])
    assert index_rate(session) == Decimal("5.95")


def test_a_loaded_history_is_loaded_as_it_is(session: Session, tmp_path: Path) -> None:
    fetch(session, obs("2026-11-19", "5.95"))
    path = tmp_path / "broker_history.csv"
    path.write_text("date,rate_30y,rate_15y\n2026-11-26,7.45,\n2026-12-03,7.50,\n")
    result = load_history(session=session, path=path, now=NOW)
    assert (result.inserted, result.held) == (2, [])
    assert index_rate(session) == Decimal("7.50")


def test_the_limit_follows_configuration(session: Session) -> None:
    fetch(session, obs("2026-11-26", "5.95"))
    feed = FakeFeed([obs("2026-12-03", "8.10")])
    wide = RatesConfig(max_move_points=Decimal("2.5")).max_move_points
    assert fetch_and_record(session=session, feed=feed, now=NOW, max_move=wide).held == []


# ---------------------------------------------------------------------------------------------
# Nothing after today


def test_feed_and_history_rows_dated_after_today_are_refused_and_counted(
    session: Session, tmp_path: Path
) -> None:
    result = fetch(session, obs("2026-12-03", "6.00"), obs("2026-12-10", "6.10"))
    assert (result.inserted, result.future) == (1, 1)
    path = tmp_path / "history.csv"
    path.write_text("date,rate_30y,rate_15y\n2026-11-26,6.05,5.30\n2026-12-10,6.10,5.40\n")
    loaded = load_history(session=session, path=path, now=NOW)
    assert (loaded.inserted, loaded.future) == (2, 2)
    dates = set(session.scalars(select(MarketRate.on)))
    assert dates == {LAST_WEEK, TODAY}


# ---------------------------------------------------------------------------------------------
# The triggers read the same index


def test_the_rate_drop_trigger_never_sees_a_held_rate(session: Session) -> None:
    today = TRIGGERS_NOW.date()
    make_loan(session, note_rate="7.0")
    record_observations(
        session=session, observations=[obs((today - timedelta(days=7)).isoformat(), "6.90")],
        now=TRIGGERS_NOW,
    )  # fmt: skip
    feed = FakeFeed([obs(today.isoformat(), "5.50")])
    held = fetch_and_record(session=session, feed=feed, now=TRIGGERS_NOW, max_move=MOVE).held
    assert len(held) == 1
    assert qualifying(session, "rate_drop") == {}  # 7.0 against 6.90: no refinance

    confirm_held(session=session, now=TRIGGERS_NOW, actor="maria")

    (candidate,) = qualifying(session, "rate_drop").values()
    assert Decimal(candidate.snapshot["offer_rate"]) == Decimal("5.5")
