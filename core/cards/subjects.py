"""What each kind of card shows, read fresh from the database when it is posted or updated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.cards.models import BATCH, CALL_TASK, ESCALATION, REMINDER, REPLY, Card
from core.cards.views import ReplyCardView, TaskCardView, reply_card_view, task_card_view
from core.settings import Settings

Render = Callable[[Session, Card, datetime], "CardSubject | None"]


@dataclass(frozen=True)
class CardSubject:
    """A card's content: one of the views, plus why it is no longer worth posting (if so)."""

    kind: str
    reply: ReplyCardView | None = None
    task: TaskCardView | None = None
    batch: Any = None  # core.cards.batch_view.BatchCardView
    obsolete: str | None = None  # e.g. the escalated reply was claimed meanwhile
    claimed_by: str | None = None
    snoozed_repost: bool = False  # a snoozed reply coming back


def subject_renderer(settings: Settings) -> Render:
    """The renderer the posting job uses: settings give the savings links their base URL."""

    def render(session: Session, card: Card, now: datetime) -> CardSubject | None:
        return subject_of(session, card, now, settings=settings)

    return render


def subject_of(
    session: Session, card: Card, now: datetime, settings: Settings | None = None
) -> CardSubject | None:
    """The content of `card` now; None when what it shows is gone."""
    if card.kind == CALL_TASK and card.message_id is not None:
        task = task_card_view(session, message_id=card.message_id)
        return CardSubject(kind=CALL_TASK, task=task) if task else None
    if card.kind == BATCH and card.batch_id is not None:
        from core.cards.batch_view import batch_card_view

        batch = batch_card_view(session, batch_id=card.batch_id, now=now, settings=settings)
        return CardSubject(kind=BATCH, batch=batch) if batch else None
    if card.reply_id is None:
        return None
    view = reply_card_view(
        session, reply_id=card.reply_id, settings=settings or Settings(), now=now
    )
    if view is None:
        return None
    return CardSubject(
        kind=card.kind, reply=view, claimed_by=view.claimed_by,
        obsolete=_obsolete(card, view, now), snoozed_repost=card.key.startswith("snooze:"),
    )  # fmt: skip


def _obsolete(card: Card, view: ReplyCardView, now: datetime) -> str | None:
    if card.kind == ESCALATION and view.claimed_by:
        return "claimed before the escalation went out"
    if card.kind == REMINDER and view.outcome:
        return "an outcome was recorded before the reminder"
    if card.kind == REPLY and card.key.startswith("snooze:"):
        if view.state != "unclaimed" and view.outcome:
            return "closed while snoozed"
        if view.snoozed_until and view.snoozed_until > now:
            return "snoozed again"
    return None
