"""Backtest: replay the real weekly rate history over a book — who would have been messaged when.

The book is imported into a private in-memory database (the broker's own database is never
touched), the bundled Freddie Mac PMMS history is loaded beside it, and every enabled trigger
is evaluated at noon UTC on each survey week's date, exactly as `winback evaluate` would.

What a live system remembers between runs is simulated in memory, and only that: an occasion
(a loan's 5-year milestone, a closing anniversary, an ARM reset) fires once, and a rate-drop
person is not fired again inside the cooldown unless the offer fell a further `next_wave`
points. Nobody is enrolled, so nobody is held back by a running track or by replies.
The book is today's export: consent, phone status and statuses are as they are now, and a
loan only counts from the date it reached its status (funded, fell out, or applied).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from core.batches.candidate import Candidate
from core.book.importer import ImportRefused, import_file
from core.book.models import Loan
from core.config import Config
from core.db import make_engine, make_sessionmaker
from core.flows import trigger_context
from core.models import Base
from core.rates.models import MarketRate
from core.rates.parsers import FeedError
from core.rates.service import BUNDLED_HISTORY, Offer, load_history
from core.triggers.base import best_per_contact
from core.triggers.registry import TRIGGERS

REFINANCE = "rate_drop"
CHART_SOURCE = "Source: Freddie Mac PMMS via FRED"
_NOON = time(12, tzinfo=UTC)
_CENTS = Decimal(100)


class BacktestError(ValueError):
    """A backtest that cannot run (unreadable book, no survey week in range); one line."""


@dataclass(frozen=True)
class BacktestWeek:
    """One PMMS survey week: the rates, who qualified, who would have been newly messaged."""

    week: date
    rate_30y: Decimal | None
    rate_15y: Decimal | None
    offer_30y: Decimal | None
    eligible: dict[str, int]
    fired: dict[str, int]
    monthly_savings_on_offer: Decimal

    def as_json(self) -> dict[str, Any]:
        """The week as the `--json` contract shows it."""
        return {
            "week": self.week.isoformat(),
            "rate_30y": _number(self.rate_30y),
            "rate_15y": _number(self.rate_15y),
            "offer_30y": _number(self.offer_30y),
            "eligible": self.eligible,
            "fired": self.fired,
            "monthly_savings_on_offer": float(self.monthly_savings_on_offer),
        }


@dataclass(frozen=True)
class Firing:
    """One person a trigger would have put in a batch: the week, the loan and the occasion."""

    week: date
    trigger: str
    contact_id: int
    loan_id: int
    occasion: str
    offer_rate: Decimal | None
    monthly_savings_cents: int | None


@dataclass
class BacktestResult:
    """The whole replay: every week in range, and how many were fired per trigger overall."""

    book: str
    start: date
    end: date
    weeks: list[BacktestWeek] = field(default_factory=list)
    fired_totals: dict[str, int] = field(default_factory=dict)
    people_fired: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    firings: list[Firing] = field(default_factory=list)
    loan_numbers: dict[int, str] = field(default_factory=dict)
    known_from: dict[int, date | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The `--json` contract: book, from, to, weeks, totals."""
        return {
            "book": self.book,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "weeks": [week.as_json() for week in self.weeks],
            "totals": {"fired": self.fired_totals, "people_fired": self.people_fired},
            "rows_imported": self.rows_imported,
            "rows_rejected": self.rows_rejected,
        }


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class FiringGuards:
    """The state a live system keeps between evaluations, kept in memory for the replay."""

    def __init__(self, config: Config) -> None:
        settings = config.triggers.rate_drop
        self.cooldown = timedelta(days=settings.cooldown_days)
        self.next_wave = settings.next_wave_points
        self.occasions: set[tuple[str, int, str]] = set()
        self.waves: dict[int, list[tuple[datetime, Decimal]]] = {}
        self.people: set[int] = set()

    def cooled(self, trigger: str, candidate: Candidate, now: datetime) -> bool:
        """False for a rate-drop person messaged inside the cooldown with no further drop since.

        Mirrors the live rule: compare with the lowest offer they were put in a batch for
        during the last `cooldown_days`.
        """
        if trigger != REFINANCE or candidate.offer_rate is None:
            return True
        recent = [
            rate
            for at, rate in self.waves.get(candidate.contact_id, [])
            if at > now - self.cooldown
        ]
        return not recent or candidate.offer_rate <= min(recent) - self.next_wave

    def fresh(self, trigger: str, candidate: Candidate) -> bool:
        """True unless this person already fired for this trigger and occasion."""
        return (trigger, candidate.contact_id, candidate.occasion) not in self.occasions

    def record(self, trigger: str, fired: list[Candidate], now: datetime) -> list[Firing]:
        """Remember who was messaged, for which occasion, at which offer rate."""
        firings = []
        for candidate in fired:
            self.occasions.add((trigger, candidate.contact_id, candidate.occasion))
            self.people.add(candidate.contact_id)
            if trigger == REFINANCE and candidate.offer_rate is not None:
                self.waves.setdefault(candidate.contact_id, []).append((now, candidate.offer_rate))
            firings.append(
                Firing(
                    week=now.date(),
                    trigger=trigger,
                    contact_id=candidate.contact_id,
                    loan_id=candidate.loan_id,
                    occasion=candidate.occasion,
                    offer_rate=candidate.offer_rate,
                    monthly_savings_cents=candidate.monthly_savings_cents,
                )
            )
        return firings


