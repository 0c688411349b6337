"""Mortgage payment math on Decimal: P&I, remaining balance, refinance savings, APR.

Conventions (the ones loan servicers use):
- Money is rounded to the cent, ROUND_HALF_UP; rates are given in percent
  (Decimal('6.5') is 6.5 %), the monthly rate is annual / 12.
- The scheduled payment is the level P&I rounded to the cent. The remaining balance is
  the closed form with that rounded payment and exact monthly interest, rounded to the
  cent; the last payment absorbs the rounding, so the balance after it is exactly 0.00.
- Due dates keep the first payment's day of month, clamped to short months
  (Jan 31 -> Feb 28 -> Mar 31).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

__all__ = [
    "ClosingCosts",
    "RefinanceQuote",
    "apr",
    "break_even_months",
    "estimated_ltv",
    "estimated_value",
    "monthly_payment",
    "payments_made",
    "refinance_quote",
    "remaining_balance",
]

# Our own context so a caller's lowered precision never leaks into money math;
# 34 digits keeps P(1+r)^n - M*s_n exact to far below a cent on any real loan.
_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN)
_CENT = Decimal("0.01")
_ZERO_CENTS = Decimal("0.00")
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_TWELVE_HUNDRED = Decimal(1200)
_APR_PLACES = Decimal("0.001")


def _cents(amount: Decimal) -> Decimal:
    """Round money to the cent the way servicers do (half a cent goes up)."""
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _decimal(value: Decimal | int, name: str) -> Decimal:
    """Accept Decimal or int; refuse floats, whose binary error would leak into cents."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"{name} must be a Decimal (or int), not {type(value).__name__}")


def _check_loan(principal: Decimal, annual_rate: Decimal, months: int) -> None:
    """Reject loans no servicer could book."""
    if months <= 0:
        raise ValueError(f"months must be positive, got {months}")
    if principal < 0:
        raise ValueError(f"principal must not be negative, got {principal}")
    if annual_rate < 0:
        raise ValueError(f"annual_rate must not be negative, got {annual_rate}")


def _payment(principal: Decimal, rate: Decimal, months: int) -> Decimal:
    """Rounded level P&I for a monthly rate (fraction); the caller holds _CONTEXT."""
    if not rate:
        return _cents(principal / months)
    return _cents(principal * rate / (_ONE - (_ONE + rate) ** -months))


def _balance(
    principal: Decimal, rate: Decimal, months: int, payment: Decimal, paid: int
) -> Decimal:
    """Balance after `paid` payments of the rounded `payment`; the caller holds _CONTEXT."""
    if paid <= 0:
        return _cents(principal)
    if paid >= months:
        return _ZERO_CENTS
    if rate:
        growth = (_ONE + rate) ** paid
        balance = principal * growth - payment * (growth - _ONE) / rate
    else:
        balance = principal - payment * paid
    balance = _cents(balance)
    # A payment rounded up can retire a tiny loan early; a balance is never negative.
    return balance if balance > 0 else _ZERO_CENTS


def monthly_payment(*, principal: Decimal, annual_rate: Decimal, months: int) -> Decimal:
    """Scheduled monthly principal and interest, to the cent."""
    principal = _decimal(principal, "principal")
    annual_rate = _decimal(annual_rate, "annual_rate")
    _check_loan(principal, annual_rate, months)
    with localcontext(_CONTEXT):
        return _payment(principal, annual_rate / _TWELVE_HUNDRED, months)


def remaining_balance(
    *, principal: Decimal, annual_rate: Decimal, months: int, payments_made: int
) -> Decimal:
    """Unpaid principal after a number of scheduled payments, to the cent (0.00 once paid off)."""
    principal = _decimal(principal, "principal")
    annual_rate = _decimal(annual_rate, "annual_rate")
    _check_loan(principal, annual_rate, months)
    if payments_made < 0:
        raise ValueError(f"payments_made must not be negative, got {payments_made}")
    with localcontext(_CONTEXT):
        rate = annual_rate / _TWELVE_HUNDRED
        payment = _payment(principal, rate, months)
        return _balance(principal, rate, months, payment, payments_made)


