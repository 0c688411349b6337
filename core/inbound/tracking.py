"""The open pixel and tracked links of an email (SPEC §5): read the signed token, record the
engagement, and say where a click goes — only ever to the URL signed into its token.

A click token's subject is ``"<message id> <url>"`` (core.outreach.context.Links.click): the
message it was sent in and the destination, nothing personal. An open token's subject is the
message id. Both live MAX_AGE[CLICK|OPEN] (180 days, SPEC asks for at least 90).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from core.inbound.engagement import CLICK, OPEN, record_engagement
from core.outreach.models import Enrollment, Message
from core.tokens import CLICK as CLICK_TOKEN
from core.tokens import OPEN as OPEN_TOKEN
from core.tokens import TokenError, max_age_for, verify

logger = logging.getLogger(__name__)

GOOD = "good"
EXPIRED = "expired"
INVALID = "invalid"


@dataclass(frozen=True)
class Hit:
    """Who fetched the pixel or followed the link, as the request tells it."""

    user_agent: str | None
    client_ip: str | None
    now: datetime


@dataclass(frozen=True)
class ClickTarget:
    """What a click token says: GOOD (go to `url`), EXPIRED or INVALID (a friendly page)."""

    state: str
    url: str | None = None
    message_id: int | None = None


def read_click(token: str, *, secret: str, now: datetime) -> ClickTarget:
    """The destination signed into a click token, or why there is none (never raises)."""
    try:
        subject = verify(
            secret=secret, purpose=CLICK_TOKEN, token=token, now=now,
            max_age=max_age_for(CLICK_TOKEN),
        )  # fmt: skip
    except TokenError:
        return ClickTarget(EXPIRED if _expired(token, secret, now) else INVALID)
    message_text, _, url = subject.partition(" ")
    if not message_text.isdigit() or not _web_url(url):
        return ClickTarget(INVALID)  # only a leaked key could sign such a subject
    return ClickTarget(GOOD, url, int(message_text))


def record_click(
    *, sessions: Callable[[], Session], token: str, secret: str, hit: Hit
) -> ClickTarget:
    """Read a click token and, when genuine, record the click (machine-flagged) at once."""
    target = read_click(token, secret=secret, now=hit.now)
    if target.state == GOOD and target.message_id is not None:
        with sessions() as session, session.begin():
            _record(session, CLICK, target.message_id, hit, target.url)
    return target


def record_open(*, sessions: Callable[[], Session], token: str, secret: str, hit: Hit) -> bool:
    """Record an open for a genuine open token; False (nothing recorded) for any other."""
    try:
        subject = verify(
            secret=secret, purpose=OPEN_TOKEN, token=token, now=hit.now,
            max_age=max_age_for(OPEN_TOKEN),
        )  # fmt: skip
    except TokenError:
        return False
    if not subject.isdigit():
        return False
    with sessions() as session, session.begin():
        return _record(session, OPEN, int(subject), hit, None)


def _record(session: Session, kind: str, message_id: int, hit: Hit, url: str | None) -> bool:
    message = session.get(Message, message_id)
    if message is None:  # a genuine token for a message no longer in the outbox
        logger.info("%s for message %d, which is not in the outbox: not recorded", kind, message_id)
        return False
    enrollment = session.get(Enrollment, message.enrollment_id)
    record_engagement(
        session,
        kind=kind,
        now=hit.now,
        user_agent=hit.user_agent,
        client_ip=hit.client_ip,
        message=message,
        batch_member_id=enrollment.batch_member_id if enrollment is not None else None,
        url=url,
    )
    return True


def _expired(token: str, secret: str, now: datetime) -> bool:
    """True when the token is genuine but too old (a friendly 'expired' page, not 'broken')."""
    try:
        verify(secret=secret, purpose=CLICK_TOKEN, token=token, now=now, max_age=None)
    except TokenError:
        return False
    return True


def _web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
