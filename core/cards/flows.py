"""A button pressed on a warm-reply card: the action in one transaction, then the card re-rendered
from the database (a failed re-render stays marked and the posting job retries it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from core.cards.actions import (
    NOT_INTERESTED,
    ActionResult,
    claim_reply,
    close_reply,
    mark_funded,
    snooze_reply,
    stop_outreach,
)
from core.cards.models import POSTED, Card
from core.cards.posting import PostingOptions, SessionFactory, update_card

CLAIM, SNOOZE, CLOSE, STOP = "claim", "snooze", "not_interested", "stop_outreach"
FUNDED = "mark_funded"


def act_on_reply(
    *,
    session_factory: SessionFactory,
    posting: PostingOptions | None,
    action: str,
    reply_id: int,
    by: str,
    now: datetime,
    snooze_minutes: int = 60,
    manager: bool = False,
) -> ActionResult:
    """Do `action` (claim, snooze, not_interested, stop_outreach, mark_funded) for `by` (a
    manager may mark another's claimed reply funded), then refresh the cards."""
    with session_factory() as session, session.begin():
        if action == CLAIM:
            result = claim_reply(session, reply_id=reply_id, by=by, now=now)
        elif action == SNOOZE:
            result = snooze_reply(
                session, reply_id=reply_id, by=by, now=now, minutes=snooze_minutes
            )
        elif action == CLOSE:
            result = close_reply(session, reply_id=reply_id, by=by, now=now, outcome=NOT_INTERESTED)
        elif action == STOP:
            result = stop_outreach(session, reply_id=reply_id, by=by, now=now)
        elif action == FUNDED:
            result = mark_funded(session, reply_id=reply_id, by=by, now=now, manager=manager)
        else:
            raise ValueError(f"unknown reply action {action!r}")
    if result.changed and posting is not None:
        refresh_reply_cards(session_factory=session_factory, posting=posting, reply_id=reply_id,
                            now=now)  # fmt: skip
    return result


def refresh_reply_cards(
    *, session_factory: SessionFactory, posting: PostingOptions, reply_id: int, now: datetime
) -> int:
    """chat.update every posted card of the reply that is marked stale; how many went through."""
    with session_factory() as session:
        stale = session.execute(
            select(Card.id, Card.channel, Card.ts).where(
                Card.reply_id == reply_id, Card.status == POSTED, Card.needs_update.is_(True)
            )
        ).all()
    return sum(
        update_card(
            session_factory=session_factory,
            options=posting,
            card_id=card_id,
            now=now,
            channel=channel or "",
            ts=ts or "",
        )
        for card_id, channel, ts in stale
    )
