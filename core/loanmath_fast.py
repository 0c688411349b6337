"""Vectorized float64 versions of the payment math, used only to narrow big candidate sets.

The Decimal functions in core.loanmath stay authoritative: a loan whose float estimate lands
near a threshold is recomputed exactly before anything is decided or shown.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]


def _payment(principal: Floats, monthly_rate: Floats, months: Floats) -> Floats:
    with np.errstate(divide="ignore", invalid="ignore"):
        level = principal * monthly_rate / (1.0 - (1.0 + monthly_rate) ** -months)
    return np.where(monthly_rate == 0, principal / months, np.round(level, 2))


def balances(principal: Floats, annual_rate: Floats, months: Floats, paid: Floats) -> Floats:
    """Remaining balances after `paid` payments (percent rates, cent-rounded payments)."""
    rate = annual_rate / 1200.0
    payment = _payment(principal, rate, months)
    growth = (1.0 + rate) ** paid
    with np.errstate(divide="ignore", invalid="ignore"):
        owed = principal * growth - payment * (growth - 1.0) / rate
    owed = np.where(rate == 0, principal - payment * paid, owed)
    return np.clip(np.where(paid >= months, 0.0, owed), 0.0, None)


def refinance_savings(
    principal: Floats,
    note_rate: Floats,
    months: Floats,
    paid: Floats,
    new_rate: Floats,
    new_months: float,
    costs_flat: float,
    costs_percent: float,
) -> tuple[Floats, Floats]:
    """(monthly savings, break-even months as a float; inf when nothing is saved)."""
    current = _payment(principal, note_rate / 1200.0, months)
    balance = balances(principal, note_rate, months, paid)
    new_payment = _payment(balance, new_rate / 1200.0, np.full_like(balance, new_months))
    savings = current - new_payment
    costs = costs_flat + balance * costs_percent / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        break_even = np.where(savings > 0, costs / savings, np.inf)
    return savings, break_even
