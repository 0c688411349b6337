"""What a warm-reply card shows, read from the database each time (never from a Slack payload).

Everything a loan officer needs to make the call: who (name, segment, the trigger that woke
them), their words and a classification, the refinance figures their message quoted and the
savings-page link, the last touches they were sent, and where the reply stands (claimed by whom
and when, outcome, snoozed until).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches.models import Batch, BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.inbound.models import Reply
from core.outreach.context import Links, math_strings, token_secret
from core.outreach.models import COUNTED_STATUSES, Enrollment, Message
from core.settings import Settings

LAST_TOUCHES = 3
_EXCERPT = 90


@dataclass(frozen=True)
class Touch:
    """One message the person was sent, as the card lists it."""

    sent_at: datetime
    channel: str
    excerpt: str


@dataclass(frozen=True)
class ReplyCardView:
    """A warm reply as its card shows it (phones and emails only ever appear here)."""

    reply_id: int
    channel: str  # sms, email
    sender: str  # the address to call or write back
    words: str
    classification: str
    received_at: datetime
    name: str  # "" when the sender is not in the book
    in_book: bool
    lo_id: int | None
    lo_name: str | None
    lo_slack_user: str | None
    segment: str | None
    trigger: str | None
    note_rate: str | None = None
    figures: dict[str, str] | None = None  # math_strings of the rate-drop snapshot
    savings_link: str | None = None
    touches: tuple[Touch, ...] = ()
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    outcome: str | None = None
    snoozed_until: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """unclaimed, claimed or closed (an outcome was recorded)."""
        if self.outcome:
            return "closed"
        return "claimed" if self.claimed_by else "unclaimed"


def reply_card_view(
    session: Session, *, reply_id: int, settings: Settings, now: datetime
) -> ReplyCardView | None:
    """The card of one reply, None when there is no such reply."""
    reply = session.get(Reply, reply_id)
    if reply is None:
        return None
    contact = session.get(Contact, reply.contact_id) if reply.contact_id else None
    member, batch = _what_woke_them(session, reply)
    loan = session.get(Loan, member.loan_id) if member is not None else None
    officer = _officer(session, contact, loan)
    figures = math_strings(member.snapshot or {}, loan) if member is not None else None
    savings = None
    if member is not None and settings.PUBLIC_BASE_URL:
        savings = Links(settings.PUBLIC_BASE_URL, token_secret(settings)).savings(member.id, now)
    name = f"{contact.first_name} {contact.last_name}".strip() if contact else ""
    return ReplyCardView(
        reply_id=reply.id, channel=reply.channel, sender=reply.sender, words=reply.body,
        classification=reply.classification, received_at=reply.received_at,
        name=name or ("(no name on file)" if contact else ""), in_book=contact is not None,
        lo_id=officer.id if officer else None, lo_name=officer.name if officer else None,
        lo_slack_user=officer.slack_user_id if officer else None,
        segment=batch.segment if batch is not None else None,
        trigger=member.trigger if member is not None else None,
        note_rate=_note_rate(loan), figures=figures, savings_link=savings,
        touches=_last_touches(session, reply.contact_id), claimed_by=reply.claimed_by,
        claimed_at=reply.claimed_at, outcome=reply.outcome, snoozed_until=reply.snoozed_until,
    )  # fmt: skip


@dataclass(frozen=True)
class TaskCardView:
    """A track's "call this borrower" step as its card shows it."""

    message_id: int
    name: str
    phone: str | None
    email: str | None
    lo_name: str | None
    segment: str | None
    trigger: str | None
    task: str  # the rendered task text: why to call and what to say
    due_at: datetime
    note_rate: str | None
    figures: dict[str, str] | None
    touches: tuple[Touch, ...]


def task_card_view(session: Session, *, message_id: int) -> TaskCardView | None:
    """The card of one call-task message, None when there is no such message."""
    message = session.get(Message, message_id)
    if message is None:
        return None
    contact = session.get(Contact, message.contact_id)
    member, batch = _woken_by(session, message_id, message.contact_id)
    loan = session.get(Loan, member.loan_id) if member is not None else None
    officer = _officer(session, contact, loan)
    name = f"{contact.first_name} {contact.last_name}".strip() if contact else ""
    return TaskCardView(
        message_id=message.id, name=name or "(no name on file)",
        phone=contact.phone if contact else None, email=contact.email if contact else None,
        lo_name=officer.name if officer else None,
        segment=batch.segment if batch is not None else None,
        trigger=member.trigger if member is not None else None, task=message.body or "",
        due_at=message.due_at, note_rate=_note_rate(loan),
        figures=math_strings(member.snapshot or {}, loan) if member is not None else None,
        touches=_last_touches(session, message.contact_id),
    )  # fmt: skip


def _what_woke_them(session: Session, reply: Reply) -> tuple[BatchMember | None, Batch | None]:
    """The batch member behind the touch answered, else behind the person's latest enrollment."""
    return _woken_by(session, reply.message_id, reply.contact_id)


def _woken_by(
    session: Session, message_id: int | None, contact_id: int | None
) -> tuple[BatchMember | None, Batch | None]:
    enrollment_id = None
    if message_id is not None:
        message = session.get(Message, message_id)
        enrollment_id = message.enrollment_id if message is not None else None
    if enrollment_id is None and contact_id is not None:
        enrollment_id = session.scalar(
            select(Enrollment.id)
            .where(Enrollment.contact_id == contact_id)
            .order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc())
            .limit(1)
        )
    if enrollment_id is None:
        return None, None
    enrollment = session.get(Enrollment, enrollment_id)
    member = session.get(BatchMember, enrollment.batch_member_id) if enrollment else None
    batch = session.get(Batch, member.batch_id) if member is not None else None
    return member, batch


def _officer(session: Session, contact: Contact | None, loan: Loan | None) -> LoanOfficer | None:
    lo_id = (loan.lo_id if loan is not None else None) or (contact.lo_id if contact else None)
    return session.get(LoanOfficer, lo_id) if lo_id else None


def _note_rate(loan: Loan | None) -> str | None:
    if loan is None or loan.note_rate is None:
        return None
    return f"{loan.note_rate.normalize():f} %"


def _last_touches(session: Session, contact_id: int | None) -> tuple[Touch, ...]:
    if contact_id is None:
        return ()
    rows = session.execute(
        select(Message.sent_at, Message.channel, Message.subject, Message.body)
        .where(Message.contact_id == contact_id, Message.status.in_(COUNTED_STATUSES))
        .where(Message.sent_at.is_not(None))
        .order_by(Message.sent_at.desc())
        .limit(LAST_TOUCHES)
    ).all()
    return tuple(
        Touch(sent_at=sent_at, channel=channel, excerpt=_excerpt(subject or body or ""))
        for sent_at, channel, subject, body in rows
    )


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1].rstrip() + "…"
