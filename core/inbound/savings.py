"""The borrower's personal savings page (COMPLIANCE §6), built from the snapshot of the trigger
that woke them: the same exact Decimal figures their email carried, with every assumption."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from core.batches.models import BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.inbound.engagement import VISIT, record_engagement
from core.inbound.savings_figures import (
    equity_figures,
    loan_figures,
    occasion_figures,
    remaining_term_option,
)
from core.outreach.context import (
    company_from_settings,
    long_date,
    math_strings,
    officer_context,
    reason_for,
)
from core.settings import Settings

TRIGGER_HEADINGS = {
    "rate_drop": "What refinancing could save you",
    "pmi_removal": "You may be able to drop mortgage insurance",
    "fha_mip": "You may be able to drop FHA mortgage insurance",
    "arm_reset": "Your adjustable rate is about to reset",
    "closing_anniversary": "Happy home anniversary",
    "loan_age": "Your home loan, a few years on",
    "fallout_anniversary": "Picking up where we left off",
}
# Which triggers show the funded loan's own figures (a stalled application has none).
_LOAN_TRIGGERS = ("arm_reset", "closing_anniversary", "loan_age")


@dataclass
class SavingsPage:
    """Everything the savings page shows, already formatted."""

    first_name: str
    trigger: str
    heading: str
    reason: dict[str, Any]
    math: dict[str, str] | None
    lo: dict[str, Any]
    reply_number: str | None
    computed_on: str
    same_term: dict[str, str] | None = None  # the refinance over the remaining months
    equity: dict[str, Any] | None = None  # PMI and FHA MIP
    loan_now: dict[str, str] | None = None  # ARM and anniversaries: the loan as it stands
    occasion: dict[str, str] | None = None  # dates and counts the date triggers keep


def trigger_figures(
    trigger: str, snapshot: dict[str, Any], loan: Loan | None, on: date
) -> dict[str, Any]:
    """The figures beyond the refinance headline that this trigger's page shows."""
    return {
        "same_term": remaining_term_option(snapshot),
        "equity": equity_figures(snapshot, loan, on)
        if trigger in ("pmi_removal", "fha_mip")
        else None,
        "loan_now": loan_figures(loan, on) if trigger in _LOAN_TRIGGERS else None,
        "occasion": occasion_figures(snapshot),
    }


def savings_page(
    *,
    sessions: Callable[[], Session],
    batch_member_id: int,
    settings: Settings,
    now: datetime,
    user_agent: str | None,
    client_ip: str | None,
) -> SavingsPage | None:
    """The page for one batch member (None when there is no such member); records the visit."""
    with sessions() as session:
        member = session.get(BatchMember, batch_member_id)
        if member is None:
            return None
        contact = session.get(Contact, member.contact_id)
        loan = session.get(Loan, member.loan_id)
        officer = session.get(LoanOfficer, loan.lo_id) if loan and loan.lo_id else None
        company = company_from_settings(settings)
        snapshot = member.snapshot or {}
        facts = SavingsPage(
            first_name=(contact.first_name if contact else "") or "there",
            trigger=member.trigger,
            heading=TRIGGER_HEADINGS.get(member.trigger, "A note about your home loan"),
            reason=reason_for(member.trigger, snapshot),
            math=math_strings(snapshot, loan),
            lo=officer_context(officer, company, settings.EMAIL_FROM),
            reply_number=settings.TWILIO_FROM_NUMBER,
            computed_on=long_date(member.created_at.date()),
            **trigger_figures(member.trigger, snapshot, loan, member.created_at.date()),
        )
        record_engagement(
            session, kind=VISIT, now=now, user_agent=user_agent, client_ip=client_ip,
            contact_id=member.contact_id, batch_member_id=member.id,
        )  # fmt: skip
        session.commit()
        return facts
