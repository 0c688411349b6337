"""Cards in the database: made once (a unique key), leased to one poster, marked posted once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.book.models import Contact, Loan
from core.cards.models import (
    CALL_TASK,
    CANCELLED,
    PENDING,
    POSTED,
    REPLY,
    Card,
)
from core.inbound.models import Reply
from core.outreach.models import TASK_OPEN, Message

LEASE = timedelta(seconds=60)  # longer than a Slack call with its timeout and one retry
# A warm reply must not wait minutes for a flaky Slack: with half of the posts failing, a 30 s
# cap left ~1 % of cards still pending after two minutes (bench replies); 10 s leaves ~0.01 %.
MAX_BACKOFF = timedelta(seconds=10)


def reply_key(reply_id: int) -> str:
    """The one card a reply has."""
    return f"{REPLY}:{reply_id}"


def make_card(
    session: Session,
    *,
    key: str,
    kind: str,
    now: datetime,
    due_at: datetime | None = None,
    **subject: int | None,
) -> Card:
    """The card with this key, created pending if it does not exist yet (never twice)."""
    existing = session.scalar(select(Card).where(Card.key == key))
    if existing is not None:
        return existing
    card = Card(
        key=key, kind=kind, status=PENDING, due_at=due_at or now, attempts=0,
        maybe_posted=False, needs_update=False, created_at=now, **subject,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(card)
    except IntegrityError:  # another process made it a moment ago
        return session.scalars(select(Card).where(Card.key == key)).one()
    return card


def ensure_reply_card(session: Session, *, reply_id: int, now: datetime) -> Card:
    """The reply's card; a later reply of a person whose card is still open threads under it."""
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise LookupError(f"there is no reply {reply_id}")
    first = _open_card_of(session, reply) if reply.contact_id is not None else None
    return make_card(
        session, key=reply_key(reply_id), kind=REPLY, now=now, reply_id=reply_id,
        lo_id=_lo_of(session, reply.contact_id), thread_of=first.id if first else None,
    )  # fmt: skip


def ensure_task_card(session: Session, *, message: Message, now: datetime) -> Card:
    """A track's call-task step as a "call this borrower" card for the loan officer."""
    return make_card(
        session, key=f"{CALL_TASK}:{message.id}", kind=CALL_TASK, now=now,
        message_id=message.id, lo_id=_lo_of(session, message.contact_id),
    )  # fmt: skip


def cards_for_unrouted(session: Session, *, now: datetime) -> int:
    """Make the card of every reply that has none (a crash between reply and card loses none)."""
    missing = session.scalars(
        select(Reply.id)
        .outerjoin(Card, and_(Card.reply_id == Reply.id, Card.kind == REPLY))
        .where(Card.id.is_(None))
        .order_by(Reply.id)
    ).all()
    for reply_id in missing:
        ensure_reply_card(session, reply_id=reply_id, now=now)
    return len(missing)


def cards_for_open_tasks(session: Session, *, now: datetime) -> int:
    """Make a "call this borrower" card for every open call task that has none."""
    missing = session.scalars(
        select(Message)
        .outerjoin(Card, and_(Card.message_id == Message.id, Card.kind == CALL_TASK))
        .where(Message.status == TASK_OPEN, Card.id.is_(None))
        .order_by(Message.id)
    ).all()
    for message in missing:
        ensure_task_card(session, message=message, now=now)
    return len(missing)