def payments_made(*, first_payment_date: date, on: date) -> int:
    """Scheduled monthly payments due on or before `on` (0 before the first one is due)."""
    months_apart = (on.year - first_payment_date.year) * 12 + on.month - first_payment_date.month
    if months_apart < 0:
        return 0
    last_day = calendar.monthrange(on.year, on.month)[1]
    due_this_month = date(on.year, on.month, min(first_payment_date.day, last_day))
    return months_apart + 1 if on >= due_this_month else months_apart


@dataclass(frozen=True, slots=True)
class ClosingCosts:
    """Estimated closing costs of a refinance: a flat amount plus a percent of the new loan."""

    flat: Decimal = Decimal("2000")
    percent: Decimal = Decimal("1")

    def on(self, loan_amount: Decimal) -> Decimal:
        """Estimated closing costs for a new loan of this amount, to the cent."""
        loan_amount = _decimal(loan_amount, "loan_amount")
        with localcontext(_CONTEXT):
            return _cents(self.flat + loan_amount * self.percent / _HUNDRED)


@dataclass(frozen=True, slots=True)
class RefinanceQuote:
    """What refinancing the remaining balance would do to a borrower's monthly P&I."""

    current_payment: Decimal
    remaining_balance: Decimal
    remaining_months: int
    new_rate: Decimal
    new_term_months: int
    new_payment: Decimal
    monthly_savings: Decimal
    closing_costs: Decimal
    break_even_months: int | None
    same_term_payment: Decimal
    same_term_savings: Decimal


def _break_even(closing_costs: Decimal, savings: Decimal) -> int | None:
    """Whole months of savings needed to recoup closing costs; None when nothing is saved."""
    if savings <= 0:
        return None
    return int((closing_costs / savings).to_integral_value(rounding=ROUND_CEILING))


def break_even_months(*, closing_costs: Decimal, monthly_savings: Decimal) -> int | None:
    """Whole months of savings that recoup the closing costs (None when nothing is saved)."""
    closing_costs = _decimal(closing_costs, "closing_costs")
    monthly_savings = _decimal(monthly_savings, "monthly_savings")
    with localcontext(_CONTEXT):
        return _break_even(closing_costs, monthly_savings)


def refinance_quote(
    *,
    principal: Decimal,
    note_rate: Decimal,
    term_months: int,
    first_payment_date: date,
    new_rate: Decimal,
    on: date,
    new_term_months: int = 360,
    costs: ClosingCosts = ClosingCosts(),
) -> RefinanceQuote:
    """Savings from refinancing the balance owed on `on`: new term (headline) and same term."""
    principal = _decimal(principal, "principal")
    note_rate = _decimal(note_rate, "note_rate")
    new_rate = _decimal(new_rate, "new_rate")
    _check_loan(principal, note_rate, term_months)
    _check_loan(principal, new_rate, new_term_months)
    paid = min(payments_made(first_payment_date=first_payment_date, on=on), term_months)
    remaining_months = term_months - paid
    with localcontext(_CONTEXT):
        rate = note_rate / _TWELVE_HUNDRED
        scheduled = _payment(principal, rate, term_months)
        balance = _balance(principal, rate, term_months, scheduled, paid)
        # A paid-off loan has no payment left to lower.
        current = scheduled if remaining_months else _ZERO_CENTS
        new_monthly_rate = new_rate / _TWELVE_HUNDRED
        new_payment = _payment(balance, new_monthly_rate, new_term_months)
        same_term_payment = (
            _payment(balance, new_monthly_rate, remaining_months) if remaining_months else current
        )
        savings = current - new_payment
        closing_costs = _cents(costs.flat + balance * costs.percent / _HUNDRED)
        return RefinanceQuote(
            current_payment=current,
            remaining_balance=balance,
            remaining_months=remaining_months,
            new_rate=new_rate,
            new_term_months=new_term_months,
            new_payment=new_payment,
            monthly_savings=savings,
            closing_costs=closing_costs,
            break_even_months=_break_even(closing_costs, savings),
            same_term_payment=same_term_payment,
            same_term_savings=current - same_term_payment,
        )


