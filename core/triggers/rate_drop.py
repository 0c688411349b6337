"""rate_drop: today's offer rate is far enough below the note rate, and the math says so.

SQL narrows the book to seasoned funded loans whose note rate clears the threshold against the
offer rate of their product; Python then runs the exact refinance math on the survivors
(COMPLIANCE §7: seasoning, VA's 0.50-point minimum, break-even, minimum savings).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Row, and_, or_, select

from core.batches.models import BatchMember
from core.book.models import FUNDED, Loan
from core.config import Config
from core.loanmath import ClosingCosts, payments_made, refinance_quote
from core.loanmath_fast import refinance_savings
from core.rates.service import Offer
from core.triggers.base import Candidate, TriggerContext, loan_query, standard_filters

NAME = "rate_drop"
SEGMENT = "refinance"
# With no first payment date in the export, assume the latest a servicer would set it:
# the first of the second month after funding is at most 62 days after funding.
_FIRST_PAYMENT_SLACK = timedelta(days=62)
_CENTS = Decimal(100)


def closing_date(ctx: TriggerContext) -> date:
    """The earliest possible new closing date: today + the configured lead time."""
    return ctx.today + timedelta(days=ctx.config.math.earliest_closing_days)


def estimated_first_payment(loan_first_payment: date | None, funded: date) -> date:
    """The first payment due date, or the latest it could be when the export lacks it."""
    return loan_first_payment or (funded + _FIRST_PAYMENT_SLACK)


_MARGIN_DOLLARS = 1.0


@dataclass(frozen=True)
class _Seasoned:
    """A loan that passed the cheap rules, with what pricing it needs."""

    row: Row[Any]
    product: str
    offer: Offer
    drop: Decimal
    first_payment: date
    paid: int


def _occasion(loan: _Seasoned) -> str:
    return f"rate:{loan.offer.as_of.isoformat()}:{loan.product}"


def _inside_cooldown(loan: _Seasoned, recent: dict[int, Decimal], next_wave: Decimal) -> bool:
    """Messaged for a rate drop inside the cooldown, and no further drop since."""
    last_offer = recent.get(loan.row.contact_id)
    return last_offer is not None and loan.offer.rate > last_offer - next_wave


def _estimated(loan: _Seasoned, saved: float, months: float) -> Candidate:
    """A segment member priced by the float estimate (clear of every threshold)."""
    savings = Decimal(str(round(saved, 2)))
    return Candidate(
        contact_id=loan.row.contact_id,
        loan_id=loan.row.id,
        occasion=_occasion(loan),
        snapshot={
            "product": loan.product,
            "note_rate": str(loan.row.note_rate),
            "offer_rate": str(loan.offer.rate),
            "rate_source": loan.offer.describe(),
            "monthly_savings": str(savings),
            "break_even_months": math.ceil(months),
            "estimated": True,
        },
        offer_rate=loan.offer.rate,
        monthly_savings_cents=int(savings * 100),
        rank=savings,
    )


def _product_clause(offer: Offer, config: Config, product_is_15y: bool, threshold: Decimal):
    max_term = config.rates.fifteen_year_max_term_months
    term = (
        Loan.term_months <= max_term
        if product_is_15y
        else or_(Loan.term_months > max_term, Loan.term_months.is_(None))
    )
    return and_(term, Loan.note_rate >= offer.rate + threshold)


class RateDrop:
    """The rate-drop trigger."""

    name = NAME
    segment = SEGMENT

    def candidates(self, ctx: TriggerContext, *, for_segment: bool) -> Iterator[Candidate]:
        """Funded, seasoned loans with real savings at today's offer rate."""
        settings = ctx.config.triggers.rate_drop
        closing = closing_date(ctx)
        # Loose SQL bounds (a superset); the exact seasoning check runs in Python below.
        seasoned_by = closing - timedelta(days=settings.seasoning_days)
        products = []
        for product, is_15y in (("30y", False), ("15y", True)):
            if product in ctx.offers:
                clause = _product_clause(
                    ctx.offers[product], ctx.config, is_15y, settings.threshold_points
                )
                products.append(clause)
        if not products:
            return
        query = loan_query(
            Loan.id,
            Loan.contact_id,
            Loan.note_rate,
            Loan.loan_amount_cents,
            Loan.term_months,
            Loan.first_payment_date,
            Loan.funded_date,
            Loan.program,
            Loan.is_arm,
        ).where(
            Loan.status == FUNDED,
            Loan.note_rate.is_not(None),
            Loan.loan_amount_cents > 0,
            Loan.funded_date.is_not(None),
            or_(*products),
            or_(
                Loan.first_payment_date <= seasoned_by,
                and_(
                    Loan.first_payment_date.is_(None),
                    Loan.funded_date <= seasoned_by - _FIRST_PAYMENT_SLACK,
                ),
            ),
            *standard_filters(
                NAME, newer_than=Loan.funded_date, today=ctx.today, for_segment=for_segment
            ),
        )
        survivors = ctx.session.execute(query).all()
        recent = (
            {} if for_segment else self._recent_waves(ctx, {row.contact_id for row in survivors})
        )
        eligible = [
            loan
            for loan in (self._precheck(ctx, row, closing) for row in survivors)
            if loan is not None and not _inside_cooldown(loan, recent, settings.next_wave_points)
        ]
        yield from self._priced(ctx, eligible, closing, exact_all=not for_segment)

    def _precheck(self, ctx: TriggerContext, row: Row[Any], closing: date) -> _Seasoned | None:
        """The cheap exact rules: product, drop, VA minimum, seasoning days and payments."""
        settings = ctx.config.triggers.rate_drop
        max_term = ctx.config.rates.fifteen_year_max_term_months
        product = "15y" if row.term_months and row.term_months <= max_term else "30y"
        offer = ctx.offers.get(product)
        if offer is None:
            return None
        drop = row.note_rate - offer.rate
        if drop < settings.threshold_points:
            return None
        if row.program == "va" and not row.is_arm and drop < settings.va_min_drop_points:
            return None
        first_payment = estimated_first_payment(row.first_payment_date, row.funded_date)
        if (closing - first_payment).days < settings.seasoning_days:
            return None
        paid = payments_made(first_payment_date=first_payment, on=closing)
        if paid < settings.seasoning_payments:
            return None
        return _Seasoned(row, product, offer, drop, first_payment, paid)

    def _priced(
        self, ctx: TriggerContext, loans: list[_Seasoned], closing: date, *, exact_all: bool
    ) -> Iterator[Candidate]:
        """Savings and break-even: vectorized, then exact Decimal where it decides or is shown."""
        if not loans:
            return
        settings = ctx.config.triggers.rate_drop
        assumptions = ctx.config.math
        savings, break_even = refinance_savings(
            np.array([float(loan.row.loan_amount_cents) / 100 for loan in loans]),
            np.array([float(loan.row.note_rate) for loan in loans]),
            np.array([float(loan.row.term_months or 360) for loan in loans]),
            np.array([float(loan.paid) for loan in loans]),
            np.array([float(loan.offer.rate) for loan in loans]),
            float(assumptions.new_term_months),
            float(assumptions.closing_costs_flat),
            float(assumptions.closing_costs_percent),
        )
        minimum = float(settings.min_monthly_savings)
        longest = float(settings.max_break_even_months)
        costs = ClosingCosts(
            flat=assumptions.closing_costs_flat, percent=assumptions.closing_costs_percent
        )
        for loan, saved, months in zip(loans, savings.tolist(), break_even.tolist(), strict=True):
            # Far from both thresholds the float estimate decides; near them, the exact math.
            near = abs(saved - minimum) < _MARGIN_DOLLARS or abs(months - longest) < 1.0
            if not near and (saved < minimum or months > longest):
                continue
            if exact_all or near:
                candidate = self._exact(ctx, loan, closing, costs)
                if candidate is not None:
                    yield candidate
            else:
                yield _estimated(loan, saved, months)

    def _exact(
        self, ctx: TriggerContext, loan: _Seasoned, closing: date, costs: ClosingCosts
    ) -> Candidate | None:
        """The authoritative Decimal quote, and the snapshot the batch keeps."""
        settings = ctx.config.triggers.rate_drop
        row, offer = loan.row, loan.offer
        quote = refinance_quote(
            principal=Decimal(row.loan_amount_cents) / _CENTS,
            note_rate=row.note_rate,
            term_months=row.term_months or 360,
            first_payment_date=loan.first_payment,
            new_rate=offer.rate,
            on=closing,
            new_term_months=ctx.config.math.new_term_months,
            costs=costs,
        )
        if quote.monthly_savings < settings.min_monthly_savings:
            return None
        if (
            quote.break_even_months is None
            or quote.break_even_months > settings.max_break_even_months
        ):
            return None
        snapshot = {
            "product": loan.product,
            "note_rate": str(row.note_rate),
            "index_rate": str(offer.index_rate),
            "offset": str(offer.offset),
            "offer_rate": str(offer.rate),
            "rate_as_of": offer.as_of.isoformat(),
            "rate_source": offer.describe(),
            "drop_points": str(loan.drop),
            "closing_date": closing.isoformat(),
            "payments_made": loan.paid,
            "first_payment_date": loan.first_payment.isoformat(),
            "estimated_first_payment": row.first_payment_date is None,
            "current_payment": str(quote.current_payment),
            "remaining_balance": str(quote.remaining_balance),
            "remaining_months": quote.remaining_months,
            "new_term_months": quote.new_term_months,
            "new_payment": str(quote.new_payment),
            "monthly_savings": str(quote.monthly_savings),
            "closing_costs": str(quote.closing_costs),
            "break_even_months": quote.break_even_months,
            "same_term_payment": str(quote.same_term_payment),
            "same_term_savings": str(quote.same_term_savings),
        }
        return Candidate(
            contact_id=row.contact_id,
            loan_id=row.id,
            occasion=_occasion(loan),
            snapshot=snapshot,
            offer_rate=offer.rate,
            monthly_savings_cents=int(quote.monthly_savings * 100),
            rank=quote.monthly_savings,
        )

    @staticmethod
    def _recent_waves(ctx: TriggerContext, contact_ids: set[int]) -> dict[int, Decimal]:
        """The lowest offer rate each person was put in a live rate-drop batch for, lately."""
        if not contact_ids:
            return {}
        since: datetime = ctx.now - timedelta(days=ctx.config.triggers.rate_drop.cooldown_days)
        recent: dict[int, Decimal] = {}
        rows = ctx.session.execute(
            select(BatchMember.contact_id, BatchMember.offer_rate).where(
                BatchMember.trigger == NAME,
                BatchMember.live.is_(True),
                BatchMember.created_at > since,
                BatchMember.offer_rate.is_not(None),
            )
        )
        for contact_id, offer_rate in rows:
            if contact_id in contact_ids and (
                contact_id not in recent or offer_rate < recent[contact_id]
            ):
                recent[contact_id] = offer_rate
        return recent
