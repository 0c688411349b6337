"""PMI removal and FHA-to-conventional at the 80 % loan-to-value edge."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from sqlalchemy.orm import Session

from core.config import load_config
from core.loanmath import estimated_ltv, payments_made, remaining_balance
from tests.triggers.factories import TODAY, config_with, make_loan, qualifying

FUNDED = date(2019, 6, 14)
FIRST_PAYMENT = date(2019, 8, 1)
AMOUNT = Decimal("450000")
# What a 5 %, 30-year $450,000 loan still owes today, as the trigger amortizes it.
BALANCE = remaining_balance(
    principal=AMOUNT,
    annual_rate=Decimal(5),
    months=360,
    payments_made=payments_made(first_payment_date=FIRST_PAYMENT, on=TODAY),
)


def value_for(ltv: str) -> Decimal:
    """A home value (whole cents) whose estimated LTV, as the trigger rounds it, is `ltv`."""
    target = Decimal(ltv)
    exact = BALANCE * 100 / target
    # Round the value so the LTV stays on the right side of the target's rounding.
    rounding = ROUND_CEILING if target == Decimal(80) else ROUND_FLOOR
    value = exact.quantize(Decimal("0.01"), rounding=rounding)
    assert estimated_ltv(balance=BALANCE, value=value) == target
    return value


def equity_loan(session: Session, program: str, value: Decimal, amount: Decimal = AMOUNT) -> int:
    """A 2019 loan of `program` on a home worth `value`; its contact id."""
    loan = make_loan(session, note_rate="5.0", amount=amount, value=value, program=program,
                     funded=FUNDED, first_payment=FIRST_PAYMENT)  # fmt: skip
    return loan.contact_id


@pytest.mark.parametrize(
    ("trigger", "program"), [("pmi_removal", "conventional"), ("fha_mip", "fha")]
)
def test_estimated_ltv_at_80_percent_qualifies_80_01_does_not(
    session: Session, trigger: str, program: str
) -> None:
    at_80 = equity_loan(session, program, value_for("80.00"))
    above = equity_loan(session, program, value_for("80.01"))
    found = qualifying(session, trigger)
    assert set(found) == {at_80}
    assert above not in found
    assert Decimal(found[at_80].snapshot["estimated_ltv"]) == Decimal("80.00")
    assert Decimal(found[at_80].snapshot["estimated_balance"]) == BALANCE


def test_pmi_removal_only_for_conventional_loans_that_started_above_80(session: Session) -> None:
    never_had_pmi = equity_loan(session, "conventional", Decimal(562_500))  # 80 % at closing
    had_pmi = equity_loan(session, "conventional", Decimal(562_499))  # just above 80 %
    fha = equity_loan(session, "fha", Decimal(540_000))
    assert set(qualifying(session, "pmi_removal")) == {had_pmi}
    assert never_had_pmi not in qualifying(session, "pmi_removal")
    assert set(qualifying(session, "fha_mip")) == {fha}


def test_fha_mip_needs_no_mortgage_insurance_at_closing(session: Session) -> None:
    big_down_payment = equity_loan(session, "fha", Decimal(900_000))
    conventional = equity_loan(session, "conventional", Decimal(540_000))
    found = qualifying(session, "fha_mip")
    assert set(found) == {big_down_payment}
    assert conventional not in found


def test_appreciation_and_ceiling_are_configurable(session: Session) -> None:
    person = equity_loan(session, "fha", value_for("80.01"))
    assert person not in qualifying(session, "fha_mip")
    appreciating = load_config(overrides={"math": {"annual_appreciation_percent": 1.0}})
    assert person in qualifying(session, "fha_mip", config=appreciating)
    higher_ceiling = config_with(fha_mip={"max_ltv_percent": 80.01})
    assert person in qualifying(session, "fha_mip", config=higher_ceiling)
