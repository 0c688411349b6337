"""rate_drop at its edges: threshold, product, seasoning, VA, savings, break-even, cooldown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session

from core.config import load_config
from core.flows import approve_batch, evaluate
from core.loanmath import RefinanceQuote, payments_made, refinance_quote, snapshot_quote
from core.outreach.context import math_strings
from core.outreach.models import COMPLETED, Enrollment
from tests.triggers.factories import (
    CLOSING,
    NOW,
    config_with,
    default_config,
    make_loan,
    qualifying,
    set_rate,
    shipped_tracks,
)


def quote(principal: int, note_rate: str, offer: str, first_payment: date) -> RefinanceQuote:
    """The quote the trigger computes for a fresh 360-month loan, closing on CLOSING."""
    return refinance_quote(
        principal=Decimal(principal),
        note_rate=Decimal(note_rate),
        term_months=360,
        first_payment_date=first_payment,
        new_rate=Decimal(offer),
        on=CLOSING,
    )


def smallest_principal(passes: Callable[[int], bool], low: int, high: int) -> int:
    """The smallest whole-dollar principal in (low, high] that passes (`passes` is monotone)."""
    assert not passes(low) and passes(high)
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle
    return high


def test_threshold_exactly_met_qualifies_one_basis_point_short_does_not(session: Session) -> None:
    set_rate(session, "6.0")
    exactly = make_loan(session, note_rate="6.75")
    short = make_loan(session, note_rate="6.74")
    found = qualifying(session, "rate_drop")
    assert set(found) == {exactly.contact_id}
    assert Decimal(found[exactly.contact_id].snapshot["drop_points"]) == Decimal("0.75")
    assert short.contact_id not in found


@pytest.mark.parametrize(
    ("rate_15y", "rate_30y", "winning_term", "product"),
    [("5.5", "6.5", 240, "15y"), ("6.5", "5.5", 241, "30y")],
)
def test_terms_up_to_20_years_compare_with_the_15_year_rate(
    session: Session, rate_15y: str, rate_30y: str, winning_term: int, product: str
) -> None:
    set_rate(session, rate_15y, "15y")
    set_rate(session, rate_30y, "30y")
    loans = {term: make_loan(session, note_rate="6.75", term_months=term) for term in (240, 241)}
    found = qualifying(session, "rate_drop")
    assert set(found) == {loans[winning_term].contact_id}
    snapshot = found[loans[winning_term].contact_id].snapshot
    assert snapshot["product"] == product
    assert Decimal(snapshot["offer_rate"]) == Decimal("5.5")


def test_seasoning_counts_210_days_to_the_earliest_new_closing_date(session: Session) -> None:
    set_rate(session, "6.0")
    seasoned_fp = CLOSING - timedelta(days=210)
    early_fp = CLOSING - timedelta(days=209)
    # Only the day count tells them apart: both have made their six payments by then.
    assert payments_made(first_payment_date=early_fp, on=CLOSING) >= 6
    seasoned = make_loan(
        session, funded=seasoned_fp - timedelta(days=45), first_payment=seasoned_fp
    )
    early = make_loan(session, funded=early_fp - timedelta(days=45), first_payment=early_fp)
    found = qualifying(session, "rate_drop")
    assert seasoned.contact_id in found
    assert early.contact_id not in found
    snapshot = found[seasoned.contact_id].snapshot
    assert snapshot["closing_date"] == (NOW.date() + timedelta(days=30)).isoformat()


def test_missing_first_payment_date_is_assumed_62_days_after_funding(session: Session) -> None:
    set_rate(session, "6.0")
    latest_ok = CLOSING - timedelta(days=210 + 62)
    seasoned = make_loan(session, funded=latest_ok, first_payment=None)
    early = make_loan(session, funded=latest_ok + timedelta(days=1), first_payment=None)
    found = qualifying(session, "rate_drop")
    assert seasoned.contact_id in found
    assert early.contact_id not in found
    assert found[seasoned.contact_id].snapshot["estimated_first_payment"] is True


def test_payments_made_by_closing_are_counted(session: Session) -> None:
    """7 vs 8 payments with 8 required: with the minimum 210 days, 6 payments always follow."""
    set_rate(session, "6.0")
    eight_fp, seven_fp = date(2026, 3, 24), date(2026, 3, 25)
    assert payments_made(first_payment_date=eight_fp, on=CLOSING) == 8
    assert payments_made(first_payment_date=seven_fp, on=CLOSING) == 7
    assert (CLOSING - seven_fp).days >= 210
    eight = make_loan(session, funded=date(2026, 2, 1), first_payment=eight_fp)
    seven = make_loan(session, funded=date(2026, 2, 1), first_payment=seven_fp)
    config = config_with(rate_drop={"seasoning_payments": 8})
    assert set(qualifying(session, "rate_drop", config=config)) == {eight.contact_id}
    assert set(qualifying(session, "rate_drop")) == {eight.contact_id, seven.contact_id}


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 1, 1)))
def test_210_days_after_the_first_payment_means_at_least_6_payments(first: date) -> None:
    assert payments_made(first_payment_date=first, on=first + timedelta(days=210)) >= 6


def test_va_fixed_needs_half_a_point_even_with_a_lower_threshold(session: Session) -> None:
    set_rate(session, "6.0")
    big = "800000"
    va_half = make_loan(session, program="va", note_rate="6.50", amount=big, value="900000")
    va_short = make_loan(session, program="va", note_rate="6.49", amount=big, value="900000")
    conventional = make_loan(session, note_rate="6.49", amount=big, value="900000")
    va_arm = make_loan(session, program="va", note_rate="6.49", amount=big, value="900000",
                       is_arm=True, arm_first_adjustment_date=date(2031, 8, 1))  # fmt: skip
    small_drop = quote(800000, "6.49", "6.0", date(2024, 8, 1))
    assert small_drop.monthly_savings >= 100 and small_drop.break_even_months <= 36
    config = config_with(rate_drop={"threshold_points": 0.25})
    found = qualifying(session, "rate_drop", config=config)
    assert va_short.contact_id not in found
    assert {va_half.contact_id, conventional.contact_id, va_arm.contact_id} <= set(found)
    # With the shipped 0.75 threshold none of them qualifies.
    assert not qualifying(session, "rate_drop")


def test_minimum_monthly_savings_edge(session: Session) -> None:
    set_rate(session, "6.0")
    first_payment = date(2024, 8, 1)

    def saves_enough(principal: int) -> bool:
        return quote(principal, "7.0", "6.0", first_payment).monthly_savings >= 100

    enough = smallest_principal(saves_enough, 50_000, 400_000)
    over, under = (
        quote(enough, "7.0", "6.0", first_payment),
        quote(enough - 1, "7.0", "6.0", first_payment),
    )
    assert over.monthly_savings >= Decimal(100) > under.monthly_savings
    assert under.break_even_months is not None and under.break_even_months <= 36
    qualifies = make_loan(session, amount=str(enough), value=str(enough * 2))
    falls_short = make_loan(session, amount=str(enough - 1), value=str(enough * 2))
    found = qualifying(session, "rate_drop")
    assert falls_short.contact_id not in found
    snapshot = found[qualifies.contact_id].snapshot
    assert Decimal(snapshot["monthly_savings"]) == over.monthly_savings
    assert snapshot["break_even_months"] == over.break_even_months
    assert Decimal(snapshot["closing_costs"]) == over.closing_costs


def test_break_even_edge_at_36_months(session: Session) -> None:
    set_rate(session, "3.0")
    first_payment = date(2026, 3, 1)

    def recoups_in_time(principal: int) -> bool:
        months = quote(principal, "3.75", "3.0", first_payment).break_even_months
        return months is not None and months <= 36

    enough = smallest_principal(recoups_in_time, 100_000, 600_000)
    over, under = (
        quote(enough, "3.75", "3.0", first_payment),
        quote(enough - 1, "3.75", "3.0", first_payment),
    )
    assert (over.break_even_months, under.break_even_months) == (36, 37)
    assert under.monthly_savings >= 100
    kwargs = {"note_rate": "3.75", "funded": date(2026, 1, 15), "first_payment": first_payment}
    qualifies = make_loan(session, amount=str(enough), value=str(enough * 2), **kwargs)
    too_slow = make_loan(session, amount=str(enough - 1), value=str(enough * 2), **kwargs)
    found = qualifying(session, "rate_drop")
    assert qualifies.contact_id in found
    assert too_slow.contact_id not in found
    assert found[qualifies.contact_id].snapshot["break_even_months"] == 36


def _first_wave(session: Session) -> int:
    """Evaluate on NOW at 6.0 %, approve, and let the track run out; the person's contact id."""
    set_rate(session, "6.0")
    loan = make_loan(session)
    result = evaluate(
        session=session, now=NOW, config=default_config(), tracks=shipped_tracks(),
        only=["rate_drop"],
    )  # fmt: skip
    (batch,) = result.batches
    approve_batch(
        session=session, batch_id=batch.id, by="manager", now=NOW, tracks=shipped_tracks()
    )
    session.execute(update(Enrollment).values(status=COMPLETED))
    return loan.contact_id


