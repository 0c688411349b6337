"""The borrower's personal savings page (COMPLIANCE §6), built from the snapshot of the trigger
that woke them: the same exact Decimal figures their email carried, with every assumption."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.batches.models import BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.inbound.engagement import VISIT, record_engagement
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
}


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
    extra: dict[str, str] = field(default_factory=dict)


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
        )
        record_engagement(
            session, kind=VISIT, now=now, user_agent=user_agent, client_ip=client_ip,
            contact_id=member.contact_id, batch_member_id=member.id,
        )  # fmt: skip
        session.commit()
        return facts
