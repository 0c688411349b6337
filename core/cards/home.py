"""What a person sees on Winback's App Home: their warm replies, today's calls, and (for a
manager) the batches waiting for approval and the pause switch. The 30-day funnel beside them is
core.stats.funnel's, the same numbers as `/winback stats` (stats sits above cards in core's
layers, so the Slack handler reads it in the same transaction).

Everything is read from the database each time the Home is opened: the Home is a window on the
same rows the cards show, never a second copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.batches.models import PENDING_APPROVAL, Batch
from core.book.models import Contact, Loan, LoanOfficer
from core.inbound.models import Reply
from core.outreach.models import TASK_OPEN, Message, Switch
from core.outreach.switches import PAUSE

LIST_LIMIT = 10  # replies, claimed replies and calls each: the Home says "and N more"
BATCH_LIMIT = 5
_EXCERPT = 120


@dataclass(frozen=True)
class HomeReply:
    """A warm reply as a Home row: who, their words, when, what it sounds like."""

    reply_id: int
    name: str
    excerpt: str
    received_at: datetime
    classification: str
    channel: str  # sms, email
    claimed_at: datetime | None = None
    snoozed_until: datetime | None = None


@dataclass(frozen=True)
class HomeCall:
    """A track's call step handed to the loan officer and not done yet."""

    message_id: int
    name: str
    task: str  # an excerpt of why to call and what to say
    due_at: datetime


@dataclass(frozen=True)
class HomeBatch:
    """A batch waiting for a manager's decision."""

    batch_id: int
    trigger: str
    segment: str
    size: int
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class PauseState:
    """The global pause switch as it stands."""

    paused: bool
    changed_by: str | None
    changed_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class HomeData:
    """Everything one person's App Home shows; lists are capped, totals are not."""

    slack_user_id: str
    is_manager: bool
    officer_id: int | None = None
    officer_name: str | None = None
    officer_email: str | None = None  # to find their row in the funnel by loan officer
    unclaimed: tuple[HomeReply, ...] = ()
    unclaimed_total: int = 0
    claimed: tuple[HomeReply, ...] = ()
    claimed_total: int = 0
    calls: tuple[HomeCall, ...] = ()
    calls_total: int = 0
    batches: tuple[HomeBatch, ...] = ()
    batches_total: int = 0
    pause: PauseState | None = None  # managers only
    # Officers not linked to a Slack user yet: the caller may find this user among them by email.
    unlinked_officer_emails: tuple[str, ...] = ()

    @property
    def is_officer(self) -> bool:
        """Whether the person is a loan officer in Winback."""
        return self.officer_id is not None


def home_for(
    session: Session,
    *,
    slack_user_id: str,
    email: str | None,
    now: datetime,
    manager: bool = False,
    default_zone: str = "America/New_York",
) -> HomeData:
    """The App Home of a Slack user: as loan officer (found by Slack id, else by `email`, then
    remembered), as manager, or neither (nothing but who to ask)."""
    officer = _officer(session, slack_user_id=slack_user_id, email=email)
    parts: dict[str, object] = {"slack_user_id": slack_user_id, "is_manager": manager}
    if officer is not None:
        parts |= _officer_parts(session, officer, slack_user_id, now, default_zone)
    else:
        parts["unlinked_officer_emails"] = _unlinked_emails(session)
    if manager:
        batches, total = _pending_batches(session)
        parts |= {"batches": batches, "batches_total": total, "pause": _pause_state(session)}
    return HomeData(**parts)  # type: ignore[arg-type]


def _officer(session: Session, *, slack_user_id: str, email: str | None) -> LoanOfficer | None:
    linked = session.scalar(
        select(LoanOfficer).where(LoanOfficer.slack_user_id == slack_user_id).limit(1)
    )
    if linked is not None or not email:
        return linked
    by_email = session.scalar(
        select(LoanOfficer).where(func.lower(LoanOfficer.email) == email.strip().lower())
    )
    if by_email is None or by_email.slack_user_id not in (None, ""):
        return None  # an officer linked to another Slack user stays theirs
    by_email.slack_user_id = slack_user_id  # remembered: the next Home needs no lookup
    session.flush()
    return by_email


def _unlinked_emails(session: Session) -> tuple[str, ...]:
    rows = session.scalars(
        select(LoanOfficer.email)
        .where((LoanOfficer.slack_user_id.is_(None)) | (LoanOfficer.slack_user_id == ""))
        .order_by(LoanOfficer.id)
    ).all()
    return tuple(rows)


