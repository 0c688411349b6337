"""The ReplyRouter that posts cards: the reply's card is made at once, then posted right away on a
background thread (the webhook's answer never waits on Slack); the posting job retries the rest."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from core.cards.models import Card
from core.cards.posting import PostingOptions, SessionFactory, post_now
from core.cards.service import ensure_reply_card
from core.clock import Clock
from core.inbound.router import ReplyNotice

logger = logging.getLogger(__name__)

RETRIES_HERE = 5  # prompt retries from the web process; the posting job keeps trying after
SOON = timedelta(seconds=30)


class CardReplyRouter:
    """Makes each stored reply's card and posts it within a second, exactly once."""

    def __init__(
        self, *, session_factory: SessionFactory, options: PostingOptions, clock: Clock
    ) -> None:
        self._sessions = session_factory
        self._options = options
        self._clock = clock
        # Threads enough that a busy channel's pacing or one slow Slack call never holds up the
        # next borrower's card in another channel.
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="winback-cards")

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

    def _post(self, card_id: int, attempt: int = 1) -> None:
        try:
            outcome = post_now(
                session_factory=self._sessions, options=self._options, card_id=card_id,
                now=self._clock.now(),
            )  # fmt: skip
        except Exception:  # never lost: the card stays pending for the posting job
            logger.exception("card %d not posted yet: the posting job will retry", card_id)
            return
        if outcome == "failed" and attempt < RETRIES_HERE:
            self._retry_soon(card_id, attempt)

    def _retry_soon(self, card_id: int, attempt: int) -> None:
        """Try again when the card is due (Slack's Retry-After, the channel's pace) if that is
        soon; the worker's posting job is the safety net for everything else."""
        with self._sessions() as session:
            card = session.get(Card, card_id)
            due_at = card.due_at if card is not None else None
        if due_at is None:
            return
        delay = (due_at - self._clock.now()).total_seconds()
        if 0 <= delay <= SOON.total_seconds():
            timer = threading.Timer(delay, self._resubmit, args=(card_id, attempt + 1))
            timer.daemon = True
            timer.start()

    def _resubmit(self, card_id: int, attempt: int) -> None:
        try:
            self._pool.submit(self._post, card_id, attempt)
        except RuntimeError:  # shutting down: the posting job picks the card up
            return

    def close(self) -> None:
        """Wait for posts in flight (the web process shutting down)."""
        self._pool.shutdown(wait=True)
