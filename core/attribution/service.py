"""Crediting funded loans to the outreach that won them back, once each (SPEC §2.8).

The rule, for a funded loan of a person (its ``funded_date`` F, its ``application_date`` A):

- a *touch* is an SMS or email of one of the person's enrollments that went out (``sent``,
  ``sandbox`` or ``delivered``), dated by its ``sent_at`` (UTC day); call tasks are not touches;
- an enrollment qualifies when it has a touch on or before F, the last such touch is at most
  ``[attribution] window_days`` (120) days before F, and, when A is known, its first touch is on
  or before A (an application made before we ever wrote was not ours to win);
- the loan is credited to the most recent qualifying enrollment (latest ``enrolled_at``, then
  id); none qualifying: nothing is stored and the loan counts nowhere (the import's audit event
  says why).

A loan is credited once: ``funded_credits.loan_id`` is unique and a loan already credited is
skipped, so re-importing the same export changes nothing. "Mark funded" on a claimed reply
card credits the reply's enrollment at once, before the loan is in the book (a row without a
loan, at most one per enrollment); the import that later brings that person's loan fills that
row in rather than crediting the loan a second time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.attribution.models import IMPORT, FundedCredit
from core.audit.service import record
from core.batches.models import BatchMember
from core.book.models import FUNDED, Loan
from core.bulk import any_of
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message
from core.outreach.service import end_sequences

if TYPE_CHECKING:  # inbound sits beside flows, which import this module: the type only
    from core.inbound.models import Reply

TOUCHED = (outbox.SENT, outbox.SANDBOX, outbox.DELIVERED)
TOUCH_CHANNELS = ("sms", "email")


@dataclass(frozen=True)
class Walk:
    """One enrollment of a person, with the UTC days its touches went out (sorted)."""

    id: int
    enrolled_at: datetime
    trigger: str
    touch_days: tuple[date, ...]


@dataclass
class CreditResult:
    """What one crediting pass did: loans credited, and why the others were not."""

    credited: dict[int, int] = field(default_factory=dict)  # loan id -> enrollment id
    not_credited: dict[int, str] = field(default_factory=dict)  # loan id -> why not


def choose(
    walks: Iterable[Walk], *, funded: date, applied: date | None, window_days: int
) -> tuple[Walk | None, str]:
    """The enrollment a loan funded on `funded` is credited to and why, or None and why not."""
    qualifying, refusal = [], "no touch was sent before it funded"
    for walk in sorted(walks, key=lambda w: (w.enrolled_at, w.id)):
        before = [day for day in walk.touch_days if day <= funded]
        if not before:
            continue
        gap = (funded - before[-1]).days
        if gap > window_days:
            refusal = (
                f"funded {gap} days after the last touch of enrollment {walk.id}, "
                f"past the {window_days}-day window"
            )
        elif applied is not None and applied < before[0]:
            refusal = (
                f"applied {applied.isoformat()}, before the first touch of enrollment "
                f"{walk.id} ({before[0].isoformat()})"
            )
        else:
            qualifying.append((walk, gap))
    if not qualifying:
        return None, refusal
    walk, gap = qualifying[-1]
    return walk, f"funded {gap} days after the last touch of enrollment {walk.id} ({walk.trigger})"


def walks_of(session: Session, contact_ids: Iterable[int]) -> dict[int, list[Walk]]:
    """Every enrollment of these people with its touch days, by person."""
    ids = list(contact_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Enrollment.id, Enrollment.contact_id, Enrollment.enrolled_at, BatchMember.trigger)
        .join(BatchMember, BatchMember.id == Enrollment.batch_member_id)
        .where(any_of(session, Enrollment.contact_id, ids))
    ).all()
    days: dict[int, set[date]] = defaultdict(set)
    sent = session.execute(
        select(Message.enrollment_id, Message.sent_at).where(
            any_of(session, Message.contact_id, ids),
            Message.status.in_(TOUCHED),
            Message.channel.in_(TOUCH_CHANNELS),
            Message.sent_at.is_not(None),
        )
    )
    for enrollment_id, sent_at in sent:
        days[enrollment_id].add(sent_at.astimezone(UTC).date())
    walks: dict[int, list[Walk]] = defaultdict(list)
    for enrollment_id, contact_id, enrolled_at, trigger in rows:
        touched = tuple(sorted(days.get(enrollment_id, ())))
        walks[contact_id].append(Walk(enrollment_id, enrolled_at, trigger, touched))
    return walks


def credit_funded_loans(
    *, session: Session, contact_ids: Iterable[int], now: datetime, window_days: int,
    actor: str = IMPORT,
) -> CreditResult:  # fmt: skip
    """Credit these people's funded loans not credited yet (an import's newly funded people)."""
    result = CreditResult()
    walks = walks_of(session, contact_ids)
    if not walks:  # nobody here was ever enrolled: the book, not our outreach
        return result
    loans = session.scalars(
        select(Loan)
        .outerjoin(FundedCredit, FundedCredit.loan_id == Loan.id)
        .where(any_of(session, Loan.contact_id, list(walks)), Loan.status == FUNDED)
        .where(Loan.funded_date.is_not(None), FundedCredit.id.is_(None))
        .order_by(Loan.funded_date, Loan.id)
    ).all()
    pending = _pending_marks(session, list(walks))
    for loan in loans:
        assert loan.funded_date is not None
        mark = _take_mark(pending, loan, walks[loan.contact_id])
        if mark is not None:
            mark.loan_id, mark.funded_date = loan.id, loan.funded_date
            mark.why = f"{mark.why}; loan {loan.loan_number} funded {loan.funded_date} imported"
            result.credited[loan.id] = mark.enrollment_id
            continue
        walk, why = choose(walks[loan.contact_id], funded=loan.funded_date,
                           applied=loan.application_date, window_days=window_days)  # fmt: skip
        if walk is None:
            result.not_credited[loan.id] = why
            continue
        session.add(FundedCredit(
            loan_id=loan.id, contact_id=loan.contact_id, enrollment_id=walk.id,
            funded_date=loan.funded_date, credited_at=now, how=IMPORT, why=why[:300],
        ))  # fmt: skip
        result.credited[loan.id] = walk.id
    session.flush()
    if result.credited or result.not_credited:
        record(
            session=session, at=now, actor=actor, action="funded.credited",
            details={"credited": {str(k): v for k, v in result.credited.items()},
                     "not_credited": {str(k): v for k, v in result.not_credited.items()}},
        )  # fmt: skip
    return result


def _pending_marks(session: Session, contact_ids: list[int]) -> dict[int, list[FundedCredit]]:
    """The "Mark funded" credits still waiting for their loan, by person, oldest first."""
    marks = session.scalars(
        select(FundedCredit)
        .where(
            FundedCredit.loan_id.is_(None), any_of(session, FundedCredit.contact_id, contact_ids)
        )
        .order_by(FundedCredit.credited_at, FundedCredit.id)
    )
    pending: dict[int, list[FundedCredit]] = defaultdict(list)
    for mark in marks:
        pending[mark.contact_id].append(mark)
    return pending


def _take_mark(
    pending: dict[int, list[FundedCredit]], loan: Loan, walks: list[Walk]
) -> FundedCredit | None:
    """The person's waiting mark this loan fills in: one whose enrollment began by its funding."""
    began = {walk.id: walk.enrolled_at.astimezone(UTC).date() for walk in walks}
    marks = pending.get(loan.contact_id, [])
    for mark in marks:
        if loan.funded_date is not None and began.get(mark.enrollment_id, date.max) <= (
            loan.funded_date
        ):
            marks.remove(mark)
            return mark
    return None


