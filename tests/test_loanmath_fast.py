"""The vectorized estimates agree with the exact Decimal math to the cent (the LTV to 0.01)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.loanmath import (
    ClosingCosts,
    estimated_ltv,
    estimated_value,
    payments_made,
    refinance_quote,
    remaining_balance,
)
from core.loanmath_fast import (
    balances,
    cents,
    estimated_ltvs,
    payments_made_on,
    refinance_estimates,
)
from core.triggers.columns import day_of

CENT = 0.0100001  # one cent, and a hair for the float printing of the difference

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))
rates = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("15"), places=3)
amounts = st.integers(min_value=10_000_00, max_value=3_000_000_00)  # cents
terms = st.sampled_from([120, 180, 240, 300, 360, 480])


@given(first=days, on=days)
def test_payments_made_match_the_calendar_rule(first: date, on: date) -> None:
    """Month ends, leap days and dates before the first payment, as core.loanmath counts them."""
    vectorized = payments_made_on(np.array([day_of(first)], dtype=np.int64), day_of(on))
    assert int(vectorized[0]) == payments_made(first_payment_date=first, on=on)


def test_payments_made_on_the_31st_in_short_months() -> None:
    first = date(2024, 1, 31)
    for on, expected in ((date(2024, 2, 28), 1), (date(2024, 2, 29), 2), (date(2024, 4, 30), 4)):
        got = payments_made_on(np.array([day_of(first)], dtype=np.int64), day_of(on))
        assert (int(got[0]), payments_made(first_payment_date=first, on=on)) == (expected,) * 2


@settings(max_examples=300)
@given(amount=amounts, rate=rates, term=terms, paid=st.integers(min_value=0, max_value=480))
def test_balances_agree_with_the_exact_balance_to_the_cent(
    amount: int, rate: Decimal, term: int, paid: int
) -> None:
    exact = remaining_balance(
        principal=Decimal(amount) / 100, annual_rate=rate, months=term,
        payments_made=min(paid, term),
    )  # fmt: skip
    estimate = balances(
        np.array([amount / 100]), np.array([float(rate)]), np.array([float(term)]),
        np.array([float(min(paid, term))]),
    )  # fmt: skip
    assert abs(float(estimate[0]) - float(exact)) <= CENT


@settings(max_examples=300)
@given(
    amount=amounts,
    note=rates,
    new=rates,
    term=terms,
    first=st.dates(min_value=date(2005, 1, 1), max_value=date(2026, 1, 1)),
)
def test_refinance_estimates_agree_with_the_exact_quote(
    amount: int, note: Decimal, new: Decimal, term: int, first: date
) -> None:
    """Each figure a batch stores is within a cent of the quote the borrower will read."""
    on = date(2026, 10, 25)
    costs = ClosingCosts(flat=Decimal("2000"), percent=Decimal("1"))
    quote = refinance_quote(
        principal=Decimal(amount) / 100, note_rate=note, term_months=term,
        first_payment_date=first, new_rate=new, on=on, new_term_months=360, costs=costs,
    )  # fmt: skip
    paid = payments_made_on(np.array([day_of(first)], dtype=np.int64), day_of(on))
    found = refinance_estimates(
        np.array([amount / 100]), np.array([float(note)]), np.array([float(term)]),
        paid.astype(float), np.array([float(new)]), 360.0, 2000.0, 1.0,
    )  # fmt: skip
    pairs = {
        "current_payment": (found.current_payment, quote.current_payment),
        "remaining_balance": (found.remaining_balance, quote.remaining_balance),
        "new_payment": (found.new_payment, quote.new_payment),
        "monthly_savings": (found.monthly_savings, quote.monthly_savings),
        "closing_costs": (found.closing_costs, quote.closing_costs),
    }
    for name, (estimate, exact) in pairs.items():
        # Savings is a difference of two rounded payments: each may sit on the other side of a
        # rounding tie, hence two cents there.
        allowed = 2 * CENT if name == "monthly_savings" else CENT
        assert abs(float(estimate[0]) - float(exact)) <= allowed, name


@settings(max_examples=300)
@given(
    amount=amounts,
    value_ratio=st.decimals(min_value=Decimal("1.05"), max_value=Decimal("3"), places=2),
    rate=rates,
    years=st.integers(min_value=0, max_value=25),
    appreciation=st.decimals(min_value=Decimal("-5"), max_value=Decimal("8"), places=1),
)
def test_estimated_ltv_agrees_with_the_exact_ltv(
    amount: int, value_ratio: Decimal, rate: Decimal, years: int, appreciation: Decimal
) -> None:
    funded = date(2001, 3, 15)
    today = funded + timedelta(days=round(years * 365.25))
    paid = min(payments_made(first_payment_date=funded + timedelta(days=47), on=today), 360)
    value_cents = int(amount * value_ratio)
    balance = remaining_balance(
        principal=Decimal(amount) / 100, annual_rate=rate, months=360, payments_made=paid
    )
    held = Decimal((today - funded).days) / Decimal("365.25")
    value = estimated_value(
        original_value=Decimal(value_cents) / 100, years=held, annual_appreciation=appreciation
    )
    exact = estimated_ltv(balance=balance, value=value)
    worth, ltv = estimated_ltvs(
        balances(np.array([amount / 100]), np.array([float(rate)]), np.array([360.0]),
                 np.array([float(paid)])),
        np.array([value_cents / 100]),
        np.array([(today - funded).days / 365.25]),
        float(appreciation),
    )  # fmt: skip
    assert abs(float(worth[0]) - float(value)) <= CENT
    assert abs(float(ltv[0]) - float(exact)) <= CENT


def test_cents_round_halves_up_like_a_servicer() -> None:
    """Halves that a float can hold exactly go up (numpy's own round would take 0.125 to 0.12).

    A decimal half a float cannot hold (1.005 is 1.00499999…) is a rounding tie: the reason
    every figure near a threshold, and every figure a borrower reads, is computed in Decimal.
    """
    assert cents(np.array([0.125, 0.375, 1.625, 2.5, -0.004])).tolist() == [
        0.13, 0.38, 1.63, 2.5, 0.0,
    ]  # fmt: skip
