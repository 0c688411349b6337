"""The weekly digest's content: once a week, the approvals channel reads what outreach did.

When it is due and its card (made once per ISO week) are core.cards.digest's; here is what it
shows, read when it is posted (like every card: from the database, never from a copy): the 7 days
before its due time, the holdout lift, and the batches waiting for approval as it is posted.

A week with nothing in it is still posted, as "a quiet week": silence in the channel could as
well mean a stopped worker, and batches may be waiting for approval whatever the week did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches.models import PENDING_APPROVAL, Batch
from core.cards.digest import digest_zone, due_of_week, week_before, week_label
from core.cards.models import DIGEST, Card
from core.cards.subjects import CardSubject, Render
from core.config import Config
from core.stats import Lift, funnel, holdout_lift

TOP_SEGMENTS = 5
PENDING_SHOWN = 10


@dataclass(frozen=True)
class SegmentReplies:
    """One segment's warm replies in the week, against the people it reached."""

    segment: str
    replied: int
    reached: int


@dataclass(frozen=True)
class PendingBatch:
    """A batch still waiting for a manager when the digest is read."""

    batch_id: int
    trigger: str
    segment: str
    size: int
    created_at: datetime


@dataclass(frozen=True)
class DigestView:
    """What the digest shows: the week's funnel, where replies came from, lift, what waits."""

    week: str  # "2026-W40": the ISO week of the due time
    since: datetime
    until: datetime
    zone: str
    enrolled: int
    messaged: int  # people reached by a text or an email
    replied: int
    claimed: int
    funded: int
    funded_volume: float
    top_segments: tuple[SegmentReplies, ...]
    lift: tuple[Lift, ...]  # per trigger, over every batch approved so far
    pending: tuple[PendingBatch, ...]  # the oldest first, at most PENDING_SHOWN
    pending_total: int

    @property
    def quiet(self) -> bool:
        """Nobody enrolled, messaged, replying, claimed or funded in the week."""
        counts = (self.enrolled, self.messaged, self.replied, self.claimed, self.funded)
        return not any(counts)

    def as_json(self) -> dict[str, Any]:
        """The digest as one JSON object (`winback digest --json`)."""
        return {
            "week": self.week, "from": self.since.isoformat(), "until": self.until.isoformat(),
            "timezone": self.zone, "enrolled": self.enrolled, "messaged": self.messaged,
            "replied": self.replied, "claimed": self.claimed, "funded": self.funded,
            "funded_volume": self.funded_volume, "quiet": self.quiet,
            "top_segments": [
                {"segment": s.segment, "replied": s.replied, "reached": s.reached}
                for s in self.top_segments
            ],
            "lift": [each.as_json() for each in self.lift],
            "pending_batches": [
                {"id": b.batch_id, "trigger": b.trigger, "segment": b.segment, "size": b.size,
                 "created_at": b.created_at.isoformat()}
                for b in self.pending
            ],
            "pending_total": self.pending_total,
        }  # fmt: skip


@dataclass(frozen=True)
class DigestSubject(CardSubject):
    """A digest card's content for the posting pipeline."""

    digest: DigestView | None = None


def week_digest(session: Session, *, week: str, now: datetime, config: Config) -> DigestView:
    """The digest of ISO week `week`: the 7 days before its due time; pending batches as of now."""
    until = due_of_week(week, config)
    return digest_view(session, since=week_before(until, config), until=until, now=now,
                       config=config, week=week)  # fmt: skip


def preview_digest(session: Session, *, now: datetime, config: Config) -> DigestView:
    """The digest as it would read if it were due now: the 7 days up to `now`."""
    week = week_label(now, digest_zone(config))
    return digest_view(session, since=week_before(now, config), until=now, now=now,
                       config=config, week=week)  # fmt: skip


def digest_view(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    config: Config,
    week: str,
) -> DigestView:
    """The digest of the period from `since` to `until`, read from the database now."""
    window = config.attribution.window_days
    week_funnel = funnel(session, since=since, by="segment", now=until, window_days=window)
    totals = week_funnel.totals
    segments = sorted(
        (row for row in week_funnel.rows if row.counts["replied"]),
        key=lambda row: (-row.counts["replied"], row.group),
    )[:TOP_SEGMENTS]
    # The lift of one week's batches could never show anything (their loans fund months later):
    # the digest gives it over every batch approved so far.
    lift = holdout_lift(session, since=None, now=until, window_days=window)
    pending = _pending_batches(session, now)
    return DigestView(
        week=week, since=since, until=until, zone=digest_zone(config).key,
        enrolled=totals.counts["enrolled"], messaged=totals.counts["reached"],
        replied=totals.counts["replied"], claimed=totals.counts["claimed"],
        funded=totals.counts["funded"], funded_volume=totals.funded_volume,
        top_segments=tuple(
            SegmentReplies(row.group, row.counts["replied"], row.counts["reached"])
            for row in segments
        ),
        lift=tuple(lift), pending=tuple(pending[:PENDING_SHOWN]), pending_total=len(pending),
    )  # fmt: skip


def _pending_batches(session: Session, now: datetime) -> list[PendingBatch]:
    batches = session.scalars(
        select(Batch)
        .where(Batch.status == PENDING_APPROVAL)
        .where((Batch.expires_at.is_(None)) | (Batch.expires_at > now))
        .order_by(Batch.created_at, Batch.id)
    ).all()
    return [PendingBatch(b.id, b.trigger, b.segment, b.size, b.created_at) for b in batches]


def digest_renderer(base: Render, config: Config) -> Render:
    """`base` for every card, with the digest's content read for digest cards."""

    def render(session: Session, card: Card, now: datetime) -> CardSubject | None:
        if card.kind != DIGEST:
            return base(session, card, now)
        week = card.key.removeprefix(f"{DIGEST}:")
        view = week_digest(session, week=week, now=now, config=config)
        return DigestSubject(kind=DIGEST, digest=view)

    return render