def reply_enrollment(session: Session, reply: Reply) -> int | None:
    """The enrollment a reply belongs to: the touch it answered, else the person's latest
    enrollment begun by the time it arrived (the funnel's rule)."""
    if reply.message_id is not None:
        found = session.scalar(select(Message.enrollment_id).where(Message.id == reply.message_id))
        if found is not None:
            return found
    if reply.contact_id is None:
        return None
    return session.scalar(
        select(Enrollment.id)
        .where(
            Enrollment.contact_id == reply.contact_id, Enrollment.enrolled_at <= reply.received_at
        )
        .order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc())
        .limit(1)
    )


def credit_marked(*, session: Session, reply: Reply, by: str, now: datetime) -> FundedCredit | None:
    """A loan officer says the borrower of `reply` closed: credit its enrollment (once) and end
    the person's sequences. None when the enrollment already has a credit, or there is none."""
    enrollment_id = reply_enrollment(session, reply)
    if reply.contact_id is not None:
        end_sequences(session=session, contact_id=reply.contact_id, reason="funded", now=now,
                      actor=by)  # fmt: skip
    if enrollment_id is None or reply.contact_id is None:
        return None
    credited = session.scalar(
        select(FundedCredit.id).where(FundedCredit.enrollment_id == enrollment_id).limit(1)
    )
    if credited is not None:
        return None
    trigger = session.scalar(
        select(BatchMember.trigger)
        .join(Enrollment, Enrollment.batch_member_id == BatchMember.id)
        .where(Enrollment.id == enrollment_id)
    )
    credit = FundedCredit(
        contact_id=reply.contact_id, enrollment_id=enrollment_id, reply_id=reply.id,
        funded_date=now.astimezone(UTC).date(), credited_at=now, how=f"marked by <@{by}>",
        why=f"marked funded on reply {reply.id} to enrollment {enrollment_id} ({trigger})",
    )  # fmt: skip
    try:  # two replies of one enrollment marked at once: the unique index lets one in
        with session.begin_nested():
            session.add(credit)
    except IntegrityError:
        return None
    return credit
