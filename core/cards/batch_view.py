"""A batch's approval card: what it shows (read from the database each time), the card row every
pending batch gets, and its re-render after a decision.

While the batch waits, the card carries what a manager reads before approving (the same
figures as `winback batch show`: `core.outreach.batch_details`): why now, who is in it by loan
officer, what today's first touch would do, and a sample per channel. Once decided, it says
who decided and when (or why it expired), rendered from the batch's own status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.batches.models import EXPIRED, PENDING_APPROVAL, Batch, BatchMember
from core.book.models import Contact, LoanOfficer
from core.cards.models import BATCH, PENDING, POSTED, Card
from core.cards.posting import PostingOptions, SessionFactory, update_card
from core.cards.service import make_card
from core.config import Config, load_config
from core.outreach.batch_details import batch_details
from core.outreach.models import Enrollment
from core.outreach.preview import TouchPreview
from core.outreach.touch import Sender
from core.rates.models import MarketRate
from core.settings import Settings
from core.tracks.config import Track, load_tracks

TIMED_OUT = "pending longer than the expiry: the rate may have moved"


def batch_card_key(batch_id: int) -> str:
    """The one approval card a batch has."""
    return f"{BATCH}:{batch_id}"


@dataclass(frozen=True)
class OfficerShare:
    """One loan officer's part of a batch."""

    name: str  # "(no loan officer)" for people nobody owns
    people: int
    monthly_savings: Decimal | None


@dataclass(frozen=True)
class RateMove:
    """The offer a rate-drop batch was priced on, and how the index moved to get there."""

    rate: Decimal
    product: str
    as_of: date
    source: str  # the offer in words (index, offset)
    previous_rate: Decimal | None = None  # the offer at the index observation before it
    previous_as_of: date | None = None


@dataclass(frozen=True)
class Sample:
    """One touch rendered exactly as it would go out now, and what would happen to it."""

    channel: str
    name: str
    subject: str | None
    text: str
    outcome: str  # send, hold, suppress, render_failed
    rule: str | None


@dataclass(frozen=True)
class BatchCardView:
    """A batch as its approval card shows it."""

    batch_id: int
    trigger: str
    segment: str
    status: str  # the batch's status; expired also once its window ran out
    size: int
    created_at: datetime
    expires_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    expiry_reason: str | None  # why it expired (the stale-rate rule's message, say)
    enrolled: int  # people the approval put on the track
    offer: RateMove | None
    drop_points: tuple[Decimal, Decimal] | None  # these members' note rate above the offer
    thresholds: dict[str, str]
    by_officer: tuple[OfficerShare, ...]
    monthly_savings: Decimal | None  # the batch's estimated total, per month
    confirm_above: int  # bigger batches need their size typed in before approval
    track: str | None = None
    first_channel: str | None = None
    would_send: int = 0  # if approved now, what the first touch would do
    held: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    render_failed: int = 0
    samples: tuple[Sample, ...] = ()

    @property
    def pending(self) -> bool:
        """Whether a manager may still approve or reject it."""
        return self.status == PENDING_APPROVAL


def batch_card_view(
    session: Session, *, batch_id: int, now: datetime, settings: Settings | None = None
) -> BatchCardView | None:
    """The card of one batch now, None when there is no such batch."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        return None
    settings = settings or Settings()
    config, tracks = _setup(settings.WINBACK_CONFIG)
    status, reason = _status(session, batch, now)
    shares = _by_officer(session, batch.id)
    savings = [s.monthly_savings for s in shares if s.monthly_savings is not None]
    view = BatchCardView(
        batch_id=batch.id, trigger=batch.trigger, segment=batch.segment, status=status,
        size=batch.size, created_at=batch.created_at, expires_at=batch.expires_at,
        decided_by=batch.decided_by, decided_at=batch.decided_at, expiry_reason=reason,
        enrolled=_enrolled(session, batch.id), offer=_offer(session, batch),
        drop_points=_drops(session, batch.id), thresholds=_thresholds(config, batch.trigger),
        by_officer=shares, monthly_savings=sum(savings, Decimal(0)) if savings else None,
        confirm_above=config.replies.confirm_batch_size_above,
    )  # fmt: skip
    if status != PENDING_APPROVAL:
        return view  # what today's touch would do no longer matters
    return _with_today(session, view, now, config, tracks, Sender.from_settings(settings))


def _with_today(
    session: Session,
    view: BatchCardView,
    now: datetime,
    config: Config,
    tracks: Mapping[str, Track],
    sender: Sender,
) -> BatchCardView:
    """The view with today's first-touch counts and the samples (`winback batch show`'s)."""
    details = batch_details(
        session=session, batch_id=view.batch_id, now=now, config=config, tracks=tracks,
        sender=sender, limit=0,
    )  # fmt: skip
    today = details.today
    return BatchCardView(
        **{**view.__dict__, "track": details.track, "first_channel": today.channel,
           "would_send": today.send, "held": dict(today.held),
           "suppressed": dict(today.suppressed), "render_failed": today.render_failed,
           "samples": tuple(_sample(p) for p in details.samples)},
    )  # fmt: skip


def _sample(preview: TouchPreview) -> Sample:
    rendered = preview.rendered
    text = ""
    if rendered is not None:
        text = rendered.sms_body or rendered.email_text or rendered.task_text or ""
    return Sample(
        channel=preview.planned.step.channel, name=preview.contact.display_name,
        subject=rendered.email_subject if rendered else None,
        text=text if rendered else f"(could not be rendered: {preview.render_error})",
        outcome=preview.outcome, rule=preview.rule,
    )  # fmt: skip


@lru_cache(maxsize=8)
def _setup(config_path: str | None) -> tuple[Config, Mapping[str, Track]]:
    """The configuration and tracks the running process uses (as `bot.runtime.Runtime` loads)."""
    config = load_config(config_path)
    return config, load_tracks(config.tracks or None)


def _status(session: Session, batch: Batch, now: datetime) -> tuple[str, str | None]:
    """The batch's status (a pending one past its window reads expired) and why it expired."""
    if batch.status == PENDING_APPROVAL:
        if batch.expires_at is not None and batch.expires_at <= now:
            return EXPIRED, TIMED_OUT
        return PENDING_APPROVAL, None
    if batch.status != EXPIRED:
        return batch.status, None
    reason = session.scalar(
        select(AuditEvent.reason)
        .where(AuditEvent.action == "batch.expired", AuditEvent.subject_type == "batch",
               AuditEvent.subject_id == str(batch.id))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )  # fmt: skip
    return EXPIRED, reason or TIMED_OUT


