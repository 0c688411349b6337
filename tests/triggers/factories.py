"""Small builders for trigger, segment and batch tests: a book a loan officer would recognize."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches.candidate import Candidate
from core.batches.models import Batch, BatchMember
from core.batches.service import create_batch
from core.book.models import FUNDED, Contact, Loan, LoanOfficer
from core.config import Config, load_config
from core.consent.models import Suppression
from core.flows import trigger_context
from core.outreach.models import ACTIVE, Enrollment
from core.rates.service import record_manual_rate
from core.tracks.config import Track, load_tracks
from core.triggers.base import add_years
from core.triggers.registry import TRIGGERS

# The segment names, as SPEC §4 writes them (the contract, not the registry's own list).
SEGMENT_NAMES = {
    "refinance",
    "repeat_purchase",
    "stalled",
    "anniversary",
    "arm_reset",
    "pmi_removal",
    "fha_mip",
}

NOW = datetime(2026, 9, 24, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
# The earliest possible new closing date under the shipped configuration (today + 30 days).
CLOSING = TODAY + timedelta(days=30)

_serial = itertools.count(1)


# A test about something else must not lose a person to the holdout's 5 % draw (which depends on
# ids, so on the order tests run in); tests/test_holdout.py sets the fraction it tests.
NO_HOLDOUT = {"holdout": {"fraction": 0.0}}


@cache
def default_config() -> Config:
    """The shipped configuration, holdout off."""
    return load_config(overrides=NO_HOLDOUT)


def config_with(**triggers: dict[str, Any]) -> Config:
    """The shipped configuration (holdout off) with some trigger settings overridden."""
    return load_config(overrides={"triggers": triggers, **NO_HOLDOUT})


@cache
def shipped_tracks() -> Mapping[str, Track]:
    """The shipped tracks (templates checked once)."""
    return load_tracks()


def make_lo(
    session: Session, *, email: str | None = None, name: str = "Larry Officer"
) -> LoanOfficer:
    """A loan officer."""
    officer = LoanOfficer(
        email=email or f"lo{next(_serial)}@broker.com", name=name, created_at=NOW, updated_at=NOW
    )
    session.add(officer)
    session.flush()
    return officer


def make_contact(
    session: Session,
    *,
    lo: LoanOfficer | None = None,
    sms_consent: str = "granted",
    email_consent: str = "granted",
    **fields: Any,
) -> Contact:
    """A reachable person: SMS and email consent granted unless told otherwise."""
    n = next(_serial)
    values: dict[str, Any] = {
        "first_name": "Pat",
        "last_name": f"Borrower{n}",
        "email": f"pat{n}@example.com",
        "phone": f"+1415555{n % 10000:04d}",
        "property_state": "CA",
        "property_zip": "94105",
        "lo_id": lo.id if lo else None,
        "sms_consent": sms_consent,
        "email_consent": email_consent,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    contact = Contact(**values)
    session.add(contact)
    session.flush()
    return contact


def make_loan(
    session: Session,
    contact: Contact | None = None,
    *,
    status: str = FUNDED,
    note_rate: str | Decimal | None = "7.0",
    amount: str | Decimal | None = "400000",
    value: str | Decimal | None = "500000",
    term_months: int | None = 360,
    program: str = "conventional",
    funded: date | None = date(2024, 6, 14),
    first_payment: date | None = date(2024, 8, 1),
    **fields: Any,
) -> Loan:
    """A loan of `contact` (a new reachable person if None); funded 2024, 7 %, $400k by default.

    The default loan qualifies for nothing but a rate drop: it is about two years old, not near
    its closing anniversary, started at 80 % LTV (no PMI) and is a fixed-rate conventional loan.
    """
    contact = contact or make_contact(session)
    loan = Loan(
        loan_number=f"LN{next(_serial):06d}",
        contact_id=contact.id,
        lo_id=contact.lo_id,
        status=status,
        purpose="purchase",
        program=program,
        term_months=term_months,
        note_rate=Decimal(note_rate) if note_rate is not None else None,
        loan_amount_cents=_cents(amount),
        property_value_cents=_cents(value),
        funded_date=funded if status == FUNDED else None,
        first_payment_date=first_payment if status == FUNDED else None,
        created_at=NOW,
        updated_at=NOW,
    )
    for name, field_value in fields.items():
        setattr(loan, name, field_value)
    session.add(loan)
    session.flush()
    return loan


def _cents(amount: str | Decimal | None) -> int | None:
    return None if amount is None else int(Decimal(amount) * 100)


def set_rate(session: Session, rate: str | Decimal, product: str = "30y", on: date = TODAY) -> None:
    """Record a manual market rate (the offer rate, with the shipped zero offset)."""
    record_manual_rate(
        session=session,
        rate=Decimal(rate),
        product=product,
        on=on,
        now=datetime.combine(on, NOW.timetz()),
        actor="test",
    )


def suppress_phone(session: Session, contact: Contact) -> None:
    """Put the person's phone on the suppression list."""
    session.add(
        Suppression(
            kind="phone", value=contact.phone, reason="test", created_by="test", created_at=NOW
        )
    )
    session.flush()


