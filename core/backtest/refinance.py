"""rate_drop over the book columns: the live trigger's rules (`core.triggers.rate_drop`), weekly.

The rules and the math are the live trigger's, step for step: the note rate at least the
threshold above the offer of the loan's product (exactly, in rate units), VA's minimum drop,
seasoning in days and payments on the earliest closing date, then the float estimates of
`core.loanmath_fast` with the Decimal quote deciding near the savings and break-even limits.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np

from core.backtest.base import NO_DAY, PROGRAMS, STATUSES, BookColumns, Qualified, Week
from core.book.models import FUNDED
from core.config import Config
from core.loanmath import RefinanceQuote, snapshot_quote
from core.loanmath_fast import Floats, payments_made_on, refinance_estimates
from core.rates.service import Offer
from core.triggers.columns import RATE_UNITS, Ints, date_of, day_of

NAME = "rate_drop"
PRODUCTS = ("30y", "15y")  # the occasion code of a firing is the product's index here
# As the live trigger: closer than this to the minimum savings (dollars) or the longest
# break-even (months), the exact Decimal quote decides.
_MARGIN_DOLLARS = 0.05
_MARGIN_MONTHS = 0.05
_NEVER = np.iinfo(np.int64).max  # no offer for the product: no note rate clears it


class Refinance:
    """Funded, seasoned loans with real savings at the week's offer rate."""

    name = NAME

    def __init__(self, book: BookColumns, config: Config) -> None:
        self.config = config
        pool = (
            book.reachable
            & (book.status == STATUSES.index(FUNDED))
            & (book.note_rate >= 0)
            & (book.amount_cents > 0)
            & (book.funded < NO_DAY)
        )
        self.rows = np.flatnonzero(pool)
        self.note = book.note_rate[self.rows]
        self.amount = book.amount_cents[self.rows]
        self.term = book.term_months[self.rows]
        self.first_payment = book.first_payment[self.rows]
        self.va_fixed = (book.program[self.rows] == PROGRAMS.index("va")) & (
            book.is_arm[self.rows] == 0
        )
        max_term = config.rates.fifteen_year_max_term_months
        self.fifteen = (self.term > 0) & (self.term <= max_term)
        self.shown_from, self.shown_until = book.visible(self.rows)

    def _lowest_note(self, week: Week, points: Decimal) -> Ints:
        """The lowest note rate (rate units, exactly) `points` above each loan's offer."""
        lowest = {
            product: math.ceil((offer.rate + points) * RATE_UNITS)
            for product, offer in week.offers.items()
        }
        return np.where(self.fifteen, lowest.get("15y", _NEVER), lowest.get("30y", _NEVER))

    def _seasoned(self, week: Week, closing_day: int) -> tuple[Ints, Ints]:
        """Pool indices passing the rules before any pricing, and their payments made."""
        settings = self.config.triggers.rate_drop
        note = self.note
        ok = (
            (note >= self._lowest_note(week, settings.threshold_points))
            & ~(self.va_fixed & (note < self._lowest_note(week, settings.va_min_drop_points)))
            & (closing_day - self.first_payment >= settings.seasoning_days)
            & (self.shown_from <= week.day)
            & (self.shown_until > week.day)
        )
        candidates = np.flatnonzero(ok)
        paid = payments_made_on(self.first_payment[candidates], closing_day)
        enough = paid >= settings.seasoning_payments
        return candidates[enough], paid[enough]

    def on(self, week: Week) -> Qualified:
        """The loans that qualify on this week, ranked by exact monthly savings."""
        if not week.offers:
            return Qualified.nothing()
        closing = week.on + timedelta(days=self.config.math.earliest_closing_days)
        found, paid = self._seasoned(week, day_of(closing))
        fifteen = self.fifteen[found]
        offer = np.where(fifteen, _offer_float(week, "15y"), _offer_float(week, "30y"))
        math_settings = self.config.math
        months = np.where(self.term[found] > 0, self.term[found], 360)
        estimates = refinance_estimates(
            self.amount[found] / 100.0,
            self.note[found] / RATE_UNITS,
            months.astype(float),
            paid.astype(float),
            offer,
            float(math_settings.new_term_months),
            float(math_settings.closing_costs_flat),
            float(math_settings.closing_costs_percent),
        )
        settings = self.config.triggers.rate_drop
        savings = estimates.monthly_savings.copy()
        break_even = estimates.break_even_months.copy()
        cents = whole_cents(estimates.monthly_savings)
        near = (np.abs(savings - float(settings.min_monthly_savings)) < _MARGIN_DOLLARS) | (
            np.abs(break_even - settings.max_break_even_months) < _MARGIN_MONTHS
        )
        for at in np.flatnonzero(near).tolist():
            quote = self._exact(week, int(found[at]), bool(fifteen[at]), closing.isoformat())
            if quote is not None:
                savings[at] = float(quote.monthly_savings)
                break_even[at] = (
                    np.inf if quote.break_even_months is None else quote.break_even_months
                )
                cents[at] = int(quote.monthly_savings * 100)
        keep = np.flatnonzero(
            (savings >= float(settings.min_monthly_savings))
            & (break_even <= settings.max_break_even_months)
        )
        return Qualified(
            self.rows[found[keep]], cents[keep], fifteen[keep].astype(np.int64), cents[keep]
        )

    def _exact(self, week: Week, at: int, fifteen: bool, closing: str) -> RefinanceQuote | None:
        """The Decimal quote from the same inputs the live trigger's snapshot keeps."""
        offer = week.offers["15y" if fifteen else "30y"]
        assumptions = self.config.math
        return snapshot_quote(
            {
                "loan_amount": f"{self.amount[at] / 100:.2f}",
                "note_rate": str(Decimal(int(self.note[at])).scaleb(-5)),
                "term_months": int(self.term[at]) or 360,
                "first_payment_date": date_of(self.first_payment[at]).isoformat(),
                "offer_rate": str(offer.rate),
                "closing_date": closing,
                "new_term_months": assumptions.new_term_months,
                "closing_costs_flat": str(assumptions.closing_costs_flat),
                "closing_costs_percent": str(assumptions.closing_costs_percent),
            }
        )

    def occasion(self, loan_id: int, occasion: int, week: Week) -> str:
        """`rate:<offer date>:<product>`: one wave per person, offer and product."""
        offer = self.offer(occasion, week)
        assert offer is not None
        return f"rate:{offer.as_of.isoformat()}:{offer.product}"

    def offer(self, occasion: int, week: Week) -> Offer | None:
        """The offer of the product a firing was priced on."""
        return week.offers.get(PRODUCTS[occasion])


def _offer_float(week: Week, product: str) -> float:
    offer = week.offers.get(product)
    return float(offer.rate) if offer is not None else 0.0


def whole_cents(dollars: Floats) -> Ints:
    """Each amount as the live candidate keeps it: `Decimal(f"{x:.2f}")`, in whole cents.

    Formatting rounds the exact binary value; `rint(x * 100)` agrees except within a rounding
    error of a half cent, where the few such amounts are formatted one by one.
    """
    scaled = dollars * 100.0
    cents = np.rint(scaled)
    tie = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-6
    for at in np.flatnonzero(tie & np.isfinite(scaled)).tolist():
        cents[at] = int(Decimal(f"{dollars[at]:.2f}") * 100)
    return np.where(np.isfinite(cents), cents, 0).astype(np.int64)