def _evaluate_rate_drop(session: Session, now: datetime) -> list[int]:
    """The sizes of the rate-drop batches an evaluation at `now` creates (none: [])."""
    result = evaluate(
        session=session, now=now, config=default_config(), tracks=shipped_tracks(),
        only=["rate_drop"],
    )  # fmt: skip
    return [batch.size for batch in result.batches]


@pytest.mark.parametrize(("days", "sizes"), [(89, []), (90, [1])])
def test_cooldown_of_90_days_after_a_live_rate_drop_batch(
    session: Session, days: int, sizes: list[int]
) -> None:
    contact_id = _first_wave(session)
    later = NOW + timedelta(days=days)
    set_rate(session, "6.0", on=later.date())  # a new weekly observation, same rate
    # The person still qualifies on the numbers: the segment counts them.
    assert contact_id in qualifying(session, "rate_drop", now=later, for_segment=True)
    assert _evaluate_rate_drop(session, later) == sizes


@pytest.mark.parametrize(("further", "sizes"), [("0.25", [1]), ("0.24", [])])
def test_next_wave_inside_the_cooldown_needs_a_further_quarter_point(
    session: Session, further: str, sizes: list[int]
) -> None:
    _first_wave(session)
    later = NOW + timedelta(days=30)
    set_rate(session, Decimal("6.0") - Decimal(further), on=later.date())
    assert _evaluate_rate_drop(session, later) == sizes


