"""Reading and writing the book: loan officers and contacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import Contact, Loan, LoanOfficer


class BookError(ValueError):
    """Invalid input for the book, with a message fit to show a user."""


def normalize_lo_email(email: str) -> str:
    """A loan officer's email, validated (no DNS) and lower-cased."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise BookError(f"not a valid email address: {exc}") from None


def get_lo_by_email(*, session: Session, email: str) -> LoanOfficer | None:
    """The loan officer with this (normalized) email, if any."""
    return session.scalar(select(LoanOfficer).where(LoanOfficer.email == email))


def upsert_loan_officer(
    *,
    session: Session,
    now: datetime,
    email: str,
    name: str | None = None,
    nmls_id: str | None = None,
    slack_user_id: str | None = None,
    slack_channel_id: str | None = None,
    actor: str = "cli",
) -> tuple[LoanOfficer, bool]:
    """Add a loan officer or update the given fields; returns (officer, created)."""
    email = normalize_lo_email(email)
    officer = get_lo_by_email(session=session, email=email)
    created = officer is None
    if officer is None:
        officer = LoanOfficer(
            email=email, name=(name or email.split("@")[0]).strip(), created_at=now, updated_at=now
        )
        session.add(officer)
    changes = {}
    for field, value in (
        ("name", name),
        ("nmls_id", nmls_id),
        ("slack_user_id", slack_user_id),
        ("slack_channel_id", slack_channel_id),
    ):
        if value is not None and getattr(officer, field) != value.strip():
            changes[field] = value.strip()
            setattr(officer, field, value.strip())
    if changes or created:
        officer.updated_at = now
        session.flush()
        record(
            session=session,
            at=now,
            actor=actor,
            action="lo.created" if created else "lo.updated",
            subject_type="loan_officer",
            subject_id=officer.id,
            details=changes,
        )
    return officer, created


@dataclass(frozen=True)
class OfficerSummary:
    """A loan officer with how many people and loans of the book are theirs."""

    id: int
    name: str
    email: str
    nmls_id: str | None
    slack_user_id: str | None
    slack_channel_id: str | None
    people: int
    loans: int


def list_loan_officers(*, session: Session) -> list[OfficerSummary]:
    """Every loan officer by name, with their share of the book (people and loans)."""
    people = (
        select(Contact.lo_id, func.count().label("n")).group_by(Contact.lo_id).subquery("people")
    )
    loans = select(Loan.lo_id, func.count().label("n")).group_by(Loan.lo_id).subquery("loans")
    rows = session.execute(
        select(LoanOfficer, func.coalesce(people.c.n, 0), func.coalesce(loans.c.n, 0))
        .outerjoin(people, people.c.lo_id == LoanOfficer.id)
        .outerjoin(loans, loans.c.lo_id == LoanOfficer.id)
        .order_by(func.lower(LoanOfficer.name), LoanOfficer.id)
    )
    return [
        OfficerSummary(
            id=officer.id,
            name=officer.name,
            email=officer.email,
            nmls_id=officer.nmls_id,
            slack_user_id=officer.slack_user_id,
            slack_channel_id=officer.slack_channel_id,
            people=int(n_people),
            loans=int(n_loans),
        )
        for officer, n_people, n_loans in rows
    ]
