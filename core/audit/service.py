"""Writing to the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.audit.models import AuditEvent


def record(
    *,
    session: Session,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str | None = None,
    subject_id: object = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the audit trail (flushed with the caller's transaction)."""
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id),
        reason=reason,
        details=details,
    )
    session.add(event)
    return event
