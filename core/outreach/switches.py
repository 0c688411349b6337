"""The global pause: one switch a manager flips to hold every marketing message at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.outreach.models import Switch

PAUSE = "outreach_paused"


def is_paused(session: Session) -> bool:
    """Whether outreach is paused right now (read from the database, never cached)."""
    return bool(session.scalar(select(Switch.on).where(Switch.name == PAUSE)))


def paused_flag():  # type: ignore[no-untyped-def]
    """The pause switch as a scalar subquery, to read it in the same statement as other data."""
    return select(Switch.on).where(Switch.name == PAUSE).scalar_subquery()


def _flip(*, session: Session, on: bool, by: str, reason: str | None, now: datetime) -> Switch:
    switch = session.get(Switch, PAUSE, with_for_update=True)
    if switch is None:
        switch = Switch(name=PAUSE, on=False)
        session.add(switch)
    was_on = bool(switch.on)
    switch.on = on
    switch.changed_by = by
    switch.changed_at = now
    switch.reason = reason
    session.flush()
    record(
        session=session,
        at=now,
        actor=by,
        action="outreach.paused" if on else "outreach.resumed",
        subject_type="switch",
        subject_id=PAUSE,
        reason=reason,
        details={"was_paused": was_on},
    )
    return switch


def pause(*, session: Session, by: str, reason: str | None, now: datetime) -> Switch:
    """Hold every marketing message until resumed; who and why go to the audit trail."""
    return _flip(session=session, on=True, by=by, reason=reason, now=now)


def resume(*, session: Session, by: str, now: datetime, reason: str | None = None) -> Switch:
    """Let outreach flow again; held messages go out at their next dispatch."""
    return _flip(session=session, on=False, by=by, reason=reason, now=now)
