"""What deciding a claimed chunk needs, loaded in bulk, and the person re-read under their lock
right before each decision (so an opt-out recorded meanwhile is seen)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from core.batches.models import BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.bulk import any_of
from core.compliance.caps import WEEK, RecentSends
from core.consent.models import Suppression
from core.outreach import models as outbox
from core.outreach.models import COUNTED_STATUSES, Enrollment, Message
from core.outreach.switches import paused_flag


@dataclass
class Chunk:
    """The claimed messages of one chunk and what deciding them needs, loaded in bulk."""

    messages: list[Message]
    enrollments: dict[int, Enrollment]
    members: dict[int, BatchMember]
    contacts: dict[int, Contact]
    officers: dict[int, LoanOfficer]
    loans: dict[int, Loan]
    recent: dict[int, RecentSends]


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def load_chunk(session: Session, ids: list[int], now: datetime) -> Chunk:
    """The claimed messages `ids` with their enrollments, people, officers, loans and sends."""
    messages = list(
        session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
    )
    enrollments = _by_id(session, Enrollment, {m.enrollment_id for m in messages})
    members = _by_id(session, BatchMember, {e.batch_member_id for e in enrollments.values()})
    contacts = _by_id(session, Contact, {m.contact_id for m in messages})
    return Chunk(
        messages=messages,
        enrollments=enrollments,
        members=members,
        contacts=contacts,
        officers=_by_id(session, LoanOfficer, {c.lo_id for c in contacts.values() if c.lo_id}),
        loans=_by_id(session, Loan, {m.loan_id for m in members.values()}),
        recent=recent_sends_for(session=session, contact_ids=sorted(contacts), now=now),
    )


def recent_sends_for(
    *, session: Session, contact_ids: Sequence[int], now: datetime
) -> dict[int, RecentSends]:
    """Messages of the last 7 days for a batch of contacts, in one query (every id present)."""
    recent = {contact_id: RecentSends() for contact_id in contact_ids}
    if not recent:
        return recent
    rows = session.execute(
        select(Message.contact_id, Message.sent_at).where(
            any_of(session, Message.contact_id, list(recent)),
            Message.sent_at > now - WEEK,
            Message.status.in_(COUNTED_STATUSES),
        )
    )
    for contact_id, sent_at in rows:
        recent[contact_id].sent_at.append(sent_at)
    for sends in recent.values():
        sends.sent_at.sort()
    return recent


@dataclass(frozen=True)
class Fresh:
    """The person as the database holds them right now, read under their row lock."""

    contact: Contact
    enrollment_status: str
    stop_reason: str | None
    suppressed: frozenset[tuple[str, str]]
    paused: bool
    recent: RecentSends | None  # read with the lock when other workers may share the queue


@lru_cache(maxsize=2)
def _fresh_statement(with_recent: bool) -> Select[Any]:
    """One statement for everything a decision needs, built once (bind parameters vary)."""
    phone_listed = exists().where(Suppression.kind == "phone", Suppression.value == Contact.phone)
    email_listed = exists().where(
        Suppression.kind == "email", Suppression.value == func.lower(Contact.email)
    )
    columns: list[Any] = [
        Contact,
        Enrollment.status,
        Enrollment.stop_reason,
        phone_listed,
        email_listed,
        paused_flag(),
    ]
    if with_recent:  # PostgreSQL: the person's counted sends, in flight included, in one go
        columns.append(
            select(func.array_agg(Message.sent_at))
            .where(
                Message.contact_id == Contact.id,
                Message.sent_at > bindparam("since"),
                Message.status.in_((*COUNTED_STATUSES, outbox.SENDING)),
            )
            .scalar_subquery()
        )
    return (
        select(*columns)
        .select_from(Contact)
        .join(Enrollment, Enrollment.contact_id == Contact.id)
        .where(Contact.id == bindparam("contact_id"), Enrollment.id == bindparam("enrollment_id"))
        .with_for_update(of=Contact)
        .execution_options(populate_existing=True)
    )


# SQLite has no row locks, and pysqlite only opens a transaction at its first write: the read
# below would run outside any transaction and an opt-out could commit between it and the
# hand-over. A no-op write first takes SQLite's one write lock (on the message's own row, which
# the outcome writes anyway), so the read, the decision and the hand-over are one transaction no
# opt-out can land inside: what FOR UPDATE on the person does on PostgreSQL.
_SQLITE_WRITE_LOCK = (
    update(Message)
    .where(Message.id == bindparam("message_id"))
    .values(updated_at=Message.updated_at)
)


def fresh(session: Session, message: Message, now: datetime, with_recent: bool) -> Fresh:
    """The message's person and enrollment as stored now, the person's row locked (on SQLite,
    the database's write lock)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            _SQLITE_WRITE_LOCK.execution_options(synchronize_session=False),
            {"message_id": message.id},
        )
    parameters = {"contact_id": message.contact_id, "enrollment_id": message.enrollment_id}
    if with_recent:
        parameters["since"] = now - WEEK
    row = session.execute(_fresh_statement(with_recent), parameters).one()
    contact, status, stop_reason, phone_on_list, email_on_list, paused = row[:6]
    suppressed = set()
    if phone_on_list and contact.phone:
        suppressed.add(("phone", contact.phone))
    if email_on_list and contact.email:
        suppressed.add(("email", contact.email.strip().lower()))
    recent = RecentSends(list(row[6] or [])) if with_recent else None
    return Fresh(contact, status, stop_reason, frozenset(suppressed), bool(paused), recent)