def estimated_value(
    *, original_value: Decimal, years: Decimal, annual_appreciation: Decimal = Decimal("0")
) -> Decimal:
    """Today's estimated home value, compounding a yearly appreciation percent, to the cent."""
    original_value = _decimal(original_value, "original_value")
    years = _decimal(years, "years")
    annual_appreciation = _decimal(annual_appreciation, "annual_appreciation")
    if annual_appreciation <= -_HUNDRED:
        raise ValueError(f"annual_appreciation must be above -100 %, got {annual_appreciation}")
    with localcontext(_CONTEXT):
        return _cents(original_value * (_ONE + annual_appreciation / _HUNDRED) ** years)


def estimated_ltv(*, balance: Decimal, value: Decimal) -> Decimal:
    """Loan-to-value in percent, 2 decimals (raises ValueError for a value of 0 or less)."""
    balance = _decimal(balance, "balance")
    value = _decimal(value, "value")
    if value <= 0:
        raise ValueError(f"value must be positive to compute an LTV, got {value}")
    with localcontext(_CONTEXT):
        return (balance * _HUNDRED / value).quantize(_CENT, rounding=ROUND_HALF_UP)


def _apr_monthly_rate(amount_financed: float, payment: float, months: int) -> float:
    """Monthly rate i with payment * (1 - (1+i)^-n) / i == amount_financed (Newton)."""
    # f(i) = payment * annuity(i) - amount is convex and decreasing in i, so Newton's
    # method started left of the root (at 0, where f > 0) climbs to it without overshoot.
    rate = 0.0
    for _ in range(200):
        if rate == 0.0:
            value = payment * months - amount_financed
            slope = -payment * months * (months + 1) / 2
        else:
            discount = (1.0 + rate) ** -months
            annuity = (1.0 - discount) / rate
            value = payment * annuity - amount_financed
            slope = payment * (months * discount / (1.0 + rate) - annuity) / rate
        step = value / slope
        rate -= step
        if abs(step) <= 1e-15 * max(rate, 1e-12):
            break
    return rate


def apr(*, amount_financed: Decimal, payment: Decimal, months: int) -> Decimal:
    """Actuarial APR in percent, 3 decimals (Reg Z Appendix J, regular monthly payments)."""
    amount_financed = _decimal(amount_financed, "amount_financed")
    payment = _decimal(payment, "payment")
    if months <= 0:
        raise ValueError(f"months must be positive, got {months}")
    if amount_financed <= 0 or payment <= 0:
        raise ValueError("amount_financed and payment must be positive")
    total = payment * months
    if total < amount_financed:
        raise ValueError("payments do not repay the amount financed (negative APR)")
    if total == amount_financed:
        return Decimal("0.000")
    rate = _apr_monthly_rate(float(amount_financed), float(payment), months)
    # Unit period is one month: APR = 12 x the monthly rate.
    return Decimal(repr(rate * 1200)).quantize(_APR_PLACES, rounding=ROUND_HALF_UP)


def snapshot_quote(snapshot: dict[str, Any]) -> RefinanceQuote | None:
    """The exact quote behind a rate-drop snapshot (None for a snapshot without its inputs)."""
    if any(snapshot.get(key) is None for key in _QUOTE_INPUTS):
        return None
    return refinance_quote(
        principal=Decimal(snapshot["loan_amount"]),
        note_rate=Decimal(snapshot["note_rate"]),
        term_months=int(snapshot["term_months"]),
        first_payment_date=date.fromisoformat(snapshot["first_payment_date"]),
        new_rate=Decimal(snapshot["offer_rate"]),
        on=date.fromisoformat(snapshot["closing_date"]),
        new_term_months=int(snapshot["new_term_months"]),
        costs=ClosingCosts(
            flat=Decimal(snapshot["closing_costs_flat"]),
            percent=Decimal(snapshot["closing_costs_percent"]),
        ),
    )


# The inputs a rate-drop snapshot keeps so the borrower's figures can be recomputed exactly.
_QUOTE_INPUTS = (
    "loan_amount",
    "note_rate",
    "term_months",
    "first_payment_date",
    "offer_rate",
    "closing_date",
    "new_term_months",
    "closing_costs_flat",
    "closing_costs_percent",
)
