"""rate_drop: today's offer rate is far enough below the note rate, and the math says so.

SQL narrows the book to funded loans whose note rate clears the threshold against the offer
rate of their product, roughly seasoned and outside the cooldown; numpy then applies the exact
rules to the survivors (COMPLIANCE §7: seasoning days and payments, VA's 0.50-point minimum)
and prices them all at once. A loan whose estimate lands within a dollar of the minimum
savings or a month of the longest break-even is priced again exactly (core.loanmath) before
it is kept or dropped.

The snapshot keeps every input of the quote, so the figures a borrower reads are computed
exactly from it when the message is written (`snapshot_quote`); the figures stored beside
them are the estimates, equal to the cent away from rounding ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import and_, case, exists, func, not_, or_

from core.batches.models import BatchMember
from core.book.models import FUNDED, Loan
from core.loanmath import RefinanceQuote, snapshot_quote
from core.loanmath_fast import RefinanceEstimates, payments_made_on, refinance_estimates
from core.rates.service import Offer
from core.triggers.base import (
    FIRST_PAYMENT_SLACK,
    Candidate,
    Found,
    Rows,
    TriggerContext,
    first_payment_day,
    loan_query,
)
from core.triggers.columns import (
    RATE_UNITS,
    date_of,
    day_number,
    day_of,
    rate_units,
    unindexed,
)

NAME = "rate_drop"
SEGMENT = "refinance"
_CENTS = Decimal(100)
# Estimates agree with the exact figures to the cent but for rounding ties: closer than this
# to the minimum savings (dollars) or the longest break-even (months), the exact math decides.
_MARGIN_DOLLARS = 0.05
_MARGIN_MONTHS = 0.05
_COLUMNS = (
    "loan_id",
    "contact_id",
    "note_rate",
    "amount_cents",
    "term_months",
    "first_payment",
    "first_payment_known",
    "va_fixed",
    "funded",
)


def closing_date(ctx: TriggerContext) -> date:
    """The earliest possible new closing date: today + the configured lead time."""
    return ctx.today + timedelta(days=ctx.config.math.earliest_closing_days)


def _money(dollars: float) -> str:
    return f"{dollars:.2f}"


def _rate(units: int) -> str:
    return str(Decimal(int(units)).scaleb(-5))


@dataclass(frozen=True)
class _Priced:
    """The survivors of the exact rules, priced; `exact` holds the loans priced exactly."""

    columns: dict[str, np.ndarray]
    products: np.ndarray  # True for the 15-year product
    paid: np.ndarray
    estimates: RefinanceEstimates
    exact: dict[int, RefinanceQuote]
    shared: dict[str, dict[str, Any]]  # per product: the inputs every loan shares


def _offer_float(ctx: TriggerContext, product: str) -> float:
    offer = ctx.offers.get(product)
    return float(offer.rate) if offer is not None else 0.0


class RateDrop:
    """The rate-drop trigger."""

    name = NAME
    segment = SEGMENT

    def find(self, ctx: TriggerContext, *, for_segment: bool) -> Found:
        """Funded, seasoned loans with real savings at today's offer rate."""
        if not ctx.offers:
            return Found.nothing()
        closing = closing_date(ctx)
        columns = ctx.fetch(
            self._query(ctx, closing, for_segment),
            _COLUMNS,
            after="funded",
            for_segment=for_segment,
        )
        priced = self._price(ctx, columns, self._seasoned(ctx, columns, closing), closing)
        savings = priced.estimates.monthly_savings.copy()
        break_even = priced.estimates.break_even_months.copy()
        for row, quote in priced.exact.items():
            savings[row] = float(quote.monthly_savings)
            break_even[row] = np.inf if quote.break_even_months is None else quote.break_even_months
        settings = ctx.config.triggers.rate_drop
        keep = np.flatnonzero(
            (savings >= float(settings.min_monthly_savings))
            & (break_even <= settings.max_break_even_months)
        )
        kept = {name: values[keep] for name, values in priced.columns.items()}

        def build(rows: Rows) -> list[Candidate]:
            return [self._candidate(ctx, priced, int(keep[row]), closing) for row in rows]

        return Found(kept["contact_id"], kept["loan_id"], savings[keep], build)

    def _query(self, ctx: TriggerContext, closing: date, for_segment: bool) -> Any:
        settings = ctx.config.triggers.rate_drop
        max_term = ctx.config.rates.fifteen_year_max_term_months
        since = ctx.now - timedelta(days=settings.cooldown_days)
        products = []
        for product, offer in ctx.offers.items():
            term = (
                Loan.term_months <= max_term
                if product == "15y"
                else or_(Loan.term_months > max_term, Loan.term_months.is_(None))
            )
            clause = [term, Loan.note_rate >= offer.rate + settings.threshold_points]
            if not for_segment:
                # The cooldown: messaged lately, unless the rate fell a further "wave" since.
                clause.append(
                    not_(
                        exists().where(
                            BatchMember.contact_id == Loan.contact_id,
                            BatchMember.trigger == NAME,
                            BatchMember.live.is_(True),
                            BatchMember.created_at > since,
                            BatchMember.offer_rate < offer.rate + settings.next_wave_points,
                        )
                    )
                )
            products.append(and_(*clause))
        # A loose bound (a superset); the exact seasoning rules run in numpy.
        seasoned_by = closing - timedelta(days=settings.seasoning_days)
        return loan_query(
            Loan.id,
            Loan.contact_id,
            rate_units(Loan.note_rate),
            Loan.loan_amount_cents,
            func.coalesce(Loan.term_months, 0),
            first_payment_day(),
            case((Loan.first_payment_date.is_(None), 0), else_=1),
            case((and_(Loan.program == "va", Loan.is_arm.is_(False)), 1), else_=0),
            day_number(Loan.funded_date),
        ).where(
            unindexed(Loan.status) == FUNDED,
            Loan.note_rate.is_not(None),
            Loan.loan_amount_cents > 0,
            Loan.funded_date.is_not(None),
            or_(*products),
            or_(
                Loan.first_payment_date <= seasoned_by,
                and_(
                    Loan.first_payment_date.is_(None),
                    unindexed(Loan.funded_date) <= seasoned_by - FIRST_PAYMENT_SLACK,
                ),
            ),
        )

    def _seasoned(
        self, ctx: TriggerContext, columns: dict[str, np.ndarray], closing: date
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows passing the exact rules: product offer, drop, VA minimum, days and payments."""
        settings = ctx.config.triggers.rate_drop
        max_term = ctx.config.rates.fifteen_year_max_term_months
        fifteen = (columns["term_months"] > 0) & (columns["term_months"] <= max_term)

        def lowest_note(points: Decimal) -> np.ndarray:
            # The lowest note rate (in rate units, exactly) at least `points` above the offer
            # of each loan's product; an offset may have more decimals than a note rate.
            lowest = {
                product: math.ceil((offer.rate + points) * RATE_UNITS)
                for product, offer in ctx.offers.items()
            }
            never = np.iinfo(np.int64).max  # no offer for the product: nothing clears
            return np.where(fifteen, lowest.get("15y", never), lowest.get("30y", never))

        note = columns["note_rate"]
        closing_day = day_of(closing)
        paid = payments_made_on(columns["first_payment"], closing_day)
        ok = (
            (note >= lowest_note(settings.threshold_points))
            & ~((columns["va_fixed"] == 1) & (note < lowest_note(settings.va_min_drop_points)))
            & (closing_day - columns["first_payment"] >= settings.seasoning_days)
            & (paid >= settings.seasoning_payments)
        )
        return np.flatnonzero(ok), fifteen, paid

    def _price(
        self,
        ctx: TriggerContext,
        columns: dict[str, np.ndarray],
        seasoned: tuple[np.ndarray, np.ndarray, np.ndarray],
        closing: date,
    ) -> _Priced:
        """Estimates for every seasoned loan; exact quotes for those near a threshold."""
        rows, fifteen, paid = seasoned
        columns = {name: values[rows] for name, values in columns.items()}
        fifteen, paid = fifteen[rows], paid[rows]
        offer = np.where(fifteen, _offer_float(ctx, "15y"), _offer_float(ctx, "30y"))
        assumptions = ctx.config.math
        months = np.where(columns["term_months"] > 0, columns["term_months"], 360)
        estimates = refinance_estimates(
            columns["amount_cents"] / 100.0,
            columns["note_rate"] / RATE_UNITS,
            months.astype(float),
            paid.astype(float),
            offer,
            float(assumptions.new_term_months),
            float(assumptions.closing_costs_flat),
            float(assumptions.closing_costs_percent),
        )
        settings = ctx.config.triggers.rate_drop
        near = np.flatnonzero(
            (
                np.abs(estimates.monthly_savings - float(settings.min_monthly_savings))
                < _MARGIN_DOLLARS
            )
            | (
                np.abs(estimates.break_even_months - settings.max_break_even_months)
                < _MARGIN_MONTHS
            )
        )
        shared = {
            product: self._shared(ctx, offer, closing) for product, offer in ctx.offers.items()
        }
        priced = _Priced(columns, fifteen, paid, estimates, {}, shared)
        for row in near.tolist():
            quote = snapshot_quote(self._inputs(ctx, priced, row, closing))
            if quote is not None:
                priced.exact[row] = quote
        return priced

    def _offer(self, ctx: TriggerContext, priced: _Priced, row: int) -> Offer:
        return ctx.offers["15y" if priced.products[row] else "30y"]

    def _inputs(
        self, ctx: TriggerContext, priced: _Priced, row: int, closing: date
    ) -> dict[str, Any]:
        """What the quote is computed from: the loan, the offer and the assumptions."""
        columns = priced.columns
        return {
            **priced.shared[self._offer(ctx, priced, row).product],
            "note_rate": _rate(columns["note_rate"][row]),
            "drop_points": str(
                Decimal(int(columns["note_rate"][row])).scaleb(-5)
                - self._offer(ctx, priced, row).rate
            ),
            "payments_made": int(priced.paid[row]),
            "first_payment_date": date_of(columns["first_payment"][row]).isoformat(),
            "estimated_first_payment": not columns["first_payment_known"][row],
            "loan_amount": _money(columns["amount_cents"][row] / 100),
            "term_months": int(columns["term_months"][row]) or 360,
        }

    @staticmethod
    def _shared(ctx: TriggerContext, offer: Offer, closing: date) -> dict[str, Any]:
        """The inputs every loan of one product shares in one evaluation."""
        assumptions = ctx.config.math
        return {
            "product": offer.product,
            "index_rate": str(offer.index_rate),
            "offset": str(offer.offset),
            "offer_rate": str(offer.rate),
            "rate_as_of": offer.as_of.isoformat(),
            "rate_source": offer.describe(),
            "closing_date": closing.isoformat(),
            "new_term_months": assumptions.new_term_months,
            "closing_costs_flat": str(assumptions.closing_costs_flat),
            "closing_costs_percent": str(assumptions.closing_costs_percent),
        }

    def _candidate(
        self, ctx: TriggerContext, priced: _Priced, row: int, closing: date
    ) -> Candidate:
        """One person's candidate: the snapshot's inputs and the figures (exact when priced so)."""
        snapshot = self._inputs(ctx, priced, row, closing)
        quote = priced.exact.get(row)
        if quote is not None:
            figures = {
                "current_payment": str(quote.current_payment),
                "remaining_balance": str(quote.remaining_balance),
                "new_payment": str(quote.new_payment),
                "monthly_savings": str(quote.monthly_savings),
                "closing_costs": str(quote.closing_costs),
                "break_even_months": quote.break_even_months,
            }
            savings = quote.monthly_savings
        else:
            found = priced.estimates
            figures = {
                "current_payment": _money(found.current_payment[row]),
                "remaining_balance": _money(found.remaining_balance[row]),
                "new_payment": _money(found.new_payment[row]),
                "monthly_savings": _money(found.monthly_savings[row]),
                "closing_costs": _money(found.closing_costs[row]),
                "break_even_months": int(np.ceil(found.break_even_months[row])),
            }
            savings = Decimal(figures["monthly_savings"])
        offer = self._offer(ctx, priced, row)
        return Candidate(
            contact_id=int(priced.columns["contact_id"][row]),
            loan_id=int(priced.columns["loan_id"][row]),
            occasion=f"rate:{offer.as_of.isoformat()}:{offer.product}",
            snapshot={**snapshot, **figures},
            offer_rate=offer.rate,
            monthly_savings_cents=int(savings * _CENTS),
            rank=savings,
        )
