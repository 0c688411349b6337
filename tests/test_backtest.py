"""The backtest as a broker tuning thresholds reads it: real rate history over a generated book."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from core.backtest import (
    BacktestError,
    BacktestResult,
    private_session,
    run_backtest,
    write_chart,
    write_firings_csv,
)
from core.backtest.base import BookColumns, Qualifier, Week, load_book
from core.backtest.guards import Cooldown, Occasions, best_per_person
from core.backtest.market import survey_weeks, weekly_offers
from core.backtest.qualify import QUALIFIERS
from core.backtest.replay import loan_dates
from core.batches.candidate import Candidate
from core.book.importer import import_file
from core.config import Config, load_config
from core.flows import offers_on, trigger_context
from core.rates.service import BUNDLED_HISTORY, load_history
from core.samplebook import write_book_csv
from core.triggers.base import best_per_contact
from core.triggers.columns import day_of
from core.triggers.registry import TRIGGERS
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


def day(iso: str) -> int:
    """An ISO date as a day number."""
    return day_of(date.fromisoformat(iso))


def ints(*values: int) -> np.ndarray:
    """Whole numbers as the guards take them (contact ids, loan ids, offers in hundredths)."""
    return np.asarray(values, dtype=np.int64)


def test_cooldown_holds_a_person_back_for_90_days_unless_the_offer_fell_a_quarter() -> None:
    # Offers in hundredths of a point: 350 is 3.50 %, a further wave is 25 lower.
    guards = Cooldown(days=90, next_wave=25, people=3)
    guards.record(day("2020-01-02"), ints(1), ints(350))
    assert not guards.cooled(day("2020-02-06"), ints(1), ints(340))[0]
    assert guards.cooled(day("2020-02-13"), ints(1), ints(325))[0]
    guards.record(day("2020-02-13"), ints(1), ints(325))
    assert not guards.cooled(day("2020-04-09"), ints(1), ints(320))[0]
    assert guards.cooled(day("2020-05-14"), ints(1), ints(320))[0]
    assert list(guards.cooled(day("2020-05-14"), ints(2, 1), ints(350, 320))) == [True, True]


def test_an_occasion_fires_once_per_key() -> None:
    loans = Occasions(3)
    assert list(loans.fresh(ints(1, 2), ints(5, 5))) == [True, True]
    loans.record(ints(1), ints(5))  # loan 1's 5-year milestone fired
    assert list(loans.fresh(ints(1, 1, 2), ints(5, 7, 5))) == [False, True, True]


def test_each_person_keeps_their_best_loan_and_a_tie_goes_to_the_newest() -> None:
    contact, rank, loan = ints(7, 7, 8, 7), ints(10, 12, 3, 12), ints(1, 2, 3, 4)
    alone = np.asarray([False, False, True, False])
    for mark in (None, alone):
        picked = best_per_person(contact, rank, loan, mark)
        assert sorted(loan[picked].tolist()) == [3, 4]


@given(st.lists(st.integers(min_value=-40, max_value=40), min_size=1, max_size=60))
def test_no_two_waves_within_the_cooldown_without_a_further_quarter_point(
    moves: list[int],
) -> None:
    guards = Cooldown(days=90, next_wave=25, people=2)
    offer, today = 400, day("2020-01-02")
    fired: list[tuple[int, int]] = []
    for move in moves:  # a weekly offer walking up and down by up to 0.40
        offer, today = offer + move, today + 7
        if guards.cooled(today, ints(1), ints(offer))[0]:
            guards.record(today, ints(1), ints(offer))
            fired.append((today, offer))
    assert fired  # the first week always fires
    for index, (at, rate) in enumerate(fired):
        for earlier_at, earlier_rate in fired[:index]:
            if at - earlier_at < 90:
                assert rate <= earlier_rate - 25


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


# --- the replay against the per-week evaluation it replaced --------------------------------

FIXTURES = Path(__file__).parent / "data" / "backtest"
# Captured before the columnar replay, from the per-week path (every live trigger's `find`
# at noon UTC on each survey week, core/backtest.py at 14d7f99), through
# `winback backtest --book book.csv --from … --to … --json --people …`: the book is 420
# generated rows and 18 hand-made ones (Feb 29 closings and fallouts, no first payment date,
# no term, 15-year and VA loans, a person who came back, an ARM, an opted-out person, two
# identical loans of one person, a 5-decimal note rate).
CAPTURED = [
    ("default", None, date(2019, 1, 1), date(2022, 6, 30), None),
    ("tuned", "tuned.toml", date(2019, 6, 1), date(2021, 12, 31), None),
    ("refinance", None, date(2015, 1, 1), date(2026, 9, 24), ["rate_drop"]),
]


def blocks(path: Path) -> list[tuple[tuple[str, str], list[list[str]]]]:
    """The people CSV as its (week, trigger) blocks in order, each block's rows sorted."""
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "week",
        "trigger",
        "loan_number",
        "occasion",
        "offer_rate",
        "monthly_savings",
    ]
    return [
        (key, sorted(group)) for key, group in groupby(rows[1:], key=lambda row: (row[0], row[1]))
    ]