def lease_due(
    session: Session, *, now: datetime, owner: str, limit: int = 50, card_id: int | None = None
) -> list[int]:
    """Lease due pending cards to `owner` (one conditional UPDATE each: one poster per card)."""
    due = select(Card.id).where(
        Card.status == PENDING,
        Card.due_at <= now,
        or_(Card.lease_until.is_(None), Card.lease_until < now),
    )
    if card_id is not None:
        due = due.where(Card.id == card_id)
    leased = []
    for candidate in session.scalars(due.order_by(Card.due_at, Card.id).limit(limit)).all():
        won = session.execute(
            update(Card)
            .where(
                Card.id == candidate,
                Card.status == PENDING,
                or_(Card.lease_until.is_(None), Card.lease_until < now),
            )
            .values(lease_owner=owner, lease_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount == 1:  # type: ignore[attr-defined]
            leased.append(candidate)
    return leased


def mark_posted(
    session: Session, *, card_id: int, owner: str, channel: str, ts: str, now: datetime
) -> bool:
    """Record where the card landed; False when the lease was lost (someone else posted it)."""
    done = session.execute(
        update(Card)
        .where(Card.id == card_id, Card.status == PENDING, Card.lease_owner == owner)
        .values(status=POSTED, channel=channel, ts=ts, posted_at=now, lease_until=None,
                attempts=Card.attempts + 1, last_error=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    card = session.get(Card, card_id)
    if card is not None:
        session.refresh(card)
        if card.reply_id is not None and card.kind == REPLY:
            session.execute(
                update(Reply)
                .where(Reply.id == card.reply_id, Reply.routed_at.is_(None))
                .values(routed_at=now)
                .execution_options(synchronize_session=False)
            )
    return done.rowcount == 1  # type: ignore[attr-defined]


def mark_failed(
    session: Session,
    *,
    card_id: int,
    owner: str,
    error: str,
    now: datetime,
    retry_after: float | None,
    maybe_posted: bool,
) -> None:
    """Keep the card pending with a backoff (Slack's Retry-After when it gave one)."""
    card = session.get(Card, card_id)
    if card is None or card.lease_owner != owner or card.status != PENDING:
        return
    card.attempts += 1
    wait = (
        timedelta(seconds=retry_after)
        if retry_after is not None
        else min(MAX_BACKOFF, timedelta(seconds=2 ** min(card.attempts, 9)))
    )
    card.due_at = now + wait
    card.lease_until = None
    card.lease_owner = None
    card.maybe_posted = card.maybe_posted or maybe_posted
    card.last_error = error[:200]


def cancel(session: Session, *, card_id: int, owner: str, now: datetime, why: str) -> None:
    """A card no longer needed (its reply was claimed before the escalation went out)."""
    session.execute(
        update(Card)
        .where(Card.id == card_id, Card.status == PENDING, Card.lease_owner == owner)
        .values(status=CANCELLED, lease_until=None, last_error=why[:200], posted_at=None)
        .execution_options(synchronize_session=False)
    )


def card_of_reply(session: Session, reply_id: int) -> Card | None:
    """The reply's own card (not its escalations or snoozes)."""
    return session.scalar(select(Card).where(Card.key == reply_key(reply_id)))


def needs_update(session: Session, *, reply_id: int) -> list[Card]:
    """Mark every card showing this reply for re-rendering (one still being posted too: it may
    land with the state from before); the marked ones."""
    cards = session.scalars(
        select(Card).where(
            Card.reply_id == reply_id, Card.kind == REPLY, Card.status.in_((PENDING, POSTED))
        )
    ).all()
    for card in cards:
        card.needs_update = True
    return list(cards)


def stale_cards(session: Session, *, limit: int = 50) -> list[Card]:
    """Posted cards whose update did not reach Slack yet."""
    return list(
        session.scalars(
            select(Card).where(Card.needs_update.is_(True), Card.status == POSTED).limit(limit)
        ).all()
    )


def _open_card_of(session: Session, reply: Reply) -> Card | None:
    """The first reply card of this person still waiting for a claim or an outcome."""
    return session.scalar(
        select(Card)
        .join(Reply, Reply.id == Card.reply_id)
        .where(
            Card.kind == REPLY,
            Card.thread_of.is_(None),
            Reply.contact_id == reply.contact_id,
            Reply.id != reply.id,
            Reply.outcome.is_(None),
            Card.status.in_((PENDING, POSTED)),
        )
        .order_by(Card.id)
        .limit(1)
    )


def _lo_of(session: Session, contact_id: int | None) -> int | None:
    if contact_id is None:
        return None
    lo = session.scalar(
        select(Loan.lo_id)
        .where(Loan.contact_id == contact_id, Loan.lo_id.is_not(None))
        .order_by(Loan.id.desc())
        .limit(1)
    )
    if lo is not None:
        return lo
    contact = session.get(Contact, contact_id)
    return contact.lo_id if contact is not None else None