def loan_dates(session: Session) -> tuple[dict[int, date | None], dict[int, str]]:
    """Each loan's number, and the day it reached its status in the export.

    That day is the funded date, else the fallout date, else the application date; the
    backtest never shows a loan before it, whatever a trigger's SQL would allow.
    """
    rows = session.execute(
        select(
            Loan.id, Loan.loan_number, Loan.funded_date, Loan.fallout_date, Loan.application_date
        )
    ).all()
    known_from = {
        row.id: row.funded_date or row.fallout_date or row.application_date for row in rows
    }
    return known_from, {row.id: row.loan_number for row in rows}


def survey_weeks(*, session: Session, start: date, end: date) -> list[date]:
    """The dates of the 30-year observations recorded between start and end (inclusive)."""
    query = (
        select(MarketRate.on)
        .where(MarketRate.product == "30y", MarketRate.on.between(start, end))
        .distinct()
        .order_by(MarketRate.on)
    )
    return list(session.scalars(query))


def enabled_triggers(config: Config, only: Iterable[str] | None = None) -> list[str]:
    """The triggers to replay: every enabled one, or just those named in `only`."""
    wanted = None if only is None else set(only)
    unknown = sorted((wanted or set()) - set(TRIGGERS))
    if unknown:
        raise BacktestError(f"unknown trigger {unknown[0]}; one of {', '.join(TRIGGERS)}")
    names = [
        name
        for name in TRIGGERS
        if getattr(config.triggers, name).enabled and (wanted is None or name in wanted)
    ]
    if not names:
        raise BacktestError(
            "no trigger to replay: every one named is disabled in the configuration"
        )
    return names


def evaluate_week(
    *,
    session: Session,
    week: date,
    config: Config,
    triggers: list[str],
    guards: FiringGuards,
    known_from: dict[int, date | None],
) -> tuple[BacktestWeek, list[Firing]]:
    """Run the triggers as of noon UTC on `week`; who qualified, and who fires (remembered)."""
    now = datetime.combine(week, _NOON)
    ctx = trigger_context(session=session, now=now, config=config)
    offers = ctx.offers
    eligible: dict[str, int] = {}
    fired: dict[str, int] = {}
    firings: list[Firing] = []
    savings_cents = 0
    for name in triggers:
        every_loan = TRIGGERS[name].find(ctx, for_segment=False)
        found = [
            candidate
            for candidate in every_loan.candidates(np.arange(len(every_loan)))
            if _existed(known_from.get(candidate.loan_id), week)
        ]
        people = best_per_contact(found)
        eligible[name] = len(people)
        if name == REFINANCE:
            savings_cents = sum(person.monthly_savings_cents or 0 for person in people)
        # The live order: cooldown per loan, then one loan per person, then the occasion guard.
        cooled = best_per_contact([c for c in found if guards.cooled(name, c, now)])
        newly = guards.record(name, [c for c in cooled if guards.fresh(name, c)], now)
        fired[name] = len(newly)
        firings += newly
    replayed = BacktestWeek(
        week=week,
        rate_30y=_index(offers, "30y"),
        rate_15y=_index(offers, "15y"),
        offer_30y=offers["30y"].rate if "30y" in offers else None,
        eligible=eligible,
        fired=fired,
        monthly_savings_on_offer=Decimal(savings_cents) / _CENTS,
    )
    return replayed, firings


def _existed(known_from: date | None, week: date) -> bool:
    return known_from is not None and known_from <= week


def _index(offers: dict[str, Offer], product: str) -> Decimal | None:
    offer = offers.get(product)
    return offer.index_rate if offer is not None else None


