"""The replay: read the book once, then run every week's triggers and guards on its columns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from core.backtest.base import BookColumns, Qualified, Qualifier, Week, load_book
from core.backtest.guards import Cooldown, Occasions, best_per_person, offer_units
from core.backtest.market import load_range_history, survey_weeks, weekly_offers
from core.backtest.qualify import QUALIFIERS
from core.backtest.refinance import PRODUCTS
from core.backtest.results import REFINANCE, BacktestError, BacktestResult, BacktestWeek, Firing
from core.book.importer import ImportRefused, import_file
from core.book.models import Loan
from core.config import Config
from core.db import make_engine, make_sessionmaker
from core.models import Base
from core.rates.parsers import FeedError
from core.rates.service import BUNDLED_HISTORY
from core.triggers.columns import Ints, day_of
from core.triggers.registry import TRIGGERS

_CENTS = Decimal(100)


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


def loan_dates(session: Session) -> tuple[dict[int, date | None], dict[int, str]]:
    """Each loan's number, and the day it reached its status in the export.

    That day is the funded date, else the fallout date, else the application date; the
    backtest never shows a loan before it, whatever a trigger's rules would allow.
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


class Replay:
    """The weeks in order, with what a live system would remember between them."""

    def __init__(self, book: BookColumns, config: Config, names: list[str], weeks: list[Week]):
        self.book = book
        self.qualifiers: dict[str, Qualifier] = {
            name: QUALIFIERS[name](book, config) for name in names
        }
        people = int(book.contact_id.max(initial=0)) + 1
        # Occasions are per loan, but a rate-drop wave is per person and product.
        self.occasions = {
            name: Occasions(len(PRODUCTS) * people if name == REFINANCE else len(book))
            for name in names
        }
        settings = config.triggers.rate_drop
        rates = [offer.rate for week in weeks for offer in week.offers.values()]
        self.scale = offer_units([*rates, settings.next_wave_points])
        self.cooldown = Cooldown(
            days=settings.cooldown_days,
            next_wave=int(settings.next_wave_points * self.scale),
            people=people,
        )
        self.fired: list[tuple[Week, str, Qualified]] = []

    def week(self, week: Week) -> BacktestWeek:
        """Run every trigger on one week: who qualified, and who fires (remembered)."""
        eligible: dict[str, int] = {}
        fired: dict[str, int] = {}
        savings_cents = 0
        for name, qualifier in self.qualifiers.items():
            found = qualifier.on(week)
            best = self._best(found)
            eligible[name] = len(best)
            if name == REFINANCE:
                assert best.savings_cents is not None
                savings_cents = int(best.savings_cents.sum())
                # The live order: cooldown per loan, then one loan per person, then occasions.
                found = found.take(np.flatnonzero(self._cooled(week, found)))
                best = self._best(found)
            keys, occasions = self._occasion_keys(name, week, best)
            fresh = np.flatnonzero(self.occasions[name].fresh(keys, occasions))
            newly = best.take(fresh)
            self.occasions[name].record(keys[fresh], occasions[fresh])
            if name == REFINANCE:
                people = self.book.contact_id[newly.rows]
                self.cooldown.record(week.day, people, self._offers(week, newly))
            fired[name] = len(newly)
            self.fired.append((week, name, newly))
        offers = week.offers
        return BacktestWeek(
            week=week.on,
            rate_30y=offers["30y"].index_rate if "30y" in offers else None,
            rate_15y=offers["15y"].index_rate if "15y" in offers else None,
            offer_30y=offers["30y"].rate if "30y" in offers else None,
            eligible=eligible,
            fired=fired,
            monthly_savings_on_offer=Decimal(savings_cents) / _CENTS,
        )

    def _best(self, found: Qualified) -> Qualified:
        """One entry per person: their best-ranked loan."""
        rows, book = found.rows, self.book
        return found.take(
            best_per_person(book.contact_id[rows], found.rank, book.loan_id[rows], book.alone[rows])
        )

    def _offers(self, week: Week, found: Qualified) -> Ints:
        """Each rate-drop entry's offer rate, in the exact units of the cooldown."""
        units = [int(week.offers[p].rate * self.scale) if p in week.offers else 0 for p in PRODUCTS]
        return np.asarray(units, dtype=np.int64)[found.occasion]

    def _cooled(self, week: Week, found: Qualified) -> np.ndarray:
        return self.cooldown.cooled(
            week.day, self.book.contact_id[found.rows], self._offers(week, found)
        )

    def _occasion_keys(self, name: str, week: Week, found: Qualified) -> tuple[Ints, Ints]:
        """What identifies each entry's occasion: its key and the occasion for that key."""
        if name != REFINANCE:
            return found.rows, found.occasion
        # `rate:<offer date>:<product>`, once per person.
        people = self.book.contact_id[found.rows]
        as_of = [day_of(week.offers[p].as_of) if p in week.offers else 0 for p in PRODUCTS]
        keys = people * len(PRODUCTS) + found.occasion
        return keys, np.asarray(as_of, dtype=np.int64)[found.occasion]

    def people_fired(self) -> int:
        """How many different people fired for any trigger."""
        fired = [self.book.contact_id[newly.rows] for _, _, newly in self.fired]
        return len(np.unique(np.concatenate(fired))) if fired else 0

    def firings(self) -> list[Firing]:
        """Everyone who fired, week by week, by loan within a trigger's week."""
        firings = []
        for week, name, newly in self.fired:
            qualifier = self.qualifiers[name]
            order = np.argsort(self.book.loan_id[newly.rows], kind="stable")
            rows = newly.rows[order]
            savings = (
                newly.savings_cents[order].tolist()
                if name == REFINANCE and newly.savings_cents is not None
                else [None] * len(rows)
            )
            for loan, person, occasion, cents in zip(
                self.book.loan_id[rows].tolist(),
                self.book.contact_id[rows].tolist(),
                newly.occasion[order].tolist(),
                savings,
                strict=True,
            ):
                offer = qualifier.offer(occasion, week)
                firings.append(
                    Firing(
                        week=week.on,
                        trigger=name,
                        contact_id=person,
                        loan_id=loan,
                        occasion=qualifier.occasion(loan, occasion, week),
                        offer_rate=None if offer is None else offer.rate,
                        monthly_savings_cents=cents,
                    )
                )
        return firings


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
    with private_session() as session:
        try:
            imported = import_file(session=session, path=book, fmt=fmt, now=now, actor="backtest")
            load_range_history(session=session, path=history, start=start, end=end, now=now)
        except (ImportRefused, FeedError) as exc:
            raise BacktestError(str(exc)) from None
        result.rows_imported, result.rows_rejected = imported.rows, imported.rejected
        days = survey_weeks(session=session, start=start, end=end)
        if not days:
            raise BacktestError(f"no rate survey week in the history between {start} and {end}")
        result.known_from, result.loan_numbers = loan_dates(session)
        columns = load_book(session, end)
        offers = weekly_offers(session=session, weeks=days, config=config)
    weeks = [Week(day_of(day), day, offer) for day, offer in zip(days, offers, strict=True)]
    replay = Replay(columns, config, triggers, weeks)
    result.weeks = [replay.week(week) for week in weeks]
    result.build_firings = replay.firings
    result.fired_totals = {
        name: sum(week.fired[name] for week in result.weeks) for name in triggers
    }
    result.people_fired = replay.people_fired()
    return result
