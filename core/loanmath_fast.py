"""Vectorized float64 versions of the payment math, for whole candidate sets at once.

The Decimal functions in core.loanmath stay authoritative: a loan whose float estimate lands
near a threshold is recomputed exactly before anything is decided, and the figures a borrower
reads are computed exactly when the message is written. Away from a rounding tie (a chance
of about one in 10⁵ per figure) the estimates agree with the Decimal ones to the cent;
tests/test_loanmath_fast.py checks that with hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def cents(amount: Floats) -> Floats:
    """Round to the cent, halves up (as core.loanmath does; numpy's own round is half-even)."""
    return np.floor(amount * 100.0 + 0.5) / 100.0


def _payment(principal: Floats, monthly_rate: Floats, months: Floats) -> Floats:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        level = principal * monthly_rate / (1.0 - (1.0 + monthly_rate) ** -months)
        return cents(np.where(monthly_rate == 0, principal / months, level))


def payments_made_on(first_payment_day: Ints, on_day: int) -> Ints:
    """Scheduled payments due on or before day `on_day`, per first-payment day number.

    The same calendar rule as core.loanmath.payments_made: one per month from the first due
    date, a due day past the month's end falling on its last day.
    """
    first = first_payment_day.astype("datetime64[D]")
    first_month = first.astype("datetime64[M]")
    due_day = (first - first_month.astype("datetime64[D]")).astype(np.int64) + 1
    on = np.datetime64(int(on_day), "D")
    on_month = on.astype("datetime64[M]")
    on_day_of_month = int((on - on_month.astype("datetime64[D]")).astype(np.int64)) + 1
    month_length = int(((on_month + 1).astype("datetime64[D]") - on_month).astype(np.int64))
    apart = (on_month - first_month).astype(np.int64)
    made = apart + (on_day_of_month >= np.minimum(due_day, month_length))
    return np.where(apart < 0, 0, made).astype(np.int64)


def balances(principal: Floats, annual_rate: Floats, months: Floats, paid: Floats) -> Floats:
    """Remaining balances after `paid` payments (percent rates, cent-rounded payments)."""
    rate = annual_rate / 1200.0
    payment = _payment(principal, rate, months)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        growth = (1.0 + rate) ** paid
        owed = principal * growth - payment * (growth - 1.0) / rate
    owed = np.where(rate == 0, principal - payment * paid, owed)
    return cents(np.clip(np.where(paid >= months, 0.0, owed), 0.0, None))


@dataclass(frozen=True)
class RefinanceEstimates:
    """Per loan: the float estimate of each figure in core.loanmath.RefinanceQuote."""

    current_payment: Floats
    remaining_balance: Floats
    new_payment: Floats
    monthly_savings: Floats
    closing_costs: Floats
    break_even_months: Floats  # fractional; inf when nothing is saved


def refinance_estimates(
    principal: Floats,
    note_rate: Floats,
    months: Floats,
    paid: Floats,
    new_rate: Floats,
    new_months: float,
    costs_flat: float,
    costs_percent: float,
) -> RefinanceEstimates:
    """Refinancing each remaining balance at `new_rate` over `new_months`."""
    paid = np.minimum(paid, months)
    scheduled = _payment(principal, note_rate / 1200.0, months)
    current = np.where(paid >= months, 0.0, scheduled)  # a paid-off loan has nothing to lower
    balance = balances(principal, note_rate, months, paid)
    new_payment = _payment(balance, new_rate / 1200.0, np.full_like(balance, new_months))
    savings = current - new_payment
    costs = cents(costs_flat + balance * costs_percent / 100.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        break_even = np.where(savings > 0, costs / savings, np.inf)
    return RefinanceEstimates(current, balance, new_payment, savings, costs, break_even)


def estimated_ltvs(
    balance: Floats, original_value: Floats, years: Floats, appreciation: float
) -> tuple[Floats, Floats]:
    """(estimated value to the cent, LTV percent to 2 decimals) per loan."""
    value = cents(original_value * (1.0 + appreciation / 100.0) ** years)
    with np.errstate(divide="ignore", invalid="ignore"):
        ltv = np.floor(balance * 100.0 / value * 100.0 + 0.5) / 100.0
    return value, ltv
