"""What a manager reads before approving a batch (`winback batch show`).

The trigger and why now, the members with their numbers, how many of them the first touch
would reach today (the real send-time decision per member, nothing sent or written) and one
sample per channel rendered exactly as it would go out. Lives in outreach, not batches: it
renders and decides through `core.outreach.preview`, and batches sit below outreach.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches.models import Batch, BatchMember
from core.batches.service import get_batch
from core.book.models import Contact, Loan, LoanOfficer
from core.config import Config
from core.outreach.preview import Planned, TouchPreview, preview_touches, rows_by_id
from core.outreach.touch import Sender
from core.tracks.config import Track, track_for_trigger

TOP = 20


@dataclass(frozen=True)
class MemberLine:
    """One member as the manager reads them: who, whose, and the numbers of the offer."""

    contact_id: int
    name: str
    loan_officer: str | None
    note_rate: str | None
    monthly_savings: str | None
    break_even_months: int | None

    def as_json(self) -> dict[str, Any]:
        """The member as a JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class Today:
    """What the first touch would do for every member if sent now: counts by outcome and rule."""

    channel: str | None
    send: int = 0
    held: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    render_failed: int = 0

    def as_json(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class BatchDetails:
    """A batch as a manager sees it before deciding."""

    batch: Batch
    why: dict[str, Any]
    track: str | None
    members: list[MemberLine]
    today: Today
    samples: list[TouchPreview]

    def as_json(self) -> dict[str, Any]:
        """The whole view as one JSON-ready dict."""
        batch = self.batch
        return {
            "id": batch.id,
            "trigger": batch.trigger,
            "segment": batch.segment,
            "status": batch.status,
            "size": batch.size,
            "created_at": batch.created_at.isoformat(),
            "expires_at": batch.expires_at.isoformat() if batch.expires_at else None,
            "decided_by": batch.decided_by,
            "why": self.why,
            "track": self.track,
            "members": [member.as_json() for member in self.members],
            "today": self.today.as_json(),
            "samples": [sample.as_json() for sample in self.samples],
        }


def batch_details(
    *,
    session: Session,
    batch_id: int,
    now: datetime,
    config: Config,
    tracks: Mapping[str, Track],
    sender: Sender,
    limit: int | None = TOP,
) -> BatchDetails:
    """The batch's trigger and why now, its members by savings (`limit` of them, None = all),
    what its first touch would do today for each member, and a sample per channel."""
    batch = get_batch(session=session, batch_id=batch_id)
    members = _by_savings(session, batch.id)
    track = track_for_trigger(tracks, batch.trigger)
    today = Today(channel=track.steps[0].channel if track and track.steps else None)
    samples: list[TouchPreview] = []
    if track is not None and track.steps and members:
        first = [Planned(member, track.name, track.steps[0]) for member in members]
        _count(today, preview_touches(session=session, planned=first, now=now, config=config,
                                      sender=sender))  # fmt: skip
        samples = _samples(session, members[0], track, now, config, sender)
    shown = members if limit is None else members[:limit]
    return BatchDetails(
        batch=batch,
        why=_why(batch, members, config),
        track=track.name if track else None,
        members=_lines(session, shown),
        today=today,
        samples=samples,
    )


def _by_savings(session: Session, batch_id: int) -> list[BatchMember]:
    """The members, largest monthly savings first (members without savings last, by id)."""
    rows = session.scalars(select(BatchMember).where(BatchMember.batch_id == batch_id))
    return sorted(rows, key=lambda m: (-(m.monthly_savings_cents or -1), m.id))


def _count(today: Today, previews: list[TouchPreview]) -> None:
    held, suppressed = Counter[str](), Counter[str]()
    for preview in previews:
        if preview.outcome == "send":
            today.send += 1
        elif preview.outcome == "hold":
            held[preview.rule or "held"] += 1
        elif preview.outcome == "suppress":
            suppressed[preview.rule or "suppressed"] += 1
        else:
            today.render_failed += 1
    today.held, today.suppressed = dict(held.most_common()), dict(suppressed.most_common())


def _samples(
    session: Session,
    member: BatchMember,
    track: Track,
    now: datetime,
    config: Config,
    sender: Sender,
) -> list[TouchPreview]:
    """The track's first SMS and first email, for the member with the largest savings."""
    planned = []
    for channel in ("sms", "email"):
        step = next((s for s in track.steps if s.channel == channel), None)
        if step is not None:
            planned.append(Planned(member, track.name, step))
    return preview_touches(session=session, planned=planned, now=now, config=config, sender=sender)


def _why(batch: Batch, members: list[BatchMember], config: Config) -> dict[str, Any]:
    """The trigger's thresholds, and for a rate drop the offer the batch was priced on."""
    settings = getattr(config.triggers, batch.trigger)
    why: dict[str, Any] = {
        "trigger": batch.trigger,
        "thresholds": settings.model_dump(mode="json", exclude={"enabled", "approval_required"}),
    }
    if batch.rate is not None:
        why["offer"] = {
            "rate": str(batch.rate),
            "product": batch.rate_product,
            "as_of": batch.rate_as_of.isoformat() if batch.rate_as_of else None,
            "source": batch.rate_source,
        }
        why["priced_on"] = batch.priced_on or {}
    drops = [Decimal(m.snapshot["drop_points"]) for m in members if m.snapshot.get("drop_points")]
    if drops:
        why["drop_points"] = {"min": str(min(drops)), "max": str(max(drops))}
    return why


def _lines(session: Session, members: list[BatchMember]) -> list[MemberLine]:
    contacts = rows_by_id(session, Contact, (m.contact_id for m in members))
    loans = rows_by_id(session, Loan, (m.loan_id for m in members))
    officer_ids = (c.lo_id for c in contacts.values() if c.lo_id)
    officers = rows_by_id(session, LoanOfficer, officer_ids)
    lines = []
    for member in members:
        contact, snapshot = contacts[member.contact_id], member.snapshot or {}
        loan = loans.get(member.loan_id)
        note_rate = snapshot.get("note_rate") or (loan.note_rate if loan else None)
        cents = member.monthly_savings_cents
        savings = snapshot.get("monthly_savings") or (str(Decimal(cents) / 100) if cents else None)
        officer = officers.get(contact.lo_id) if contact.lo_id else None
        lines.append(
            MemberLine(
                contact_id=contact.id,
                name=contact.display_name,
                loan_officer=officer.name if officer else None,
                note_rate=None if note_rate is None else str(note_rate),
                monthly_savings=savings,
                break_even_months=snapshot.get("break_even_months"),
            )
        )
    return lines