def test_the_snapshot_keeps_what_the_exact_quote_is_computed_from(session: Session) -> None:
    """A batch member far from every threshold is priced by the estimate; the borrower's email
    reads the exact quote, recomputed from the snapshot, to the cent."""
    set_rate(session, "5.5")
    loan = make_loan(session, amount="612345", first_payment=date(2024, 8, 1))
    snapshot = qualifying(session, "rate_drop")[loan.contact_id].snapshot
    exact = quote(612345, "7.0", "5.5", date(2024, 8, 1))
    assert snapshot_quote(snapshot) == exact
    for figure in ("current_payment", "remaining_balance", "new_payment", "closing_costs"):
        assert abs(Decimal(snapshot[figure]) - getattr(exact, figure)) <= Decimal("0.01")
    math = math_strings(snapshot, loan)
    assert math is not None
    assert math["monthly_savings"] == f"${exact.monthly_savings:,.2f}"
    assert math["new_payment"] == f"${exact.new_payment:,.2f}"


def test_an_offset_finer_than_a_note_rate_is_compared_exactly(session: Session) -> None:
    """6.50 % against an offer of 6.000004 % is a 0.499996-point drop: short of VA's half point."""
    set_rate(session, "6.0")
    va = make_loan(session, program="va", note_rate="6.50", amount="800000", value="900000")
    conventional = make_loan(session, note_rate="6.50", amount="800000", value="900000")
    config = load_config(
        overrides={
            "rates": {"offset_30y": "0.000004"},
            "triggers": {"rate_drop": {"threshold_points": 0.25}},
        }
    )
    found = qualifying(session, "rate_drop", config=config)
    assert va.contact_id not in found
    assert conventional.contact_id in found
    assert Decimal(found[conventional.contact_id].snapshot["drop_points"]) == Decimal("0.499996")


def test_a_snapshot_from_before_the_inputs_were_kept_still_shows_its_figures() -> None:
    stored = {
        "offer_rate": "6.0", "rate_as_of": "2026-09-24", "current_payment": "2661.21",
        "remaining_balance": "389000.00", "new_payment": "2332.22", "monthly_savings": "328.99",
        "closing_costs": "5890.00", "break_even_months": 18, "new_term_months": 360,
    }  # fmt: skip
    math = math_strings(stored, None)
    assert math is not None
    assert (math["monthly_savings"], math["new_payment"]) == ("$328.99", "$2,332.22")
    assert math["break_even_months"] == "18"
