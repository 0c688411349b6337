"""The savings page's figures for each trigger, formatted, from core.loanmath's Decimal math.

Only what the batch member's snapshot and the loan file really hold is shown: no trigger
stores a PMI or MIP premium, nor an ARM's index, margin or caps, so the page names none of
those amounts. Dates are the evaluation's (the member's `created_at`), the day the snapshot
describes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from core.book.models import Loan
from core.loanmath import (
    apr,
    break_even_months,
    estimated_ltv,
    estimated_value,
    monthly_payment,
    payments_made,
    remaining_balance,
    snapshot_quote,
)
from core.outreach.context import long_date, money, percent, whole_dollars

# Homeowners Protection Act: PMI may be cancelled on request at 80 % of the original value
# and ends automatically at 78 %; a conventional loan at 80 % or less needs no PMI at all.
REQUEST_LTV = Decimal(80)
AUTOMATIC_LTV = Decimal(78)
_CENTS = Decimal(100)
_DAYS_A_YEAR = Decimal("365.25")  # as the equity triggers count a loan's age


def term_words(months: int) -> str:
    """'30 years', '28 years and 10 months', '7 months'."""
    years, rest = divmod(months, 12)
    parts = [f"{years} year{'s' if years != 1 else ''}"] if years else []
    if rest:
        parts.append(f"{rest} month{'s' if rest != 1 else ''}")
    return " and ".join(parts)


def remaining_term_option(snapshot: dict[str, Any]) -> dict[str, str] | None:
    """The same example rate over the loan's remaining months, beside the headline's new term.

    None when the snapshot lacks the quote's inputs, or when the remaining term is the
    headline's own (nothing different to show).
    """
    quote = snapshot_quote(snapshot)
    if quote is None or quote.remaining_months in (0, quote.new_term_months):
        return None
    months = quote.remaining_months
    payment = quote.same_term_payment
    change = quote.same_term_savings
    example_apr = apr(
        amount_financed=quote.remaining_balance - quote.closing_costs,
        payment=payment,
        months=months,
    )
    break_even = break_even_months(closing_costs=quote.closing_costs, monthly_savings=change)
    return {
        "term": term_words(months),
        "months": str(months),
        "example_rate": percent(quote.new_rate),
        "example_apr": percent(example_apr),
        "new_payment": money(payment),
        # A shorter term can cost more a month than today; the page says which way it goes.
        "monthly_savings": money(change) if change > 0 else "",
        "monthly_increase": money(-change) if change < 0 else "",
        "closing_costs": whole_dollars(quote.closing_costs),
        "break_even_months": "" if break_even is None else str(break_even),
    }


def _money_of(cents: int | None) -> Decimal | None:
    return Decimal(cents) / _CENTS if cents else None


def equity_figures(snapshot: dict[str, Any], loan: Loan | None, on: date) -> dict[str, Any] | None:
    """PMI and FHA MIP: balance, values and loan-to-value, exact where the loan file allows.

    The equity triggers keep float estimates for loans far from the ceiling; with the loan's
    amount, rate, value and funding date the page works out the exact Decimal figures the
    trigger would (the snapshot's payment count and appreciation), else it shows the snapshot's.
    """
    if snapshot.get("estimated_ltv") is None:
        return None
    amount = _money_of(loan.loan_amount_cents) if loan else None
    original = _money_of(loan.property_value_cents) if loan else None
    appreciation = Decimal(snapshot.get("appreciation_percent") or "0")
    paid = snapshot.get("payments_made")
    if loan and amount and original and loan.note_rate is not None and loan.funded_date and paid:
        term = loan.term_months or 360
        balance = remaining_balance(
            principal=amount, annual_rate=loan.note_rate, months=term,
            payments_made=min(int(paid), term),
        )  # fmt: skip
        value = estimated_value(
            original_value=original,
            years=Decimal((on - loan.funded_date).days) / _DAYS_A_YEAR,
            annual_appreciation=appreciation,
        )
        ltv = estimated_ltv(balance=balance, value=value)
    else:
        balance = Decimal(snapshot["estimated_balance"])
        value = Decimal(snapshot["estimated_value"])
        ltv = Decimal(snapshot["estimated_ltv"])
    # The Homeowners Protection Act measures against the original value, not today's.
    original_ltv = estimated_ltv(balance=balance, value=original) if original else None
    return {
        "balance": whole_dollars(balance),
        "original_value": whole_dollars(original) if original else "",
        "estimated_value": whole_dollars(value),
        "appreciation": percent(appreciation) if appreciation else "",
        "ltv": percent(ltv),
        "original_ltv": percent(original_ltv) if original_ltv is not None else "",
        "request_ltv": f"{REQUEST_LTV} %",
        "automatic_ltv": f"{AUTOMATIC_LTV} %",
        "at_request": original_ltv is not None and original_ltv <= REQUEST_LTV,
        "at_automatic": original_ltv is not None and original_ltv <= AUTOMATIC_LTV,
        "conventional_without_mi": ltv <= REQUEST_LTV,
    }


def loan_figures(loan: Loan | None, on: date) -> dict[str, str] | None:
    """The funded loan as the file has it: amount, rate, term, scheduled P&I, balance on `on`."""
    if loan is None or loan.funded_date is None or loan.note_rate is None:
        return None
    amount = _money_of(loan.loan_amount_cents)
    if amount is None:
        return None
    term = loan.term_months or 360
    figures = {
        "loan_amount": whole_dollars(amount),
        "note_rate": percent(loan.note_rate),
        "term": term_words(term),
        "payment": money(
            monthly_payment(principal=amount, annual_rate=loan.note_rate, months=term)
        ),
        "balance": "",
    }
    # Without a first payment date the payment count would be a guess: no balance then.
    if loan.first_payment_date is not None:
        paid = payments_made(first_payment_date=loan.first_payment_date, on=on)
        balance = remaining_balance(
            principal=amount, annual_rate=loan.note_rate, months=term,
            payments_made=min(paid, term),
        )  # fmt: skip
        figures["balance"] = whole_dollars(balance)
    return figures


def occasion_figures(snapshot: dict[str, Any]) -> dict[str, str]:
    """The dates and counts the date-driven triggers keep: reset, anniversary, age, fallout."""
    shown: dict[str, str] = {}
    for key in ("arm_reset_date", "anniversary_date", "funded_date", "fallout_date"):
        if snapshot.get(key):
            shown[key] = long_date(snapshot[key])
    for key in ("days_to_reset", "anniversary_years", "loan_age_years", "fallout_months"):
        if snapshot.get(key) is not None:
            shown[key] = str(snapshot[key])
    return shown