def _by_officer(session: Session, batch_id: int) -> tuple[OfficerShare, ...]:
    """People and estimated monthly savings per loan officer, the biggest share first."""
    rows = session.execute(
        select(LoanOfficer.name, func.count(BatchMember.id),
               func.sum(BatchMember.monthly_savings_cents))
        .join(Contact, Contact.id == BatchMember.contact_id)
        .outerjoin(LoanOfficer, LoanOfficer.id == Contact.lo_id)
        .where(BatchMember.batch_id == batch_id)
        .group_by(LoanOfficer.id, LoanOfficer.name)
    ).all()  # fmt: skip
    shares = [
        OfficerShare(name=name or "(no loan officer)", people=int(people),
                     monthly_savings=None if cents is None else Decimal(int(cents)) / 100)
        for name, people, cents in rows
    ]  # fmt: skip
    return tuple(sorted(shares, key=lambda s: (-s.people, s.name == "(no loan officer)", s.name)))


def _enrolled(session: Session, batch_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(Enrollment.id))
            .join(BatchMember, BatchMember.id == Enrollment.batch_member_id)
            .where(BatchMember.batch_id == batch_id)
        )
        or 0
    )


def _offer(session: Session, batch: Batch) -> RateMove | None:
    """The offer the batch states, and the offer at the index observation before it."""
    if batch.rate is None or batch.rate_product is None or batch.rate_as_of is None:
        return None
    basis: dict[str, Any] = (batch.priced_on or {}).get(batch.rate_product, {})
    offset = Decimal(basis.get("offset", "0"))
    before = session.execute(
        select(MarketRate.rate, MarketRate.on)
        .where(MarketRate.product == batch.rate_product, MarketRate.on < batch.rate_as_of,
               MarketRate.held_reason.is_(None))
        .order_by(MarketRate.on.desc(), MarketRate.recorded_at.desc(), MarketRate.id.desc())
        .limit(1)
    ).first()  # fmt: skip
    return RateMove(
        rate=batch.rate, product=batch.rate_product, as_of=batch.rate_as_of,
        source=batch.rate_source or "", previous_rate=before[0] + offset if before else None,
        previous_as_of=before[1] if before else None,
    )  # fmt: skip


def _drops(session: Session, batch_id: int) -> tuple[Decimal, Decimal] | None:
    snapshots = session.scalars(
        select(BatchMember.snapshot).where(BatchMember.batch_id == batch_id)
    ).all()
    drops = [Decimal(s["drop_points"]) for s in snapshots if s and s.get("drop_points")]
    return (min(drops), max(drops)) if drops else None


def _thresholds(config: Config, trigger: str) -> dict[str, str]:
    settings = getattr(config.triggers, trigger, None)
    if settings is None:
        return {}
    dumped = settings.model_dump(mode="json", exclude={"enabled", "approval_required"})
    return {key: str(value) for key, value in dumped.items()}


# --- the card row, and its re-render after a decision -----------------------------------


def cards_for_pending_batches(session: Session, *, now: datetime) -> int:
    """Make the approval card of every pending batch that has none yet."""
    missing = session.scalars(
        select(Batch.id)
        .outerjoin(Card, and_(Card.batch_id == Batch.id, Card.kind == BATCH))
        .where(Batch.status == PENDING_APPROVAL, Card.id.is_(None))
        .where((Batch.expires_at.is_(None)) | (Batch.expires_at > now))
        .order_by(Batch.id)
    ).all()
    for batch_id in missing:
        make_card(session, key=batch_card_key(batch_id), kind=BATCH, now=now, batch_id=batch_id)
    return len(missing)


def mark_batch_card_stale(session: Session, *, batch_id: int) -> Card | None:
    """Mark the batch's card for re-rendering (the posting job retries what does not land)."""
    card = session.scalar(select(Card).where(Card.key == batch_card_key(batch_id)))
    if card is not None and card.status in (PENDING, POSTED):
        card.needs_update = True
    return card


def refresh_batch_card(
    *, session_factory: SessionFactory, posting: PostingOptions, batch_id: int, now: datetime
) -> bool:
    """chat.update the batch's posted card if it is marked stale; whether that went through."""
    with session_factory() as session:
        card = session.scalar(select(Card).where(Card.key == batch_card_key(batch_id)))
        if card is None or card.status != POSTED or not card.needs_update:
            return False
        card_id, channel, ts = card.id, card.channel or "", card.ts or ""
    return update_card(
        session_factory=session_factory, options=posting, card_id=card_id, now=now,
        channel=channel, ts=ts,
    )  # fmt: skip
