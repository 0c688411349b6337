"""Escalation, the PagerDuty way: a warm reply nobody claimed within the SLA goes once to the
team channel; a claimed reply with no outcome a day later gets one reminder to its claimer.

The SLA counts business minutes in the loan officer's time zone, so a reply at 8 pm is not
"late" at 8:10 pm. Each escalation and reminder is a card with its own unique key: the
database, not a flag in memory, makes it happen once however many workers scan.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.book.models import LoanOfficer
from core.cards.models import ESCALATION, POSTED, REMINDER, REPLY, Card
from core.cards.service import make_card
from core.config import RepliesConfig
from core.inbound.models import Reply


def business_minutes(
    start: datetime, end: datetime, *, zone: ZoneInfo, config: RepliesConfig
) -> float:
    """Minutes between `start` and `end` that fall inside business hours in `zone`."""
    if end <= start:
        return 0.0
    total = 0.0
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    day = local_start.date()
    while day <= local_end.date():
        if day.weekday() in config.business_days:
            opens = datetime.combine(day, time(config.business_hours_start), zone)
            closes = _closing(day, config.business_hours_end, zone)
            low, high = max(opens, local_start), min(closes, local_end)
            if high > low:
                total += (high - low).total_seconds() / 60
        day += timedelta(days=1)
    return total


def _closing(day: date, hour: int, zone: ZoneInfo) -> datetime:
    if hour >= 24:
        return datetime.combine(day + timedelta(days=1), time(0), zone)
    return datetime.combine(day, time(hour), zone)


def officer_zone(officer: LoanOfficer | None, config: RepliesConfig) -> ZoneInfo:
    """The loan officer's time zone, else the configured default."""
    for name in (officer.timezone if officer else None, config.default_timezone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("America/New_York")


def escalate_due(session: Session, *, now: datetime, config: RepliesConfig) -> dict[str, int]:
    """Make the escalation and reminder cards that are due (each once, ever)."""
    escalated = reminded = 0
    unclaimed = session.execute(
        select(Card, Reply)
        .join(Reply, Reply.id == Card.reply_id)
        .where(Card.kind == REPLY, Card.key.like("reply:%"), Card.status == POSTED)
        .where(Reply.claimed_by.is_(None), Reply.outcome.is_(None))
    ).all()
    for card, reply in unclaimed:
        if reply.snoozed_until is not None and reply.snoozed_until > now:
            continue  # the loan officer asked for time; the repost restarts the clock
        since = max(card.posted_at or card.created_at, reply.snoozed_until or card.created_at)
        zone = officer_zone(session.get(LoanOfficer, card.lo_id) if card.lo_id else None, config)
        if business_minutes(since, now, zone=zone, config=config) >= config.claim_sla_minutes:
            escalated += _once(session, f"{ESCALATION}:{reply.id}", ESCALATION, reply, card, now)
    stale = now - timedelta(hours=config.outcome_reminder_hours)
    claimed = session.execute(
        select(Card, Reply)
        .join(Reply, Reply.id == Card.reply_id)
        .where(Card.kind == REPLY, Card.key.like("reply:%"))
        .where(Reply.claimed_by.is_not(None), Reply.outcome.is_(None), Reply.claimed_at <= stale)
    ).all()
    for card, reply in claimed:
        reminded += _once(session, f"{REMINDER}:{reply.id}", REMINDER, reply, card, now)
    return {"escalated": escalated, "reminded": reminded}


def _once(session: Session, key: str, kind: str, reply: Reply, card: Card, now: datetime) -> int:
    if session.scalar(select(Card.id).where(Card.key == key)) is not None:
        return 0
    make_card(session, key=key, kind=kind, now=now, reply_id=reply.id, lo_id=card.lo_id)
    return 1
