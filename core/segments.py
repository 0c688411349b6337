"""Segments: live queries over the book (never a stored copy), counted in people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.book.models import Contact, LoanOfficer
from core.bulk import any_of
from core.config import Config
from core.flows import trigger_context
from core.triggers.base import Found, TriggerContext
from core.triggers.registry import SEGMENTS, segment_named


class UnknownSegment(ValueError):
    """A segment name that does not exist; the message lists the ones that do."""


def _found(ctx: TriggerContext, segment: str) -> Found:
    return SEGMENTS[segment].find(ctx, for_segment=True)


def segment_counts(*, session: Session, now: datetime, config: Config) -> dict[str, int]:
    """People per segment, today."""
    ctx = trigger_context(session=session, now=now, config=config)
    return {segment: _found(ctx, segment).people() for segment in SEGMENTS}


def segment_counts_by_lo(
    *, session: Session, now: datetime, config: Config
) -> dict[str, dict[str, int]]:
    """People per segment per loan officer (by email; `unassigned` for people without one)."""
    ctx = trigger_context(session=session, now=now, config=config)
    officers = dict(session.execute(select(LoanOfficer.id, LoanOfficer.email)).all())
    breakdown: dict[str, dict[str, int]] = {}
    for segment in SEGMENTS:
        found = _found(ctx, segment)
        owners, counts = np.unique(found.lo_id[found.best_per_contact()], return_counts=True)
        for owner, count in zip(owners.tolist(), counts.tolist(), strict=True):
            officer = officers.get(owner, "unassigned")
            breakdown.setdefault(officer, {name: 0 for name in SEGMENTS})[segment] += count
    return breakdown


@dataclass(frozen=True)
class SegmentEntry:
    """One person in a segment, with the reason, for a loan officer's list."""

    contact_id: int
    name: str
    lo_email: str | None
    loan_id: int
    snapshot: dict[str, Any]


def segment_members(
    *,
    session: Session,
    now: datetime,
    config: Config,
    segment: str,
    lo_id: int | None = None,
    limit: int = 20,
) -> list[SegmentEntry]:
    """The best people of a segment (highest savings first for refinance), optionally one LO's."""
    trigger = segment_named(segment)
    if trigger is None:
        raise UnknownSegment(f"no segment '{segment}'; segments are: {', '.join(SEGMENTS)}")
    ctx = trigger_context(session=session, now=now, config=config)
    found = _found(ctx, trigger.segment)
    best = found.best_per_contact()
    if lo_id is not None:
        best = best[found.lo_id[best] == lo_id]
    top = best[np.argsort(-found.rank[best], kind="stable")[:limit]]
    people = found.candidates(top)
    contacts = {
        row.id: row
        for row in session.execute(
            select(Contact.id, Contact.first_name, Contact.last_name, LoanOfficer.email)
            .outerjoin(LoanOfficer, LoanOfficer.id == Contact.lo_id)
            .where(any_of(session, Contact.id, [p.contact_id for p in people]))
        )
    }
    return [
        SegmentEntry(
            contact_id=p.contact_id,
            name=f"{contacts[p.contact_id].first_name} {contacts[p.contact_id].last_name}".strip(),
            lo_email=contacts[p.contact_id].email,
            loan_id=p.loan_id,
            snapshot=p.snapshot,
        )
        for p in people
        if p.contact_id in contacts
    ]
