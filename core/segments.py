"""Segments: live queries over the book (never a stored copy), counted in people."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.book.models import Contact, LoanOfficer
from core.bulk import any_of
from core.config import Config
from core.flows import trigger_context
from core.triggers.base import Found, TriggerContext
from core.triggers.columns import fetch_columns
from core.triggers.registry import SEGMENTS, find_all, segment_named


class UnknownSegment(ValueError):
    """A segment name that does not exist; the message lists the ones that do."""


def _found(ctx: TriggerContext, segment: str) -> Found:
    return SEGMENTS[segment].find(ctx, for_segment=True)


def find_segments(
    *,
    session: Session,
    now: datetime,
    config: Config,
    readers: Callable[[], Session] | None = None,
) -> dict[str, Found]:
    """Every segment's people today (on parallel read sessions when `readers` is given)."""
    ctx = trigger_context(session=session, now=now, config=config)
    by_trigger = find_all(
        ctx, [SEGMENTS[name].name for name in SEGMENTS], for_segment=True, readers=readers
    )
    return {name: by_trigger[SEGMENTS[name].name] for name in SEGMENTS}


def counts_of(found: dict[str, Found]) -> dict[str, int]:
    """People per segment."""
    return {segment: people.people() for segment, people in found.items()}


@dataclass(frozen=True)
class _Owners:
    """People's loan officers (0 for none), looked up once for many people."""

    contact_ids: np.ndarray  # sorted
    officer_ids: np.ndarray

    @classmethod
    def of(cls, session: Session, contact_ids: np.ndarray) -> _Owners:
        wanted = np.unique(contact_ids).tolist()
        query = select(Contact.id, func.coalesce(Contact.lo_id, 0)).where(
            any_of(session, Contact.id, wanted)
        )
        known = fetch_columns(session, query, ("id", "lo_id")) if wanted else None
        if known is None or not len(known["id"]):
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty)
        order = np.argsort(known["id"])
        return cls(known["id"][order], known["lo_id"][order])

    def officer_of(self, contact_ids: np.ndarray) -> np.ndarray:
        """Each person's loan officer id, aligned with `contact_ids`."""
        if not len(self.contact_ids):
            return np.zeros(len(contact_ids), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.contact_ids, contact_ids), len(self.contact_ids) - 1)
        return np.where(self.contact_ids[at] == contact_ids, self.officer_ids[at], 0)


def counts_by_lo(session: Session, found: dict[str, Found]) -> dict[str, dict[str, int]]:
    """People per segment per loan officer, every one of them (by email; `unassigned` for
    people without one)."""
    officers = dict(session.execute(select(LoanOfficer.id, LoanOfficer.email)).all())
    people_of = {segment: np.unique(people.contact_id) for segment, people in found.items()}
    owners = _Owners.of(session, np.concatenate([np.zeros(0, np.int64), *people_of.values()]))
    # Every loan officer is listed, the ones with nobody in any segment too.
    breakdown = {email: {name: 0 for name in found} for email in officers.values()}
    for segment, people in people_of.items():
        officer_ids, counts = np.unique(owners.officer_of(people), return_counts=True)
        for officer_id, count in zip(officer_ids.tolist(), counts.tolist(), strict=True):
            officer = officers.get(officer_id, "unassigned")
            breakdown.setdefault(officer, {name: 0 for name in found})[segment] += count
    return breakdown


def segment_counts(*, session: Session, now: datetime, config: Config) -> dict[str, int]:
    """People per segment, today."""
    return counts_of(find_segments(session=session, now=now, config=config))


def segment_counts_by_lo(
    *, session: Session, now: datetime, config: Config
) -> dict[str, dict[str, int]]:
    """People per segment per loan officer, today."""
    return counts_by_lo(session, find_segments(session=session, now=now, config=config))


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
        people = found.contact_id[best]
        best = best[_Owners.of(session, people).officer_of(people) == lo_id]
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
