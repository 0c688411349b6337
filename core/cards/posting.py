"""The posting job: every pending card reaches its channel exactly once, retried until it does.

A card is leased in one short transaction, posted with no transaction open, and its outcome
recorded in another. Chat APIs have no idempotency key, so a card that may have landed (a
timeout, a 5xx) is looked for by its key before it is posted again: never lost, never twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from core.book.models import LoanOfficer
from core.cards.models import BATCH, CALL_TASK, DIGEST, ESCALATION, REMINDER, REPLY, Card
from core.cards.service import cancel, lease_due, mark_failed, mark_posted, stale_cards
from core.cards.subjects import CardSubject, Render, subject_of

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]


@dataclass(frozen=True)
class Destination:
    """Where a card should go, most specific first; the poster picks the first that works."""

    lo_channel: str | None = None
    lo_user: str | None = None
    lo_email: str | None = None
    team: bool = False  # the team channel (escalations, and replies nobody owns)
    approvals: bool = False  # the approvals channel (batch cards)
    user: str | None = None  # a DM to this Slack user (reminders to the claimer)


@dataclass(frozen=True)
class CardToPost:
    """One card, ready for a poster: what it shows, where it goes, and whether to look first."""

    card_id: int
    key: str
    kind: str
    subject: CardSubject
    destination: Destination
    thread_ts: str | None  # post in this card's thread (a person's later replies)
    thread_channel: str | None
    look_first: bool  # it may already be there: find it by its key before posting


@dataclass(frozen=True)
class Posted:
    """Where a card landed."""

    channel: str
    ts: str


class PostFailed(Exception):
    """The card did not (certainly) land; `maybe_posted` when the chat may have it anyway."""

    def __init__(self, reason: str, *, retry_after: float | None = None, maybe_posted: bool):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.maybe_posted = maybe_posted


class CardPoster(Protocol):
    """Puts cards in front of people (Slack, or the log when Slack is not set up)."""

    def post(self, card: CardToPost) -> Posted:
        """Post the card (or find it, when `look_first`); raises PostFailed."""
        ...

    def update(self, card: CardToPost, *, channel: str, ts: str) -> None:
        """Re-render a posted card in place; raises PostFailed."""
        ...


@dataclass
class PostingOptions:
    """What the posting job needs beyond the database."""

    poster: CardPoster
    owner: str  # this process, as recorded on its leases
    render: Render = subject_of


def post_due_cards(
    *, session_factory: SessionFactory, options: PostingOptions, now: datetime, limit: int = 50
) -> dict[str, Any]:
    """Post every due card and re-render stale ones; a summary of what happened."""
    with session_factory() as session, session.begin():
        leased = lease_due(session, now=now, owner=options.owner, limit=limit)
    summary = {"posted": 0, "failed": 0, "cancelled": 0, "updated": 0}
    for card_id in leased:
        summary[post_leased(session_factory=session_factory, options=options, card_id=card_id,
                            now=now)] += 1  # fmt: skip
    summary["updated"] = update_stale_cards(session_factory=session_factory, options=options,
                                            now=now)  # fmt: skip
    return {key: value for key, value in summary.items() if value}


def post_now(
    *, session_factory: SessionFactory, options: PostingOptions, card_id: int, now: datetime
) -> str:
    """Post one card right away if it is due and nobody else holds it (the reply router)."""
    with session_factory() as session, session.begin():
        leased = lease_due(session, now=now, owner=options.owner, card_id=card_id)
    if not leased:
        return "not_due"
    return post_leased(session_factory=session_factory, options=options, card_id=card_id, now=now)


def post_leased(
    *, session_factory: SessionFactory, options: PostingOptions, card_id: int, now: datetime
) -> str:
    """Post a card this process holds the lease of: posted, failed or cancelled."""
    with session_factory() as session:
        card = session.get(Card, card_id)
        ready = _ready(session, card, options, now) if card is not None else None
    if isinstance(ready, str):
        with session_factory() as session, session.begin():
            cancel(session, card_id=card_id, owner=options.owner, now=now, why=ready)
        return "cancelled"
    assert ready is not None
    try:
        landed = options.poster.post(ready)
    except PostFailed as failure:
        level = logging.INFO if failure.reason == "paced" else logging.WARNING
        logger.log(level, "card %s not posted (%s): will retry", ready.key, failure.reason)
        with session_factory() as session, session.begin():
            mark_failed(
                session, card_id=card_id, owner=options.owner, error=failure.reason, now=now,
                retry_after=failure.retry_after, maybe_posted=failure.maybe_posted,
            )  # fmt: skip
        return "failed"
    with session_factory() as session, session.begin():
        mark_posted(session, card_id=card_id, owner=options.owner, channel=landed.channel,
                    ts=landed.ts, now=now)  # fmt: skip
    return "posted"


def update_stale_cards(
    *, session_factory: SessionFactory, options: PostingOptions, now: datetime
) -> int:
    """Re-render posted cards whose state changed (a claim whose chat.update failed)."""
    updated = 0
    with session_factory() as session:
        stale = [(card.id, card.channel, card.ts) for card in stale_cards(session)]
    for card_id, channel, ts in stale:
        if update_card(session_factory=session_factory, options=options, card_id=card_id,
                       now=now, channel=channel or "", ts=ts or ""):  # fmt: skip
            updated += 1
    return updated


def update_card(
    *,
    session_factory: SessionFactory,
    options: PostingOptions,
    card_id: int,
    now: datetime,
    channel: str,
    ts: str,
) -> bool:
    """Re-render one posted card from the database; False when the chat refused (kept stale)."""
    with session_factory() as session:
        card = session.get(Card, card_id)
        ready = _ready(session, card, options, now, updating=True) if card else None
    if not isinstance(ready, CardToPost):
        return False
    try:
        options.poster.update(ready, channel=channel, ts=ts)
    except PostFailed as failure:
        logger.warning("card %s not updated (%s): will retry", ready.key, failure.reason)
        return False
    with session_factory() as session, session.begin():
        stored = session.get(Card, card_id)
        if stored is not None:
            stored.needs_update = False
    return True


def _ready(
    session: Session, card: Card, options: PostingOptions, now: datetime, updating: bool = False
) -> CardToPost | str:
    """The card ready to post, or why it is no longer needed."""
    subject = options.render(session, card, now)
    if subject is None:
        return f"the {card.kind} it shows no longer needs a card"
    if not updating and subject.obsolete:
        return subject.obsolete
    thread_ts = thread_channel = None
    if card.thread_of is not None:
        first = session.get(Card, card.thread_of)
        if first is not None and first.ts:
            thread_ts, thread_channel = first.ts, first.channel
    return CardToPost(
        card_id=card.id, key=card.key, kind=card.kind, subject=subject,
        destination=_destination(session, card, subject), thread_ts=thread_ts,
        thread_channel=thread_channel, look_first=card.maybe_posted,
    )  # fmt: skip


def _destination(session: Session, card: Card, subject: CardSubject) -> Destination:
    if card.kind in (BATCH, DIGEST):
        return Destination(approvals=True)
    if card.kind == ESCALATION:
        return Destination(team=True)
    if card.kind == REMINDER:
        return Destination(user=subject.claimed_by, team=True)
    officer = session.get(LoanOfficer, card.lo_id) if card.lo_id else None
    if officer is None or card.kind not in (REPLY, CALL_TASK):
        return Destination(team=True)
    return Destination(
        lo_channel=officer.slack_channel_id, lo_user=officer.slack_user_id,
        lo_email=officer.email, team=True,
    )  # fmt: skip
