"""What a replay reports: each survey week, each firing, and the totals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any

REFINANCE = "rate_drop"


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
            "rate_30y": number(self.rate_30y),
            "rate_15y": number(self.rate_15y),
            "offer_30y": number(self.offer_30y),
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
    loan_numbers: dict[int, str] = field(default_factory=dict)
    known_from: dict[int, date | None] = field(default_factory=dict)
    build_firings: Callable[[], list[Firing]] = field(default=list, repr=False, compare=False)

    @cached_property
    def firings(self) -> list[Firing]:
        """Who fired when: week by week, triggers in registry order, by loan within those.

        Built on first use: a large book fires hundreds of thousands, and only `--people`
        lists them.
        """
        return self.build_firings()

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


def number(value: Decimal | None) -> float | None:
    """A rate for JSON and charts (None stays None)."""
    return None if value is None else float(value)
