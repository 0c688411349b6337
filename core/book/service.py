"""Reading and writing the book: loan officers and contacts."""

from __future__ import annotations

from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import LoanOfficer


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
