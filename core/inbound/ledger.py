"""The inbound ledger: a webhook is written down, once, in the transaction of its effect."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bulk import insert_for
from core.inbound.models import InboundEvent

# Headers worth keeping with a webhook; everything else (cookies, auth) is dropped.
KEPT_HEADERS = (
    "i-twilio-idempotency-token",
    "x-twilio-signature",
    "x-home-region",
    "user-agent",
    "content-type",
    "x-forwarded-proto",
    "x-forwarded-for",
)


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers the ledger keeps, lower-cased."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return {name: lowered[name][:500] for name in KEPT_HEADERS if name in lowered}


def write_down(
    session: Session,
    *,
    source: str,
    key: str,
    form: Mapping[str, Any],
    headers: Mapping[str, str],
    now: datetime,
) -> InboundEvent | None:
    """Insert the ledger row; None when this (source, key) was already written (a retry).

    Runs inside the caller's transaction, so the row commits together with its effect or not
    at all. On a race between two deliveries of one webhook, the loser gets None.
    """
    values = {
        "source": source,
        "idempotency_key": key[:200],
        "received_at": now,
        "form": dict(form),
        "headers": kept_headers(headers),
    }
    insert = insert_for(session)
    statement = (
        insert(InboundEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source", "idempotency_key"])
        .returning(InboundEvent.id)
    )
    new_id = session.execute(statement).scalar()
    if new_id is None:
        return None
    return session.get(InboundEvent, new_id)


def first_copy(session: Session, *, source: str, key: str) -> InboundEvent | None:
    """The ledger row already written for (source, key), if any."""
    return session.scalars(
        select(InboundEvent).where(
            InboundEvent.source == source, InboundEvent.idempotency_key == key[:200]
        )
    ).first()