@pytest.mark.parametrize(("name", "config_file", "first", "last", "only"), CAPTURED)
def test_the_replay_reports_what_the_per_week_evaluation_reported(
    name: str,
    config_file: str | None,
    first: date,
    last: date,
    only: list[str] | None,
    tmp_path: Path,
) -> None:
    config = load_config(FIXTURES / config_file) if config_file else CONFIG
    result = run_backtest(
        book=FIXTURES / "book.csv", start=first, end=last, config=config, now=NOW, only=only
    )
    expected = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    report = result.as_json()
    assert report.pop("book") == str(FIXTURES / "book.csv")
    del expected["book"]  # where the file was when it was captured
    assert report == expected  # every week's rates, counts per trigger, savings; the totals
    people = tmp_path / "people.csv"
    write_firings_csv(result, people)
    # Who would have been messaged when: the same rows in the same week and trigger. Within
    # one trigger's week the per-week path listed people in its SQL's row order; the replay
    # lists them by loan.
    assert blocks(people) == blocks(FIXTURES / f"{name}_people.csv")
    for _, group in groupby(result.firings, key=lambda firing: (firing.week, firing.trigger)):
        loans = [firing.loan_id for firing in group]
        assert loans == sorted(loans)


def test_every_live_trigger_has_weekly_rules() -> None:
    assert list(QUALIFIERS) == list(TRIGGERS)


@pytest.fixture(scope="module")
def imported_book() -> Iterator[Session]:
    """The fixture book and the bundled rate history in a private database."""
    with private_session() as session:
        import_file(session=session, path=FIXTURES / "book.csv", now=NOW, actor="test")
        load_history(session=session, path=BUNDLED_HISTORY, now=NOW)
        yield session


# Feb 29 in the lookahead (2016) and a common-year Feb 28 (2019), the 2020-2021 slide, the
# 2022 rise, the 2024 dip, the end of the history.
LIVE_WEEKS = [
    date(2016, 2, 25), date(2019, 2, 28), date(2020, 3, 5), date(2020, 8, 6), date(2021, 1, 7),
    date(2021, 3, 4), date(2022, 11, 3), date(2024, 9, 19), date(2026, 9, 24),
]  # fmt: skip


def live_finds(
    session: Session, name: str, day: date, config: Config, known_from: dict[int, date | None]
) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """What the live trigger finds on `day`: every qualifying loan, and each person's best."""
    now = datetime.combine(day, time(12, tzinfo=UTC))
    found = TRIGGERS[name].find(
        trigger_context(session=session, now=now, config=config), for_segment=False
    )
    shown = [
        candidate
        for candidate in found.candidates(np.arange(len(found)))
        if (since := known_from.get(candidate.loan_id)) is not None and since <= day
    ]

    def described(candidates: list[Candidate]) -> set[tuple[object, ...]]:
        return {(c.contact_id, c.loan_id, c.occasion, c.monthly_savings_cents) for c in candidates}

    return described(shown), described(best_per_contact(shown))


def replayed_finds(
    book: BookColumns, qualifier: Qualifier, week: Week
) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """What the weekly rules find on the columns: every qualifying loan, and each person's best."""
    found = qualifier.on(week)

    def described(rows: np.ndarray) -> set[tuple[object, ...]]:
        savings = found.savings_cents if qualifier.name == "rate_drop" else None
        return {
            (
                int(book.contact_id[found.rows[at]]),
                int(book.loan_id[found.rows[at]]),
                qualifier.occasion(
                    int(book.loan_id[found.rows[at]]), int(found.occasion[at]), week
                ),
                None if savings is None else int(savings[at]),
            )
            for at in rows.tolist()
        }

    rows = found.rows
    best = best_per_person(book.contact_id[rows], found.rank, book.loan_id[rows])
    return described(np.arange(len(found))), described(best)


@pytest.mark.parametrize("config_file", [None, "tuned.toml"])
def test_each_week_the_columns_find_what_the_live_triggers_find(
    imported_book: Session, config_file: str | None
) -> None:
    # Guards the replay against a live trigger's rules changing without it.
    config = load_config(FIXTURES / config_file) if config_file else CONFIG
    book = load_book(imported_book, NOW.date())
    known_from, _ = loan_dates(imported_book)
    offers = weekly_offers(session=imported_book, weeks=LIVE_WEEKS, config=config)
    for name in TRIGGERS:
        qualifier = QUALIFIERS[name](book, config)
        found_any = False
        for day, offer in zip(LIVE_WEEKS, offers, strict=True):
            replayed = replayed_finds(book, qualifier, Week(day_of(day), day, offer))
            assert replayed == live_finds(imported_book, name, day, config, known_from), (name, day)
            found_any |= bool(replayed[0])
        assert found_any, name  # a trigger that found nobody in any week compares nothing


def test_weekly_offers_are_the_offers_of_each_day(imported_book: Session) -> None:
    config = load_config(overrides={"rates": {"offset_30y": "-0.125", "offset_15y": "0.1"}})
    # Before 1991-08-30 there is no 15-year series: those weeks have no 15-year offer.
    weeks = survey_weeks(session=imported_book, start=date(1990, 6, 1), end=date(1992, 6, 1))
    weeks += survey_weeks(session=imported_book, start=date(2026, 1, 1), end=date(2026, 9, 24))
    expected = [
        offers_on(
            session=imported_book, now=datetime.combine(day, time(12, tzinfo=UTC)), config=config
        )
        for day in weeks
    ]
    assert weekly_offers(session=imported_book, weeks=weeks, config=config) == expected
    assert any("15y" not in offers for offers in expected)
