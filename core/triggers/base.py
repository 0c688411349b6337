"""What every trigger shares: its context, its candidates, and the people it must leave alone.

A trigger narrows the book with one set-based SQL query (the exclusions below are NOT EXISTS
sub-queries), then does the survivors' math in Python and yields one candidate per person.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select
from sqlalchemy.orm import Session, aliased

from core.book.models import FUNDED, OPTED_OUT, Contact, Loan
from core.config import Config
from core.consent.models import Suppression
from core.outreach.models import ACTIVE, Enrollment
from core.rates.service import Offer


@dataclass(frozen=True)
class TriggerContext:
    """One evaluation: the clock, the configuration and today's offer rates."""

    session: Session
    now: datetime
    config: Config
    offers: dict[str, Offer] = field(default_factory=dict)

    @property
    def today(self) -> date:
        """The evaluation date (UTC)."""
        return self.now.date()


@dataclass(frozen=True)
class Candidate:
    """A person a trigger found, for one occasion, with why."""

    contact_id: int
    loan_id: int
    occasion: str
    snapshot: dict[str, Any]
    offer_rate: Decimal | None = None
    monthly_savings_cents: int | None = None
    rank: Decimal = Decimal(0)  # higher is better when a person has several qualifying loans


class Trigger(Protocol):
    """A trigger: a name, the segment it feeds, and its candidates."""

    name: str
    segment: str

    def candidates(self, ctx: TriggerContext, *, for_segment: bool) -> Iterator[Candidate]:
        """Qualifying people; `for_segment` skips cooldown and the live-batch guard."""
        ...


def reachable() -> ColumnElement[bool]:
    """People we may contact at all: no opt-out anywhere, and some channel that can carry."""
    sms = and_(
        Contact.phone.is_not(None), Contact.phone_status == "ok", Contact.sms_consent == "granted"
    )
    email = and_(Contact.email.is_not(None), Contact.email_consent.not_in(("denied", OPTED_OUT)))
    # Every opt-out is global (COMPLIANCE §1): an opt-out on one channel ends all marketing.
    no_opt_out = and_(Contact.sms_consent != OPTED_OUT, Contact.email_consent != OPTED_OUT)
    return and_(no_opt_out, or_(sms, email))


def not_suppressed() -> ColumnElement[bool]:
    """Neither the person's phone nor their email is on the suppression list."""
    return and_(
        not_(exists().where(Suppression.kind == "phone", Suppression.value == Contact.phone)),
        not_(exists().where(Suppression.kind == "email", Suppression.value == Contact.email)),
    )


def no_active_enrollment() -> ColumnElement[bool]:
    """The person is not already walking a track."""
    return not_(exists().where(Enrollment.contact_id == Contact.id, Enrollment.status == ACTIVE))


def no_newer_funded_loan(after: Any, today: date) -> ColumnElement[bool]:
    """The person has no funded loan with us dated after `after` (they already came back).

    Only loans funded by `today` count, so a backtest at a past date never sees the future.
    """
    newer = aliased(Loan)
    return not_(
        exists().where(
            newer.contact_id == Loan.contact_id,
            newer.status == FUNDED,
            newer.funded_date > after,
            newer.funded_date <= today,
        )
    )


def standard_filters(
    trigger: str, *, newer_than: Any, today: date, for_segment: bool
) -> list[ColumnElement[bool]]:
    """Every trigger's exclusions (the issue's list), as WHERE clauses over Loan ⋈ Contact."""
    filters = [reachable(), not_suppressed(), no_newer_funded_loan(newer_than, today)]
    if not for_segment:
        filters += [no_active_enrollment()]
    return filters


def loan_query(*columns: Any) -> Any:
    """SELECT columns FROM loans JOIN contacts."""
    return select(*columns).select_from(Loan).join(Contact, Contact.id == Loan.contact_id)


def best_per_contact(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per person: the best-ranked of their qualifying loans."""
    best: dict[int, Candidate] = {}
    for candidate in candidates:
        current = best.get(candidate.contact_id)
        if current is None or candidate.rank > current.rank:
            best[candidate.contact_id] = candidate
    return list(best.values())


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; Feb 29 becomes Feb 28 in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