def enroll(session: Session, contact: Contact, loan: Loan, *, status: str = ACTIVE) -> Enrollment:
    """Walk the person down a track (via a loan-age batch), as if a batch had been approved."""
    batch = create_batch(
        session=session,
        trigger="loan_age",
        segment="repeat_purchase",
        candidates=[Candidate(contact.id, loan.id, f"test:{next(_serial)}", {})],
        now=NOW - timedelta(days=400),
        approval_required=False,
        expiry_hours=72,
    )
    assert batch is not None
    member = session.scalars(select(BatchMember).where(BatchMember.batch_id == batch.id)).one()
    enrollment = Enrollment(
        contact_id=contact.id,
        batch_member_id=member.id,
        track="repeat_purchase",
        status=status,
        enrolled_at=NOW - timedelta(days=400),
    )
    session.add(enrollment)
    session.flush()
    return enrollment


def qualifying(
    session: Session,
    trigger: str,
    *,
    now: datetime = NOW,
    config: Config | None = None,
    for_segment: bool = False,
) -> dict[int, Candidate]:
    """The people one trigger finds (contact id -> their candidate), as evaluate would see them."""
    ctx = trigger_context(session=session, now=now, config=config or default_config())
    found = TRIGGERS[trigger].find(ctx, for_segment=for_segment).candidates()
    return {candidate.contact_id: candidate for candidate in found}


# One loan that qualifies for each trigger on NOW (rate_drop needs `set_rate(session, "6.0")`).
def _rate_drop_loan(session: Session, contact: Contact) -> Loan:
    return make_loan(session, contact)


def _loan_age_loan(session: Session, contact: Contact) -> Loan:
    # Three years old ten days ago: inside the milestone window, past its closing anniversary.
    funded = add_years(TODAY - timedelta(days=10), -3)
    return make_loan(
        session, contact, note_rate="5.0", funded=funded, first_payment=funded + timedelta(days=45)
    )


def _anniversary_loan(session: Session, contact: Contact) -> Loan:
    funded = add_years(TODAY + timedelta(days=10), -2)
    return make_loan(
        session, contact, note_rate="5.0", funded=funded, first_payment=funded + timedelta(days=45)
    )


def _fallout_loan(session: Session, contact: Contact) -> Loan:
    return make_loan(session, contact, status="withdrawn", fallout_date=TODAY - timedelta(days=90))


def _arm_loan(session: Session, contact: Contact) -> Loan:
    reset = TODAY + timedelta(days=100)
    return make_loan(
        session, contact, note_rate="5.0", is_arm=True, arm_first_adjustment_date=reset
    )


def _equity_loan(program: str) -> Callable[[Session, Contact], Loan]:
    # Started at 83 % LTV in 2019; seven years of payments bring it near 73 %.
    def build(session: Session, contact: Contact) -> Loan:
        return make_loan(
            session, contact, note_rate="5.0", amount="450000", value="540000",
            program=program, funded=date(2019, 6, 14), first_payment=date(2019, 8, 1),
        )  # fmt: skip

    return build


QUALIFYING_LOAN: dict[str, Callable[[Session, Contact], Loan]] = {
    "rate_drop": _rate_drop_loan,
    "loan_age": _loan_age_loan,
    "closing_anniversary": _anniversary_loan,
    "fallout_anniversary": _fallout_loan,
    "arm_reset": _arm_loan,
    "pmi_removal": _equity_loan("conventional"),
    "fha_mip": _equity_loan("fha"),
}


def newer_funded_loan(session: Session, contact: Contact) -> Loan:
    """A later funded loan with us at a low rate: the person already came back."""
    return make_loan(session, contact, note_rate="3.0", funded=TODAY - timedelta(days=20),
                     first_payment=TODAY + timedelta(days=40), value="400000")  # fmt: skip


def make_enrollment(
    session: Session, contact: Contact, loan: Loan, batch: Batch, at: datetime, *,
    status: str = ACTIVE, track: str | None = None,
) -> Enrollment:  # fmt: skip
    """`contact` enrolled at `at` from `batch` (a live member of it), on the batch's segment's
    track unless `track` is named."""
    member = BatchMember(
        batch_id=batch.id, contact_id=contact.id, loan_id=loan.id, trigger=batch.trigger,
        occasion=f"test:{next(_serial)}", live=True, snapshot={}, created_at=at,
    )  # fmt: skip
    session.add(member)
    session.flush()
    enrollment = Enrollment(contact_id=contact.id, batch_member_id=member.id,
                            track=track or batch.segment, status=status,
                            enrolled_at=at)  # fmt: skip
    session.add(enrollment)
    session.flush()
    return enrollment
