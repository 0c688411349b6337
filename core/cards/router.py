"""The ReplyRouter that posts cards: the reply's card is made at once, then posted right away on a
background thread (the webhook's answer never waits on Slack); the posting job retries the rest."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from core.cards.posting import PostingOptions, SessionFactory, post_now
from core.cards.service import ensure_reply_card
from core.clock import Clock
from core.inbound.router import ReplyNotice

logger = logging.getLogger(__name__)


class CardReplyRouter:
    """Makes each stored reply's card and posts it within a second, exactly once."""

    def __init__(
        self, *, session_factory: SessionFactory, options: PostingOptions, clock: Clock
    ) -> None:
        self._sessions = session_factory
        self._options = options
        self._clock = clock
        # A few threads: one slow Slack call must not hold up the next borrower's card.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="winback-cards")

    def reply_received(self, notice: ReplyNotice) -> None:
        """Make the card in its own transaction, then hand the post to a background thread."""
        try:
            with self._sessions() as session, session.begin():
                card_id = ensure_reply_card(
                    session, reply_id=notice.reply_id, now=self._clock.now()
                ).id
        except Exception:  # the posting job makes missing cards; the reply itself is safe
            logger.exception(
                "card for reply %d not made yet: the posting job will", notice.reply_id
            )
            return
        self._pool.submit(self._post, card_id)

    def _post(self, card_id: int) -> None:
        try:
            post_now(
                session_factory=self._sessions, options=self._options, card_id=card_id,
                now=self._clock.now(),
            )  # fmt: skip
        except Exception:  # never lost: the card stays pending for the posting job
            logger.exception("card %d not posted yet: the posting job will retry", card_id)

    def close(self) -> None:
        """Wait for posts in flight (the web process shutting down)."""
        self._pool.shutdown(wait=True)
