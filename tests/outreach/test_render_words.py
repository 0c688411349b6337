"""What a borrower reads about the rate: the snapshot's rate, product and date, never describe()."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.book.models import Contact, LoanOfficer
from core.outreach.context import Company, Links, percent, render_context, todays_rate_words
from core.rates.service import MANUAL_SOURCE, Offer
from core.tracks.config import Step
from core.tracks.lint import internal_wording, rate_problems, read_html
from core.tracks.render import Rendered, render_step

NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
OFFER = Offer(
    product="30y",
    index_rate=Decimal("5.75"),
    offset=Decimal("0.00"),
    rate=Decimal("5.75"),
    as_of=date(2026, 12, 2),
    source=MANUAL_SOURCE,
)
WORDING = "today's rate of 5.75 % (our 30-year fixed rate as of December 2, 2026)"
INTERNAL = ("offset", "set manually", "PMMS", "2026-12-02", "= ", "rate_source", "5.75%")


def rate_drop_snapshot(offer: Offer = OFFER) -> dict[str, Any]:
    """A batch member's snapshot as the rate-drop trigger stores it (core/triggers/rate_drop.py)."""
    return {
        "product": offer.product,
        "index_rate": str(offer.index_rate),
        "offset": str(offer.offset),
        "offer_rate": str(offer.rate),
        "rate_as_of": offer.as_of.isoformat(),
        "rate_source": offer.describe(),
        "closing_date": "2026-12-17",
        "new_term_months": 360,
        "closing_costs_flat": "2000",
        "closing_costs_percent": "1",
        "note_rate": "7.125",
        "drop_points": str(Decimal("7.125") - offer.rate),
        "payments_made": 30,
        "first_payment_date": "2024-07-01",
        "estimated_first_payment": False,
        "loan_amount": "400000.00",
        "term_months": 360,
    }


def rendered_email(
    snapshot: dict[str, Any], channel: str = "email", template: str = "intro"
) -> Rendered:
    """The refinance step rendered for one borrower from the real render context."""
    context = render_context(
        contact=Contact(id=7, first_name="Dana", last_name="Reyes"),
        officer=LoanOfficer(name="Sam Ortiz", email="sam@example.com", nmls_id="7654321"),
        batch_member_id=11,
        trigger="rate_drop",
        snapshot=snapshot,
        loan=None,
        step=Step(number=1, delay_days=0, channel=channel, template=template, include_stop=True),
        company=Company("Sample Brokerage", "000000", "100 Main St", "Licensed in OR.", "x.test"),
        links=Links(base_url="https://go.example.com", secret="s" * 32),
        email_from=None,
        now=NOW,
    )
    return render_step(track="refinance", template=template, channel=channel, context=context)


def test_the_snapshot_really_carries_the_internal_description() -> None:
    """The premise: what used to be rendered is describe() text a borrower cannot read."""
    assert rate_drop_snapshot()["rate_source"] == (
        "30-year rate 5.75% set manually (2026-12-02) + 0.00 offset = 5.75%"
    )


def test_a_rate_drop_email_words_the_rate_for_a_borrower() -> None:
    rendered = rendered_email(rate_drop_snapshot())
    text = rendered.email_text or ""
    html = read_html(rendered.email_html or "")[0].text
    for part in (text, html):
        assert f"Based on {WORDING}, with a " in part
        # Its APR right beside it, as in the math block below (COMPLIANCE §6).
        assert "5.75 % interest rate, " in part and " % APR on the example below" in part
        for phrase in INTERNAL:
            assert phrase not in part, phrase
        assert internal_wording(part) == []
    assert rate_problems(read_html(rendered.email_html or "")[0], html=True) == []


def test_the_loan_officer_still_reads_the_description_in_the_call_task() -> None:
    task = rendered_email(rate_drop_snapshot(), channel="call_task", template="call").task_text
    assert "set manually (2026-12-02) + 0.00 offset" in (task or "")


def test_a_three_decimal_fifteen_year_rate_keeps_its_eighth() -> None:
    offer = Offer(
        "15y", Decimal("5.875"), Decimal("0.25"), Decimal("6.125"), date(2026, 9, 24), "x"
    )
    assert todays_rate_words(rate_drop_snapshot(offer)) == (
        "today's rate of 6.125 % (our 15-year fixed rate as of September 24, 2026)"
    )


def test_without_a_date_or_product_the_words_say_only_what_is_known() -> None:
    assert todays_rate_words({"offer_rate": "6"}) == "today's rate of 6.00 % (our rate)"


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        ("5.75", "5.75 %"),
        ("6.125", "6.125 %"),
        ("6", "6.00 %"),
        ("6.1", "6.10 %"),
        ("6.0004", "6.00 %"),
        ("6.0125", "6.013 %"),
        ("5.8904", "5.89 %"),
    ],
)
def test_rates_read_with_two_decimals_or_three_when_they_have_them(rate: str, shown: str) -> None:
    assert percent(rate) == shown