def _officer_parts(
    session: Session, officer: LoanOfficer, slack_user_id: str, now: datetime, default_zone: str
) -> dict[str, object]:
    mine = _owner_of_contact() == officer.id
    waiting = (
        select(Reply, Contact)
        .join(Contact, Contact.id == Reply.contact_id)
        .where(mine, Reply.claimed_by.is_(None), Reply.outcome.is_(None))
        .order_by(Reply.received_at, Reply.id)
    )
    claimed = (
        select(Reply, Contact)
        .outerjoin(Contact, Contact.id == Reply.contact_id)
        .where(Reply.claimed_by == slack_user_id, Reply.outcome.is_(None))
        .order_by(Reply.claimed_at, Reply.id)
    )
    day_ends = _end_of_day(now, officer.timezone, default_zone)
    calls = (
        select(Message, Contact)
        .join(Contact, Contact.id == Message.contact_id)
        .where(mine, Message.channel == "call_task", Message.status == TASK_OPEN)
        .where(Message.due_at < day_ends)
        .order_by(Message.due_at, Message.id)
    )
    return {
        "officer_id": officer.id,
        "officer_name": officer.name,
        "officer_email": officer.email,
        "unclaimed": tuple(_reply_row(r, c) for r, c in _first(session, waiting)),
        "unclaimed_total": _count(session, waiting),
        "claimed": tuple(_reply_row(r, c) for r, c in _first(session, claimed)),
        "claimed_total": _count(session, claimed),
        "calls": tuple(_call_row(m, c) for m, c in _first(session, calls)),
        "calls_total": _count(session, calls),
    }


def _owner_of_contact() -> ColumnElement[int | None]:
    """The contact's loan officer, as the cards route it: the latest loan's, else the contact's."""
    latest_loan_officer = (
        select(Loan.lo_id)
        .where(Loan.contact_id == Contact.id, Loan.lo_id.is_not(None))
        .order_by(Loan.id.desc())
        .limit(1)
        .correlate(Contact)
        .scalar_subquery()
    )
    return func.coalesce(latest_loan_officer, Contact.lo_id)


def _first(session: Session, query, limit: int = LIST_LIMIT) -> list:  # type: ignore[no-untyped-def]
    return list(session.execute(query.limit(limit)).all())


def _count(session: Session, query) -> int:  # type: ignore[no-untyped-def]
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _name(contact: Contact | None) -> str:
    if contact is None:
        return "Someone not in the book"
    return f"{contact.first_name} {contact.last_name}".strip() or "(no name on file)"


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1].rstrip() + "…"


def _reply_row(reply: Reply, contact: Contact | None) -> HomeReply:
    return HomeReply(
        reply_id=reply.id, name=_name(contact), excerpt=_excerpt(reply.body),
        received_at=reply.received_at, classification=reply.classification,
        channel=reply.channel, claimed_at=reply.claimed_at, snoozed_until=reply.snoozed_until,
    )  # fmt: skip


def _call_row(message: Message, contact: Contact) -> HomeCall:
    return HomeCall(
        message_id=message.id, name=_name(contact), task=_excerpt(message.body or ""),
        due_at=message.due_at,
    )  # fmt: skip


def _end_of_day(now: datetime, zone_name: str | None, default_zone: str) -> datetime:
    """Midnight ending the officer's today, in their time zone (calls due later wait)."""
    zone = ZoneInfo("UTC")
    for name in (zone_name, default_zone):
        if name:
            try:
                zone = ZoneInfo(name)
                break
            except (ZoneInfoNotFoundError, ValueError):
                continue
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), zone)


def _pending_batches(session: Session) -> tuple[tuple[HomeBatch, ...], int]:
    pending = select(Batch).where(Batch.status == PENDING_APPROVAL)
    rows = session.scalars(pending.order_by(Batch.created_at, Batch.id).limit(BATCH_LIMIT)).all()
    total = int(session.scalar(select(func.count()).select_from(pending.subquery())) or 0)
    batches = tuple(
        HomeBatch(
            batch_id=b.id,
            trigger=b.trigger,
            segment=b.segment,
            size=b.size,
            created_at=b.created_at,
            expires_at=b.expires_at,
        )
        for b in rows
    )
    return batches, total


def _pause_state(session: Session) -> PauseState:
    switch = session.get(Switch, PAUSE)
    if switch is None:
        return PauseState(paused=False, changed_by=None, changed_at=None, reason=None)
    return PauseState(
        paused=bool(switch.on), changed_by=switch.changed_by, changed_at=switch.changed_at,
        reason=switch.reason,
    )  # fmt: skip
