"""Mortgage payment math: published figures, amortization schedules and properties."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.loanmath import (
    ClosingCosts,
    RefinanceQuote,
    apr,
    break_even_months,
    estimated_ltv,
    estimated_value,
    monthly_payment,
    payments_made,
    refinance_quote,
    remaining_balance,
)

CENT = Decimal("0.01")

# Realistic loans: $1,000 to $5M, 0-15 %, 1 to 40 years.
principals = st.integers(min_value=100_000, max_value=500_000_000).map(lambda c: Decimal(c) / 100)
rates = st.integers(min_value=0, max_value=15_000).map(lambda m: Decimal(m) / 1000)
terms = st.integers(min_value=12, max_value=480)


def schedule_balance(principal: Decimal, annual_rate: Decimal, months: int, paid: int) -> Decimal:
    """Walk the amortization table month by month, interest rounded to the cent each month."""
    payment = monthly_payment(principal=principal, annual_rate=annual_rate, months=months)
    balance = principal
    for _ in range(paid):
        interest = (balance * annual_rate / 1200).quantize(CENT, rounding=ROUND_HALF_UP)
        balance -= payment - interest
    return balance


# --- monthly payment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "rate", "months", "expected"),
    [
        ("200000", "6", 360, "1199.10"),
        ("100000", "5", 360, "536.82"),
        ("300000", "3", 180, "2071.74"),
        ("250000", "6.875", 360, "1642.32"),
    ],
)
def test_monthly_payment_matches_published_figures(
    principal: str, rate: str, months: int, expected: str
) -> None:
    payment = monthly_payment(
        principal=Decimal(principal), annual_rate=Decimal(rate), months=months
    )
    assert payment == Decimal(expected)
    assert payment.as_tuple().exponent == -2


def test_zero_rate_payment_is_principal_over_months() -> None:
    assert monthly_payment(
        principal=Decimal(120000), annual_rate=Decimal(0), months=360
    ) == Decimal("333.33")
    assert monthly_payment(principal=Decimal(100), annual_rate=Decimal(0), months=6) == Decimal(
        "16.67"
    )


def test_payment_ignores_the_callers_decimal_precision() -> None:
    with localcontext() as ctx:
        ctx.prec = 4
        payment = monthly_payment(principal=Decimal(200000), annual_rate=Decimal(6), months=360)
    assert payment == Decimal("1199.10")


def test_floats_and_impossible_loans_are_refused() -> None:
    with pytest.raises(TypeError):
        monthly_payment(principal=200000.0, annual_rate=Decimal(6), months=360)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        monthly_payment(principal=Decimal(1000), annual_rate=Decimal(6), months=0)
    with pytest.raises(ValueError):
        monthly_payment(principal=Decimal(1000), annual_rate=Decimal(-1), months=12)
    with pytest.raises(ValueError):
        remaining_balance(
            principal=Decimal(1000), annual_rate=Decimal(6), months=12, payments_made=-1
        )


# --- remaining balance -------------------------------------------------------------------
# Convention: closed form with the ROUNDED payment and exact monthly interest, rounded to the
# cent. Published tables built on the unrounded payment ($1,199.1010...) show $197,543.98
# after 12 payments; with the $1,199.10 the servicer actually bills it is $197,543.99.


def test_balance_after_a_year_matches_the_amortization_table() -> None:
    closed = remaining_balance(
        principal=Decimal(200000), annual_rate=Decimal(6), months=360, payments_made=12
    )
    assert closed == Decimal("197543.99")
    assert abs(closed - Decimal("197543.98")) <= CENT
    assert closed == schedule_balance(Decimal(200000), Decimal(6), 360, 12)


@pytest.mark.parametrize("paid", [1, 6, 24, 60])
def test_closed_form_tracks_the_month_by_month_schedule(paid: int) -> None:
    closed = remaining_balance(
        principal=Decimal(200000), annual_rate=Decimal(6), months=360, payments_made=paid
    )
    assert abs(closed - schedule_balance(Decimal(200000), Decimal(6), 360, paid)) <= 2 * CENT


def test_balance_before_any_payment_is_the_principal() -> None:
    assert remaining_balance(
        principal=Decimal(200000), annual_rate=Decimal(6), months=360, payments_made=0
    ) == Decimal("200000.00")


@given(principals, rates, terms)
def test_balance_is_zero_after_the_last_payment(
    principal: Decimal, rate: Decimal, months: int
) -> None:
    for paid in (months, months + 1):
        balance = remaining_balance(
            principal=principal, annual_rate=rate, months=months, payments_made=paid
        )
        assert balance == Decimal("0.00")
        assert str(balance) == "0.00"


@given(principals, rates, terms, st.data())
def test_balance_never_rises_and_never_goes_negative(
    principal: Decimal, rate: Decimal, months: int, data: st.DataObject
) -> None:
    paid = data.draw(st.integers(min_value=0, max_value=months))
    kwargs = {"principal": principal, "annual_rate": rate, "months": months}
    before = remaining_balance(**kwargs, payments_made=paid)
    after = remaining_balance(**kwargs, payments_made=paid + 1)
    assert Decimal(0) <= after <= before <= principal


# --- payments made -----------------------------------------------------------------------


def test_payments_made_counts_due_dates_on_or_before_the_day() -> None:
    first = date(2024, 3, 1)
    assert payments_made(first_payment_date=first, on=first - timedelta(days=1)) == 0
    assert payments_made(first_payment_date=first, on=date(2023, 1, 1)) == 0
    assert payments_made(first_payment_date=first, on=first) == 1
    assert payments_made(first_payment_date=first, on=date(2024, 3, 31)) == 1
    assert payments_made(first_payment_date=first, on=date(2024, 4, 1)) == 2
    assert payments_made(first_payment_date=first, on=date(2025, 3, 1)) == 13


def test_payments_due_on_the_31st_fall_on_short_month_ends() -> None:
    first = date(2023, 1, 31)
    assert payments_made(first_payment_date=first, on=date(2023, 2, 27)) == 1
    assert payments_made(first_payment_date=first, on=date(2023, 2, 28)) == 2
    assert payments_made(first_payment_date=first, on=date(2023, 3, 30)) == 2
    assert payments_made(first_payment_date=first, on=date(2023, 3, 31)) == 3
    leap = date(2024, 1, 31)
    assert payments_made(first_payment_date=leap, on=date(2024, 2, 28)) == 1
    assert payments_made(first_payment_date=leap, on=date(2024, 2, 29)) == 2


# --- closing costs and the refinance quote -----------------------------------------------


def test_default_closing_costs_are_2000_plus_one_percent() -> None:
    assert ClosingCosts().on(Decimal("197543.99")) == Decimal("3975.44")
    assert ClosingCosts(flat=Decimal(0), percent=Decimal("0.5")).on(Decimal(1001)) == Decimal(
        "5.01"
    )


def test_refinance_quote_worked_example() -> None:
    # $200,000 at 6 % first due 2024-01-01; by 2024-12-15 twelve payments are made.
    quote = refinance_quote(
        principal=Decimal(200000),
        note_rate=Decimal(6),
        term_months=360,
        first_payment_date=date(2024, 1, 1),
        new_rate=Decimal(5),
        on=date(2024, 12, 15),
    )
    assert quote == RefinanceQuote(
        current_payment=Decimal("1199.10"),
        remaining_balance=Decimal("197543.99"),
        remaining_months=348,
        new_rate=Decimal(5),
        new_term_months=360,
        new_payment=Decimal("1060.46"),
        monthly_savings=Decimal("138.64"),
        closing_costs=Decimal("3975.44"),
        break_even_months=29,  # 3975.44 / 138.64 = 28.67...
        same_term_payment=monthly_payment(
            principal=Decimal("197543.99"), annual_rate=Decimal(5), months=348
        ),
        same_term_savings=Decimal("1199.10")
        - monthly_payment(principal=Decimal("197543.99"), annual_rate=Decimal(5), months=348),
    )
    assert Decimal(0) < quote.same_term_savings < quote.monthly_savings


def test_break_even_rounds_up_to_whole_months_and_agrees_with_the_quote() -> None:
    assert (
        break_even_months(closing_costs=Decimal("3975.44"), monthly_savings=Decimal("138.64")) == 29
    )
    assert (
        break_even_months(closing_costs=Decimal("300.00"), monthly_savings=Decimal("100.00")) == 3
    )
    assert (
        break_even_months(closing_costs=Decimal("300.00"), monthly_savings=Decimal("0.00")) is None
    )
    assert break_even_months(closing_costs=Decimal("300.00"), monthly_savings=Decimal("-5")) is None
    quote = refinance_quote(
        principal=Decimal(200000), note_rate=Decimal(6), term_months=360,
        first_payment_date=date(2024, 1, 1), new_rate=Decimal(5), on=date(2024, 12, 15),
    )  # fmt: skip
    assert quote.break_even_months == break_even_months(
        closing_costs=quote.closing_costs, monthly_savings=quote.monthly_savings
    )
    with pytest.raises(TypeError):
        break_even_months(closing_costs=300.0, monthly_savings=Decimal(1))  # type: ignore[arg-type]


def test_no_savings_means_no_break_even() -> None:
    quote = refinance_quote(
        principal=Decimal(200000),
        note_rate=Decimal(5),
        term_months=360,
        first_payment_date=date(2024, 1, 1),
        new_rate=Decimal(7),
        on=date(2025, 1, 1),
    )
    assert quote.monthly_savings < 0
    assert quote.break_even_months is None


def test_a_paid_off_loan_has_nothing_to_save() -> None:
    quote = refinance_quote(
        principal=Decimal(100000),
        note_rate=Decimal(7),
        term_months=120,
        first_payment_date=date(2010, 1, 1),
        new_rate=Decimal(3),
        on=date(2024, 1, 1),
    )
    assert quote.remaining_balance == Decimal("0.00")
    assert quote.remaining_months == 0
    assert quote.monthly_savings == Decimal(0)
    assert quote.same_term_savings == Decimal(0)
    assert quote.break_even_months is None


def quote_for(
    principal: Decimal, note_rate: Decimal, months: int, paid: int, new_rate: Decimal, **kw: int
) -> RefinanceQuote:
    """A quote `paid` payments into a loan whose first payment was due 2020-01-01."""
    first = date(2020, 1, 1)
    on = date(first.year + (paid - 1) // 12, (paid - 1) % 12 + 1, 15) if paid else date(2019, 12, 1)
    return refinance_quote(
        principal=principal,
        note_rate=note_rate,
        term_months=months,
        first_payment_date=first,
        new_rate=new_rate,
        on=on,
        **kw,
    )


@given(principals, rates, terms)
def test_same_rate_same_term_saves_exactly_nothing_before_the_first_payment(
    principal: Decimal, rate: Decimal, months: int
) -> None:
    quote = quote_for(principal, rate, months, 0, rate, new_term_months=months)
    assert quote.monthly_savings == Decimal(0)
    assert quote.same_term_savings == Decimal(0)
    assert quote.break_even_months is None


@given(principals, rates, terms, st.data())
def test_same_rate_same_term_saves_only_the_rounding_later(
    principal: Decimal, rate: Decimal, months: int, data: st.DataObject
) -> None:
    # Re-amortizing the balance built on the ROUNDED payment gives that payment back except
    # for the rounding the final payment absorbs: at most half a cent times the growth of
    # that rounding error, ((1+r)^n - 1) / ((1+r)^(n-k) - 1), plus a cent.
    paid = data.draw(st.integers(min_value=0, max_value=months - 1))
    quote = quote_for(principal, rate, months, paid, rate)
    assert quote.remaining_months == months - paid
    growth = Fraction(1) + Fraction(rate) / 1200
    if rate:
        spread = (growth**months - 1) / (growth ** (months - paid) - 1)
    else:
        spread = Fraction(months, months - paid)
    bound = Fraction(1, 200) * spread + Fraction(1, 100)
    assert abs(Fraction(quote.same_term_savings)) <= bound
    if paid <= months // 10 and principal >= 10_000 and rate <= 8:
        assert abs(quote.same_term_savings) <= CENT


@given(principals, rates, terms, rates, rates, st.data())
def test_a_higher_new_rate_never_saves_more(
    principal: Decimal,
    note_rate: Decimal,
    months: int,
    rate_a: Decimal,
    rate_b: Decimal,
    data: st.DataObject,
) -> None:
    low, high = sorted((rate_a, rate_b))
    paid = data.draw(st.integers(min_value=0, max_value=months - 1))
    at_low = quote_for(principal, note_rate, months, paid, low)
    at_high = quote_for(principal, note_rate, months, paid, high)
    assert at_high.monthly_savings <= at_low.monthly_savings
    assert at_high.same_term_savings <= at_low.same_term_savings
    if high - low >= Decimal("0.25") and at_low.remaining_balance >= 10_000:
        assert at_high.monthly_savings < at_low.monthly_savings


@given(principals, rates, terms, rates, st.data())
def test_break_even_is_costs_over_savings_rounded_up(
    principal: Decimal, note_rate: Decimal, months: int, new_rate: Decimal, data: st.DataObject
) -> None:
    paid = data.draw(st.integers(min_value=0, max_value=months - 1))
    quote = quote_for(principal, note_rate, months, paid, new_rate)
    assert quote.closing_costs == ClosingCosts().on(quote.remaining_balance)
    if quote.monthly_savings > 0:
        assert quote.break_even_months == math.ceil(
            Fraction(quote.closing_costs) / Fraction(quote.monthly_savings)
        )
        assert quote.break_even_months * quote.monthly_savings >= quote.closing_costs
    else:
        assert quote.break_even_months is None
    for amount in (
        quote.current_payment,
        quote.remaining_balance,
        quote.new_payment,
        quote.monthly_savings,
        quote.closing_costs,
    ):
        assert isinstance(amount, Decimal)
        assert amount.as_tuple().exponent == -2


# --- value, LTV, APR ---------------------------------------------------------------------


def test_estimated_value_compounds_yearly() -> None:
    assert estimated_value(
        original_value=Decimal(400000), years=Decimal(2), annual_appreciation=Decimal(5)
    ) == Decimal("441000.00")
    assert estimated_value(original_value=Decimal(400000), years=Decimal("3.5")) == Decimal(
        "400000.00"
    )
    half_year = estimated_value(
        original_value=Decimal(100000), years=Decimal("0.5"), annual_appreciation=Decimal(4)
    )
    assert half_year == Decimal("101980.39")  # 100,000 x sqrt(1.04)


def test_estimated_ltv_in_percent() -> None:
    assert estimated_ltv(balance=Decimal("197543.99"), value=Decimal(250000)) == Decimal("79.02")
    assert estimated_ltv(balance=Decimal(1), value=Decimal(8)) == Decimal("12.50")
    assert estimated_ltv(balance=Decimal(1), value=Decimal(3)) == Decimal("33.33")
    with pytest.raises(ValueError):
        estimated_ltv(balance=Decimal(1000), value=Decimal(0))


def test_apr_with_prepaid_finance_charges() -> None:
    # $200,000 at 6 %, $4,000 of prepaid finance charges: amount financed $196,000.
    assert apr(amount_financed=Decimal(196000), payment=Decimal("1199.10"), months=360) == Decimal(
        "6.189"
    )
    assert apr(amount_financed=Decimal(200000), payment=Decimal("1199.10"), months=360) == Decimal(
        "6.000"
    )
    assert apr(amount_financed=Decimal(1200), payment=Decimal(100), months=12) == Decimal("0.000")
    with pytest.raises(ValueError):
        apr(amount_financed=Decimal(1300), payment=Decimal(100), months=12)


@given(
    st.integers(min_value=50_000, max_value=5_000_000).map(Decimal),
    st.integers(min_value=500, max_value=15_000).map(lambda m: Decimal(m) / 1000),
    terms,
    st.integers(min_value=1, max_value=50_000).map(Decimal),
)
def test_apr_is_the_note_rate_without_fees_and_higher_with_them(
    principal: Decimal, rate: Decimal, months: int, fees: Decimal
) -> None:
    assume(fees < principal / 10)
    payment = monthly_payment(principal=principal, annual_rate=rate, months=months)
    no_fees = apr(amount_financed=principal, payment=payment, months=months)
    assert abs(no_fees - rate) <= Decimal("0.001")
    with_fees = apr(amount_financed=principal - fees, payment=payment, months=months)
    assert with_fees >= rate
    assert with_fees >= no_fees
    assert with_fees.as_tuple().exponent == -3
