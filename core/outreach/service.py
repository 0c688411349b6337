"""Enrolling approved batches into their tracks, and ending sequences."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.audit.service import record
from core.batches.models import Batch, BatchMember
from core.bulk import allocate_ids, any_of, bulk_insert
from core.holdout import hold_out
from core.outreach.models import (
    ACTIVE,
    CANCELLED,
    FINAL_STATES,
    SCHEDULED,
    STOPPED,
    Enrollment,
    Message,
)
from core.tracks.config import Track, track_for_trigger


@dataclass(frozen=True)
class EnrollResult:
    """What enrolling a batch did."""

    enrolled: int
    already_in_a_sequence: int
    messages_scheduled: int
    people: frozenset[int] = frozenset()  # the contact ids put on the track
    # Members left out because they already walk a track: how many, by that track's name.
    already_on_track: dict[str, int] = field(default_factory=dict)
    # The free members held out for measurement (core.holdout), never messaged: contact ids.
    held_out: frozenset[int] = frozenset()


def enroll_batch(
    *, session: Session, batch: Batch, now: datetime, tracks: Mapping[str, Track],
    holdout: float = 0.0,
) -> EnrollResult:  # fmt: skip
    """Enroll an approved batch's members into the trigger's track and schedule every step,
    except the `holdout` share of the free ones, held out for measurement (core.holdout)."""
    track = track_for_trigger(tracks, batch.trigger)
    if track is None:
        return EnrollResult(0, 0, 0)
    batch_members = list(
        session.scalars(
            select(BatchMember).where(BatchMember.batch_id == batch.id, BatchMember.live.is_(True))
        )
    )
    walking = _tracks_walked(session, [m.contact_id for m in batch_members])
    busy = set(walking)
    free = [member for member in batch_members if member.contact_id not in busy]
    # Chosen among the free members only, so both groups are people we would have messaged.
    held = hold_out(session, batch=batch, members=free, fraction=holdout, now=now)
    joining = [member for member in free if member.contact_id not in held]
    ids = allocate_ids(session, Enrollment.__table__, len(joining))
    enrollments = [
        {
            "id": new_id,
            "contact_id": member.contact_id,
            "batch_member_id": member.id,
            "track": track.name,
            "status": ACTIVE,
            "stop_reason": None,
            "enrolled_at": now,
            "ended_at": None,
        }
        for new_id, member in zip(ids, joining, strict=True)
    ]
    bulk_insert(session, Enrollment.__table__, enrollments)
    messages = _every_step(track, enrollments, now)
    bulk_insert(session, Message.__table__, messages)
    on_track = _count_by_track(walking)
    record(
        session=session,
        at=now,
        actor="enroller",
        action="batch.enrolled",
        subject_type="batch",
        subject_id=batch.id,
        details={
            "track": track.name,
            "enrolled": len(enrollments),
            "already_in_a_sequence": len(busy),
            "already_on_track": on_track,
            "held_out_for_measurement": len(held),
            "holdout_fraction": holdout,
        },
    )
    people = frozenset(enrollment["contact_id"] for enrollment in enrollments)
    return EnrollResult(len(enrollments), len(busy), len(messages), people, on_track, held)


def _every_step(track: Track, enrollments: list[dict], now: datetime) -> list[dict]:
    """One scheduled outbox row per enrollment and step of the track, due after its delay."""
    return [
        {
            "enrollment_id": enrollment["id"],
            "contact_id": enrollment["contact_id"],
            "step": step.number,
            "channel": step.channel,
            "template": step.template,
            "status": SCHEDULED,
            "due_at": now + timedelta(days=step.delay_days),
            "attempts": 0,
            "updated_at": now,
        }
        for enrollment in enrollments
        for step in track.steps
    ]


def _tracks_walked(session: Session, contact_ids: list[int]) -> dict[int, str]:
    """The track each of these people walks now (the first by name if several)."""
    rows = session.execute(
        select(Enrollment.contact_id, func.min(Enrollment.track))
        .where(Enrollment.status == ACTIVE, any_of(session, Enrollment.contact_id, contact_ids))
        .group_by(Enrollment.contact_id)
    )
    return {contact_id: track for contact_id, track in rows}


def _count_by_track(walking: dict[int, str]) -> dict[str, int]:
    """How many people walk each track, most first (ties by name)."""
    counts = Counter(walking.values())
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def end_sequences(
    *, session: Session, contact_id: int, reason: str, now: datetime, actor: str
) -> int:
    """Stop every active sequence of a person and cancel their unsent touches, queued included."""
    active = list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.contact_id == contact_id, Enrollment.status == ACTIVE
            )
        )
    )
    for enrollment in active:
        enrollment.status = STOPPED
        enrollment.stop_reason = reason
        enrollment.ended_at = now
    cancelled = session.execute(
        update(Message)
        .where(
            Message.contact_id == contact_id,
            Message.status.not_in(FINAL_STATES),
            Message.status != "sending",
        )
        .values(status=CANCELLED, rule=reason, updated_at=now)
    ).rowcount
    if active:
        record(
            session=session,
            at=now,
            actor=actor,
            action="sequence.stopped",
            subject_type="contact",
            subject_id=contact_id,
            reason=reason,
            details={"enrollments": [e.id for e in active], "cancelled": cancelled},
        )
    return cancelled or 0
