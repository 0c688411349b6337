"""The backtest as a broker tuning thresholds reads it: real rate history over a generated book."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.backtest import (
    BacktestError,
    BacktestResult,
    FiringGuards,
    run_backtest,
    write_chart,
    write_firings_csv,
)
from core.batches.candidate import Candidate
from core.config import load_config
from core.rates.service import BUNDLED_HISTORY
from core.samplebook import write_book_csv
from tests.book.helpers import book_row, csv_bytes

NOW = datetime(2026, 9, 24, 15, 0, tzinfo=UTC)
CONFIG = load_config()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def generated_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 1,500-row book as of the end of the bundled history."""
    path = tmp_path_factory.mktemp("backtest") / "book.csv"
    write_book_csv(path, rows=1500, seed=11, as_of=date(2026, 9, 24))
    return path


@pytest.fixture(scope="module")
def refinance_replay(generated_book: Path) -> BacktestResult:
    """The rate-drop trigger replayed weekly over 2018-01-01..2026-09-24."""
    return run_backtest(
        book=generated_book, start=date(2018, 1, 1), end=date(2026, 9, 24), config=CONFIG,
        now=NOW, only=["rate_drop"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def full_replay(generated_book: Path) -> BacktestResult:
    """Every trigger replayed over the first half of 2021, the height of the refinance boom."""
    return run_backtest(
        book=generated_book, start=date(2021, 1, 1), end=date(2021, 6, 30), config=CONFIG, now=NOW
    )


def eligible(result: BacktestResult, first: date, last: date) -> list[int]:
    """The weekly refinance-eligible counts between two dates."""
    return [w.eligible["rate_drop"] for w in result.weeks if first <= w.week <= last]


def pmms_weeks(first: date, last: date) -> dict[date, Decimal]:
    """The bundled history's 30-year rate by survey date."""
    with BUNDLED_HISTORY.open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        return {
            day: Decimal(row["rate_30y"])
            for row in rows
            if first <= (day := date.fromisoformat(row["date"])) <= last
        }


def test_refinance_eligible_rises_in_2019_2020(refinance_replay: BacktestResult) -> None:
    early_2018 = max(eligible(refinance_replay, date(2018, 1, 1), date(2018, 6, 30)))
    in_2020 = max(eligible(refinance_replay, date(2020, 1, 1), date(2020, 12, 31)))
    late_2019 = max(eligible(refinance_replay, date(2019, 9, 1), date(2019, 12, 31)))
    assert in_2020 > 3 * early_2018
    assert late_2019 > 2 * early_2018


def test_refinance_eligible_rises_in_the_september_2024_dip(
    refinance_replay: BacktestResult,
) -> None:
    may = eligible(refinance_replay, date(2024, 5, 1), date(2024, 5, 31))
    september = eligible(refinance_replay, date(2024, 9, 1), date(2024, 9, 30))
    assert sum(september) / len(september) > 5 * max(max(may), 1)


def test_refinance_eligible_collapses_in_2022(refinance_replay: BacktestResult) -> None:
    early_2021 = eligible(refinance_replay, date(2021, 1, 1), date(2021, 2, 28))
    late_2022 = eligible(refinance_replay, date(2022, 10, 1), date(2022, 12, 31))
    assert min(early_2021) > 100
    assert max(late_2022) < min(early_2021) / 20


def test_weeks_are_the_real_survey_weeks_with_their_rates(refinance_replay: BacktestResult) -> None:
    history = pmms_weeks(date(2018, 1, 1), date(2026, 9, 24))
    assert [w.week for w in refinance_replay.weeks] == sorted(history)
    for week in refinance_replay.weeks:
        assert week.rate_30y == history[week.week]
        assert week.offer_30y == history[week.week]  # the default offset is zero
    assert refinance_replay.weeks[0].week == date(2018, 1, 4)


def test_savings_on_offer_follow_the_eligible_people(refinance_replay: BacktestResult) -> None:
    for week in refinance_replay.weeks:
        if week.eligible["rate_drop"] == 0:
            assert week.monthly_savings_on_offer == 0
        else:  # the trigger's own floor is $100 a month per person
            assert week.monthly_savings_on_offer >= 100 * week.eligible["rate_drop"]


def test_rate_drop_respects_cooldown_and_next_wave(refinance_replay: BacktestResult) -> None:
    fires: dict[int, list[tuple[date, Decimal]]] = {}
    for firing in refinance_replay.firings:
        assert firing.offer_rate is not None
        fires.setdefault(firing.contact_id, []).append((firing.week, firing.offer_rate))
    rewaves = 0
    for history in fires.values():
        for at, rate in history:
            recent = [r for day, r in history if at - timedelta(days=90) < day < at]
            if recent:
                rewaves += 1
                assert rate <= min(recent) - Decimal("0.25")
    assert rewaves > 0  # the 2020 slide does bring further waves inside 90 days
    by_week = {w.week: w for w in refinance_replay.weeks}
    assert all(by_week[w].fired["rate_drop"] <= by_week[w].eligible["rate_drop"] for w in by_week)
    assert sum(w.fired["rate_drop"] for w in refinance_replay.weeks) == len(
        refinance_replay.firings
    )


def test_occasions_fire_once(full_replay: BacktestResult) -> None:
    keys = [(f.trigger, f.contact_id, f.occasion) for f in full_replay.firings]
    assert len(keys) == len(set(keys))
    # A milestone stays in its 30-day window for several weekly runs, but fires in one.
    assert sum(w.eligible["loan_age"] for w in full_replay.weeks) > 2 * sum(
        w.fired["loan_age"] for w in full_replay.weeks
    )
    assert full_replay.fired_totals["loan_age"] > 0
    assert set(full_replay.fired_totals) == set(full_replay.weeks[0].fired)


def test_no_loan_is_fired_before_it_existed(
    full_replay: BacktestResult, generated_book: Path
) -> None:
    with generated_book.open(encoding="utf-8") as handle:
        dated = {
            row["loan_number"]: date.fromisoformat(
                row["funded_date"] or row["fallout_date"] or row["application_date"]
            )
            for row in csv.DictReader(handle)
        }
    assert full_replay.firings
    for firing in full_replay.firings:
        assert dated[full_replay.loan_numbers[firing.loan_id]] <= firing.week


def test_a_loan_funded_after_the_week_never_counts(tmp_path: Path) -> None:
    # An FHA loan at 75 % LTV qualifies for fha_mip the day it funds; a 7.5 % loan funded in
    # late 2023 qualifies for a rate drop only once seasoned, in the 2024 dip.
    rows = [
        book_row(
            loan_number="FHA1", email="fha@gmail.com", phone="(415) 867-5301",
            loan_program="fha", funded_date="2024-03-01", first_payment_date="2024-05-01",
            application_date="2024-01-10", loan_amount="300000", property_value="400000",
        ),
        book_row(
            loan_number="RATE1", email="rate@gmail.com", phone="(415) 867-5302",
            note_rate="7.5", funded_date="2023-11-01", first_payment_date="2024-01-01",
            application_date="2023-09-01", loan_amount="500000", property_value="600000",
        ),
    ]  # fmt: skip
    book = tmp_path / "book.csv"
    book.write_bytes(csv_bytes(rows))
    result = run_backtest(
        book=book, start=date(2023, 1, 1), end=date(2024, 12, 31), config=CONFIG, now=NOW,
        only=["fha_mip", "rate_drop"],
    )  # fmt: skip
    for week in result.weeks:
        assert week.eligible["fha_mip"] == (1 if week.week >= date(2024, 3, 1) else 0), week
    seasoned = [w.week for w in result.weeks if w.eligible["rate_drop"]]
    assert seasoned and min(seasoned) >= date(2024, 6, 1)
    fired = [(f.trigger, f.week) for f in result.firings]
    assert ("fha_mip", date(2024, 3, 7)) in fired
    assert [t for t, _ in fired].count("fha_mip") == 1


def candidate(offer: str, occasion: str = "rate:x:30y", contact_id: int = 1) -> Candidate:
    """A rate-drop candidate at this offer rate."""
    return Candidate(
        contact_id=contact_id, loan_id=contact_id, occasion=occasion, snapshot={},
        offer_rate=Decimal(offer),
    )  # fmt: skip


def noon(day: str) -> datetime:
    """Noon UTC on an ISO date."""
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


def test_cooldown_holds_a_person_back_for_90_days_unless_the_offer_fell_a_quarter() -> None:
    guards = FiringGuards(CONFIG)
    guards.record("rate_drop", [candidate("3.50")], noon("2020-01-02"))
    assert not guards.cooled("rate_drop", candidate("3.40"), noon("2020-02-06"))
    assert guards.cooled("rate_drop", candidate("3.25"), noon("2020-02-13"))
    guards.record("rate_drop", [candidate("3.25")], noon("2020-02-13"))
    assert not guards.cooled("rate_drop", candidate("3.20"), noon("2020-04-09"))
    assert guards.cooled("rate_drop", candidate("3.20"), noon("2020-05-14"))
    assert guards.cooled("rate_drop", candidate("3.50", contact_id=2), noon("2020-02-06"))
    assert guards.cooled("loan_age", candidate("9.99"), noon("2020-02-06"))


def test_an_occasion_fires_once_per_trigger_and_person() -> None:
    guards = FiringGuards(CONFIG)
    milestone = candidate("0", occasion="loan:1:5y")
    guards.record("loan_age", [milestone], noon("2020-01-02"))
    assert not guards.fresh("loan_age", milestone)
    assert guards.fresh("loan_age", candidate("0", occasion="loan:1:7y"))
    assert guards.fresh("closing_anniversary", milestone)
    assert guards.fresh("loan_age", candidate("0", occasion="loan:1:5y", contact_id=2))


@given(st.lists(st.integers(min_value=-40, max_value=40), min_size=1, max_size=60))
def test_no_two_waves_within_the_cooldown_without_a_further_quarter_point(
    moves: list[int],
) -> None:
    guards = FiringGuards(CONFIG)
    offer, day = Decimal("4.00"), noon("2020-01-02")
    fired: list[tuple[datetime, Decimal]] = []
    for move in moves:  # a weekly offer walking up and down by up to 0.40
        offer, day = offer + Decimal(move) / 100, day + timedelta(days=7)
        if guards.cooled("rate_drop", candidate(str(offer)), day):
            guards.record("rate_drop", [candidate(str(offer))], day)
            fired.append((day, offer))
    assert fired  # the first week always fires
    for index, (at, rate) in enumerate(fired):
        for earlier_at, earlier_rate in fired[:index]:
            if at - earlier_at < timedelta(days=90):
                assert rate <= earlier_rate - Decimal("0.25")


def test_chart_is_a_png(refinance_replay: BacktestResult, tmp_path: Path) -> None:
    chart = tmp_path / "backtest.png"
    write_chart(refinance_replay, chart)
    payload = chart.read_bytes()
    assert payload.startswith(PNG_SIGNATURE)
    assert len(payload) > 20_000


def test_firings_csv_lists_who_would_have_been_messaged_when(
    refinance_replay: BacktestResult, tmp_path: Path
) -> None:
    out = tmp_path / "people.csv"
    assert write_firings_csv(refinance_replay, out) == len(refinance_replay.firings)
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(refinance_replay.firings)
    first = rows[0]
    assert first["trigger"] == "rate_drop" and first["loan_number"].startswith("WB")
    assert Decimal(first["monthly_savings"]) >= 100


def test_refusals_are_one_line(generated_book: Path, tmp_path: Path) -> None:
    cases = [
        (tmp_path / "missing.csv", date(2020, 1, 1), date(2020, 2, 1), "cannot read"),
        (generated_book, date(2020, 2, 1), date(2020, 1, 1), "after"),
        (generated_book, date(2020, 1, 3), date(2020, 1, 8), "no rate survey week"),
    ]
    for book, first, last, words in cases:
        with pytest.raises(BacktestError, match=words):
            run_backtest(book=book, start=first, end=last, config=CONFIG, now=NOW)
    with pytest.raises(BacktestError, match="unknown trigger"):
        run_backtest(
            book=generated_book, start=date(2020, 1, 1), end=date(2020, 2, 1), config=CONFIG,
            now=NOW, only=["refi_now"],
        )  # fmt: skip
