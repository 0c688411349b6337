"""Where a warm reply goes once it is safely stored: the ReplyRouter protocol.

The web process commits the reply first and only then tells the router, so a router that
fails (Slack down) loses nothing: the reply stays unrouted (``routed_at`` empty) and is listed
by ``winback replies --unclaimed`` until a router posts it. Step 6's Slack router implements
this protocol with a posting job that retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyNotice:
    """What a router is told about a stored reply (it reads the rest from the database)."""

    reply_id: int
    channel: str
    classification: str
    contact_id: int | None  # None: the sender is not in the book


class ReplyRouter(Protocol):
    """Takes a committed warm reply to the people who should call back."""

    def reply_received(self, notice: ReplyNotice) -> None:
        """Called after the reply's transaction committed; must not raise for routing trouble."""
        ...


class UnroutedReplies:
    """The router until Slack is set up: replies wait in the database for `winback replies`."""

    def reply_received(self, notice: ReplyNotice) -> None:
        """Log that a reply is waiting (no address or words: those are personal)."""
        who = f"contact {notice.contact_id}" if notice.contact_id else "a number not in the book"
        logger.info(
            "reply %d (%s, %s) from %s is waiting: winback replies --unclaimed",
            notice.reply_id,
            notice.channel,
            notice.classification,
            who,
        )
