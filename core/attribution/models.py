"""One row per credited funded loan: the enrollment it is credited to, how, and why."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

IMPORT = "import"  # `how` of a credit made by a book import


class FundedCredit(Base):
    """A funded loan credited to one enrollment: counted once, never twice.

    ``loan_id`` is unique (one credit per loan). A loan officer's "Mark funded" comes before the
    loan is in the book: its row has no loan yet (at most one such row per enrollment), and the
    import that brings the loan fills it in instead of adding a second row.
    """

    __tablename__ = "funded_credits"
    __table_args__ = (
        Index(
            "uq_funded_credits_marked_enrollment",
            "enrollment_id",
            unique=True,
            sqlite_where=text("loan_id IS NULL"),
            postgresql_where=text("loan_id IS NULL"),
        ),
        Index("ix_funded_credits_funded_date", "funded_date"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"), index=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id"))
    funded_date: Mapped[date] = mapped_column(Date)
    credited_at: Mapped[datetime]
    how: Mapped[str] = mapped_column(String(60))  # "import" or "marked by <@U…>"
    why: Mapped[str] = mapped_column(String(300))
