"""The equity triggers over the book columns, weekly: the rules of `core.triggers.equity`."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from core.backtest.base import NO_DAY, PROGRAMS, STATUSES, BookColumns, Qualified, Week
from core.book.models import FUNDED
from core.config import Config
from core.loanmath import estimated_ltv, estimated_value, remaining_balance
from core.loanmath_fast import balances, estimated_ltvs, payments_made_on
from core.rates.service import Offer
from core.triggers.columns import RATE_UNITS

_CENTS = Decimal(100)
_LTV_MARGIN = 0.05  # as the live trigger: closer than this to the ceiling, Decimal decides


class Equity:
    """Loans of one program whose estimated LTV on the week is at or below the ceiling."""

    def __init__(
        self, book: BookColumns, config: Config, *, name: str, program: str, above: int | None
    ) -> None:
        self.name = name
        self.settings = getattr(config.triggers, name)
        self.appreciation = config.math.annual_appreciation_percent
        pool = (
            book.reachable
            & (book.status == STATUSES.index(FUNDED))
            & (book.program == PROGRAMS.index(program))
            & (book.value_cents > 0)
            & (book.amount_cents > 0)
            & (book.note_rate >= 0)
            & (book.funded < NO_DAY)
        )
        if above is not None:  # only loans that started with mortgage insurance
            pool &= book.amount_cents * 100 > book.value_cents * above
        self.rows = np.flatnonzero(pool)
        self.amount = book.amount_cents[self.rows]
        self.value = book.value_cents[self.rows]
        self.note = book.note_rate[self.rows]
        self.term = book.term_months[self.rows]
        self.first_payment = book.first_payment[self.rows]
        self.funded = book.funded[self.rows]
        self.shown_from, self.shown_until = book.visible(self.rows)

    def on(self, week: Week) -> Qualified:
        """Funded loans whose amortized balance over the appreciated value is low enough."""
        today = week.day
        found = np.flatnonzero(
            (self.funded <= today) & (self.shown_from <= today) & (self.shown_until > today)
        )
        paid = payments_made_on(self.first_payment[found], today)
        months = np.where(self.term[found] > 0, self.term[found], 360)
        owed = balances(
            self.amount[found] / 100.0,
            self.note[found] / RATE_UNITS,
            months.astype(float),
            np.minimum(paid, months).astype(float),
        )
        years = (today - self.funded[found]) / 365.25
        _, ltv = estimated_ltvs(owed, self.value[found] / 100.0, years, float(self.appreciation))
        ceiling = self.settings.max_ltv_percent
        hundredths = np.rint(ltv * 100.0)  # the estimate is already a whole hundredth
        for at in np.flatnonzero(np.abs(ltv - float(ceiling)) <= _LTV_MARGIN).tolist():
            exact = self._exact(week, int(found[at]), int(paid[at]))
            ltv[at] = float(exact)
            hundredths[at] = int(exact * 100)
        keep = np.flatnonzero(ltv <= float(ceiling))
        rank = -hundredths[keep].astype(np.int64)
        return Qualified(self.rows[found[keep]], rank, np.zeros(len(keep), dtype=np.int64))

    def _exact(self, week: Week, at: int, paid: int) -> Decimal:
        """The Decimal LTV estimate for one loan, as the live trigger computes it."""
        term = int(self.term[at]) or 360
        balance = remaining_balance(
            principal=Decimal(int(self.amount[at])) / _CENTS,
            annual_rate=Decimal(int(self.note[at])).scaleb(-5),
            months=term,
            payments_made=min(paid, term),
        )
        years = Decimal(week.day - int(self.funded[at])) / Decimal("365.25")
        value = estimated_value(
            original_value=Decimal(int(self.value[at])) / _CENTS,
            years=years,
            annual_appreciation=self.appreciation,
        )
        return estimated_ltv(balance=balance, value=value)

    def occasion(self, loan_id: int, occasion: int, week: Week) -> str:
        """`loan:<id>:<trigger>`: once per loan."""
        return f"loan:{loan_id}:{self.name}"

    def offer(self, occasion: int, week: Week) -> Offer | None:
        """Equity triggers quote no offer."""
        return None


def pmi_removal(book: BookColumns, config: Config) -> Equity:
    """Conventional loans that started above 80 % LTV and are now estimated at or below it."""
    return Equity(book, config, name="pmi_removal", program="conventional", above=80)


def fha_mip(book: BookColumns, config: Config) -> Equity:
    """FHA loans whose estimated LTV allows a conventional refinance without insurance."""
    return Equity(book, config, name="fha_mip", program="fha", above=None)