@contextmanager
def private_session() -> Iterator[Session]:
    """A session on a throwaway in-memory database with the whole schema."""
    engine = make_engine("sqlite://", poolclass=StaticPool)
    try:
        Base.metadata.create_all(engine)
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


def run_backtest(
    *,
    book: Path,
    start: date,
    end: date,
    config: Config,
    now: datetime,
    fmt: str = "auto",
    only: Iterable[str] | None = None,
    history: Path = BUNDLED_HISTORY,
) -> BacktestResult:
    """Import `book` privately, then replay each survey week from `start` to `end`."""
    if start > end:
        raise BacktestError(f"--from {start} is after --to {end}")
    triggers = enabled_triggers(config, only)
    result = BacktestResult(book=str(book), start=start, end=end)
    guards = FiringGuards(config)
    with private_session() as session:
        try:
            imported = import_file(session=session, path=book, fmt=fmt, now=now, actor="backtest")
            load_history(session=session, path=history, now=now)
        except (ImportRefused, FeedError) as exc:
            raise BacktestError(str(exc)) from None
        result.rows_imported, result.rows_rejected = imported.rows, imported.rejected
        weeks = survey_weeks(session=session, start=start, end=end)
        if not weeks:
            raise BacktestError(f"no rate survey week in the history between {start} and {end}")
        result.known_from, result.loan_numbers = loan_dates(session)
        for week in weeks:
            replayed, firings = evaluate_week(
                session=session, week=week, config=config, triggers=triggers, guards=guards,
                known_from=result.known_from,
            )  # fmt: skip
            result.weeks.append(replayed)
            result.firings += firings
    totals = Counter(firing.trigger for firing in result.firings)
    result.fired_totals = {name: totals[name] for name in triggers}
    result.people_fired = len(guards.people)
    return result


def write_chart(result: BacktestResult, path: Path) -> None:
    """A PNG: the 30-year PMMS rate (line, left) and the weekly refinance-eligible count (bars)."""
    # Imported here: matplotlib costs a noticeable start-up time and only --chart needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    weeks = [week.week for week in result.weeks]
    figure = Figure(figsize=(11, 5.5), dpi=120)
    FigureCanvasAgg(figure)
    rates_axis = figure.add_subplot()
    people_axis = rates_axis.twinx()
    # Bars behind the line: the rate is what the eye should follow first.
    rates_axis.set_zorder(people_axis.get_zorder() + 1)
    rates_axis.patch.set_visible(False)
    people_axis.bar(
        weeks,
        [week.eligible.get(REFINANCE, 0) for week in result.weeks],
        width=7 if len(weeks) < 300 else 8,
        color="#7fa7d8",
        alpha=0.7,
        label="refinance-eligible people (weekly)",
    )
    rates_axis.plot(
        weeks,
        [_number(week.rate_30y) for week in result.weeks],
        color="#b22222",
        linewidth=1.8,
        label="30-year fixed, PMMS average (%)",
    )
    rates_axis.set_ylabel("30-year rate (%)")
    people_axis.set_ylabel("refinance-eligible people")
    people_axis.set_ylim(bottom=0)
    locator = AutoDateLocator()
    rates_axis.xaxis.set_major_locator(locator)
    rates_axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    rates_axis.grid(axis="y", alpha=0.3)
    handles = [
        *rates_axis.get_legend_handles_labels()[0],
        *people_axis.get_legend_handles_labels()[0],
    ]
    rates_axis.legend(handles=handles, loc="upper left", fontsize=9)
    rates_axis.set_title(
        f"Backtest of {Path(result.book).name}: 30-year rate and refinance-eligible people, "
        f"{result.start.isoformat()} to {result.end.isoformat()}"
    )
    figure.text(0.01, 0.01, CHART_SOURCE, fontsize=8, color="#555555")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path, format="png")


def write_firings_csv(result: BacktestResult, path: Path) -> int:
    """Who would have been messaged when, one row per firing (by loan number); the row count."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["week", "trigger", "loan_number", "occasion", "offer_rate", "monthly_savings"]
        )
        for firing in result.firings:
            savings = firing.monthly_savings_cents
            writer.writerow(
                [
                    firing.week.isoformat(),
                    firing.trigger,
                    result.loan_numbers.get(firing.loan_id, ""),
                    firing.occasion,
                    "" if firing.offer_rate is None else f"{firing.offer_rate:f}",
                    "" if savings is None else f"{Decimal(savings) / _CENTS:.2f}",
                ]
            )
    return len(result.firings)
