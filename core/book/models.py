"""Loan officers, contacts and loans: the brokerage's book."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base

# Loan statuses, normalized from LOS words or HMDA action-taken codes (SPEC §4).
FUNDED = "funded"
ACTIVE = "active"
WITHDRAWN = "withdrawn"
INCOMPLETE = "incomplete"
DENIED = "denied"
APPROVED_NOT_ACCEPTED = "approved_not_accepted"
LOAN_STATUSES = (FUNDED, ACTIVE, WITHDRAWN, INCOMPLETE, DENIED, APPROVED_NOT_ACCEPTED)
FALLOUT_STATUSES = (WITHDRAWN, INCOMPLETE, DENIED, APPROVED_NOT_ACCEPTED)

# Loan programs, as a broker would group them for refinance rules.
PROGRAMS = ("conventional", "fha", "va", "usda", "other")

# Consent states per channel, most restrictive last.
GRANTED = "granted"
UNKNOWN = "unknown"
DENIED_CONSENT = "denied"
OPTED_OUT = "opted_out"
CONSENT_RANK = {GRANTED: 0, UNKNOWN: 1, DENIED_CONSENT: 2, OPTED_OUT: 3}


class LoanOfficer(Base):
    """A loan officer: owns loans, receives warm replies in their Slack channel."""

    __tablename__ = "loan_officers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    nmls_id: Mapped[str | None] = mapped_column(String(20))
    slack_user_id: Mapped[str | None] = mapped_column(String(40))
    slack_channel_id: Mapped[str | None] = mapped_column(String(40))
    timezone: Mapped[str | None] = mapped_column(String(40))  # business hours for escalation
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Contact(Base):
    """A person in the book (a past borrower or applicant), with per-channel consent."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    # "ok", or "bad" once a carrier or the borrower told us the number is wrong.
    phone_status: Mapped[str] = mapped_column(String(12), default="ok")
    property_state: Mapped[str | None] = mapped_column(String(2))
    property_zip: Mapped[str | None] = mapped_column(String(5))
    # Lower-cased "first|last|zip5": the last-resort de-duplication key.
    name_zip_key: Mapped[str | None] = mapped_column(String(220), index=True)
    lo_id: Mapped[int | None] = mapped_column(ForeignKey("loan_officers.id"), index=True)
    sms_consent: Mapped[str] = mapped_column(String(12), default=UNKNOWN)
    sms_consent_at: Mapped[datetime | None]
    sms_consent_source: Mapped[str | None] = mapped_column(String(300))
    email_consent: Mapped[str] = mapped_column(String(12), default=UNKNOWN)
    email_consent_at: Mapped[datetime | None]
    email_consent_source: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    loans: Mapped[list[Loan]] = relationship(back_populates="contact", lazy="raise_on_sql")

    @property
    def display_name(self) -> str:
        """First and last name, or a placeholder when the export had none."""
        return f"{self.first_name} {self.last_name}".strip() or "(no name)"


class Loan(Base):
    """A funded loan, or an application that is active or fell out."""

    __tablename__ = "loans"
    __table_args__ = (
        Index("ix_loans_status_funded_date", "status", "funded_date"),
        Index("ix_loans_status_fallout_date", "status", "fallout_date"),
        # "Has this person a newer funded loan?" is asked for every candidate: keep it a seek.
        Index("ix_loans_contact_status_funded", "contact_id", "status", "funded_date"),
        # ARM resets coming up: a seek, over the few loans that adjust at all.
        Index(
            "ix_loans_arm_first_adjustment_date",
            "arm_first_adjustment_date",
            sqlite_where=text("arm_first_adjustment_date IS NOT NULL"),
            postgresql_where=text("arm_first_adjustment_date IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    loan_number: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    lo_id: Mapped[int | None] = mapped_column(ForeignKey("loan_officers.id"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    purpose: Mapped[str | None] = mapped_column(String(24))
    program: Mapped[str | None] = mapped_column(String(16))
    program_name: Mapped[str | None] = mapped_column(String(120))
    is_arm: Mapped[bool] = mapped_column(default=False)
    term_months: Mapped[int | None]
    note_rate: Mapped[Decimal | None]
    loan_amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    property_value_cents: Mapped[int | None] = mapped_column(BigInteger)
    property_state: Mapped[str | None] = mapped_column(String(2))
    property_zip: Mapped[str | None] = mapped_column(String(5))
    application_date: Mapped[date | None] = mapped_column(Date)
    funded_date: Mapped[date | None] = mapped_column(Date)
    fallout_date: Mapped[date | None] = mapped_column(Date)
    first_payment_date: Mapped[date | None] = mapped_column(Date)
    arm_first_adjustment_date: Mapped[date | None] = mapped_column(Date)
    custom_fields: Mapped[dict[str, Any] | None]
    source: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    contact: Mapped[Contact] = relationship(back_populates="loans", lazy="raise_on_sql")
