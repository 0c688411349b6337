"""When the weekly digest is due, and its card, made once per ISO week however many workers check.

The card's key, ``digest:<ISO year>-W<week>`` (the ISO week of its due time), is the guard: the
job that finds it due inserts the row with ON CONFLICT DO NOTHING, so two workers checking at once,
or a restarted one checking again, leave one card, and the posting pipeline (leases, retries, the
look-up after a timeout) posts it once. Its content is read when it is posted (core.digest).

It is due on ``[digest] weekday`` at ``hour`` in ``[replies] default_timezone``. A digest more
than ``CATCH_UP`` late is not made: a worker back after a long outage, or a new install started
mid-week, does not post last Monday's figures on a Thursday; next week's comes on time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from core.bulk import insert_for
from core.cards.escalation import officer_zone
from core.cards.models import DIGEST, PENDING, Card
from core.config import Config

CATCH_UP = timedelta(days=1)
WEEK = timedelta(days=7)


def digest_zone(config: Config) -> ZoneInfo:
    """The time zone the digest's day and hour are read in."""
    return officer_zone(None, config.replies)


def week_label(moment: datetime, zone: ZoneInfo) -> str:
    """'2026-W40': the ISO year and week of `moment` in `zone`."""
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def digest_key(week: str) -> str:
    """The one digest card of an ISO week."""
    return f"{DIGEST}:{week}"


def due_of_week(week: str, config: Config) -> datetime:
    """When the digest of ISO week `week` ('2026-W40') is due, in UTC."""
    year, _, number = week.partition("-W")
    day = date.fromisocalendar(int(year), int(number), config.digest.weekday_number + 1)
    return datetime.combine(day, time(config.digest.hour), digest_zone(config)).astimezone(UTC)


def latest_due(now: datetime, config: Config) -> datetime:
    """The latest digest due time at or before `now`, in UTC."""
    zone = digest_zone(config)
    local = now.astimezone(zone)
    back = (local.weekday() - config.digest.weekday_number) % 7
    day = local.date() - timedelta(days=back)
    due = datetime.combine(day, time(config.digest.hour), zone)
    if due > local:  # today is the day, before the hour: last week's
        due = datetime.combine(day - WEEK, time(config.digest.hour), zone)
    return due.astimezone(UTC)


def make_weekly_digest(session: Session, *, now: datetime, config: Config) -> str | None:
    """Make this week's digest card if it is due (once, ever); its key when this call made it."""
    if not config.digest.enabled:
        return None
    due = latest_due(now, config)
    if now - due > CATCH_UP:
        return None
    key = digest_key(week_label(due, digest_zone(config)))
    values = {
        "key": key, "kind": DIGEST, "status": PENDING, "due_at": now, "attempts": 0,
        "maybe_posted": False, "needs_update": False, "created_at": now,
    }  # fmt: skip
    return key if _insert_once(session, values) else None


def _insert_once(session: Session, values: dict[str, Any]) -> bool:
    """Insert the card unless its key exists (another worker's insert waits, then does nothing)."""
    statement = (
        insert_for(session)(Card.__table__)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    # RETURNING says whether this insert made the row (rowcount is not reliable on psycopg).
    return session.execute(statement.returning(Card.__table__.c.id)).first() is not None


def week_before(until: datetime, config: Config) -> datetime:
    """Seven days of wall clock before `until` in the digest's zone (DST keeps the hour)."""
    zone = digest_zone(config)
    local = until.astimezone(zone)
    return datetime.combine(local.date() - WEEK, local.time(), zone).astimezone(UTC)
