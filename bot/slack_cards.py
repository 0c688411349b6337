"""Posting cards: to Slack with the Web API, or to the log when Slack is not set up (sandbox).

Slack's chat.postMessage has no idempotency key, so every card carries message metadata (our
event type and the card's key). After a timeout or a 5xx the card may be in the channel
already; the next attempt reads the channel's history for that key before posting again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.metadata import Metadata

from bot.blocks.common import View
from bot.blocks.replies import (
    escalation_card,
    phone_words,
    reminder_card,
    reply_card,
    task_card,
)
from bot.blocks.text import view_text
from core.cards.models import BATCH, CALL_TASK, DIGEST, ESCALATION, REMINDER
from core.cards.posting import CardToPost, Destination, Posted, PostFailed
from core.privacy import mask_contact_details, mask_email, mask_phone
from core.settings import Settings

logger = logging.getLogger(__name__)

EVENT_TYPE = "winback_card"
PACED = "paced"  # this channel had its message for this second: try again in a moment
# Errors that mean "not this channel": the next destination is tried instead.
_WRONG_PLACE = {"channel_not_found", "not_in_channel", "is_archived", "user_not_found",
                "users_not_found", "cannot_dm_bot", "user_disabled"}  # fmt: skip


def render_card(card: CardToPost, *, managers: list[str], sla_minutes: int) -> View:
    """The card's Block Kit view, by kind."""
    subject = card.subject
    if card.kind == CALL_TASK and subject.task is not None:
        return task_card(subject.task)
    if card.kind == BATCH and subject.batch is not None:
        from bot.blocks.batches import batch_card

        return batch_card(subject.batch)
    digest = getattr(subject, "digest", None)  # core.digest.DigestSubject
    if card.kind == DIGEST and digest is not None:
        from bot.blocks.digest import digest_card

        return digest_card(digest)
    assert subject.reply is not None, f"card {card.key} shows nothing"
    if card.kind == ESCALATION:
        return escalation_card(subject.reply, managers=managers, minutes=sla_minutes)
    if card.kind == REMINDER:
        return reminder_card(subject.reply)
    return reply_card(subject.reply, again=subject.snoozed_repost)


class ChannelPace:
    """About one message per second per channel, Slack's posting limit, which allows short
    bursts: a few replies landing together in one channel are not held back (GCRA)."""

    def __init__(self, interval: float = 1.0, burst: int = 4, longest_wait: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._clock = clock
        self._interval = interval
        self._slack = (burst - 1) * interval  # how far ahead of schedule a burst may run
        self._longest_wait = longest_wait
        self._due: dict[str, float] = {}  # each channel's theoretical next-message time
        self._lock = threading.Lock()

    def reserve(self, channel: str) -> tuple[bool, float]:
        """(True, seconds to wait for this channel's next slot, now reserved); or (False, when
        to ask again) when the wait would tie up a posting thread longer than `longest_wait`:
        asked again then, the card gets the next slot within that wait, in arrival order."""
        with self._lock:
            now = self._clock()
            due = max(self._due.get(channel, now), now)
            wait = max(0.0, due - self._slack - now)
            if wait > self._longest_wait:
                return False, wait - self._longest_wait + 0.05
            self._due[channel] = due + self._interval
            return True, wait


class SlackCardPoster:
    """Posts cards with the real Web API client (SLACK_API_URL honored)."""

    def __init__(self, *, client: WebClient, settings: Settings, sla_minutes: int,
                 pace: ChannelPace | None = None) -> None:  # fmt: skip
        self._client = client
        self._settings = settings
        self._sla = sla_minutes
        self._pace = pace or ChannelPace()
        self._dm: dict[str, str] = {}  # Slack user -> DM channel

    def post(self, card: CardToPost) -> Posted:
        """Post the card to the first destination that takes it (or find it, after a doubt)."""
        view = self._render(card)
        places = [card.thread_channel] if card.thread_channel else self._places(card.destination)
        last = PostFailed("no Slack channel is set up for this card", maybe_posted=False)
        for channel in places:
            if card.look_first:
                found = self._find(channel, card)
                if found is not None:
                    return found
            try:
                return self._post_to(channel, card, view)
            except PostFailed as failure:
                if failure.reason not in _WRONG_PLACE:
                    raise
                last = failure
        raise last

    def update(self, card: CardToPost, *, channel: str, ts: str) -> None:
        """chat.update the card from its current state."""
        view = self._render(card)
        self._call(lambda: self._client.chat_update(
            channel=channel, ts=ts, text=view.text, blocks=view.blocks,
            metadata=_metadata(card),
        ))  # fmt: skip

    def _render(self, card: CardToPost) -> View:
        managers = sorted(self._settings.manager_ids)
        return render_card(card, managers=managers, sla_minutes=self._sla)

    def _post_to(self, channel: str, card: CardToPost, view: View) -> Posted:
        reserved, wait = self._pace.reserve(channel)
        if not reserved:  # a long queue in this channel: come back when a slot is near
            raise PostFailed(PACED, retry_after=wait, maybe_posted=False)
        if wait:
            time.sleep(wait)
        response = self._call(lambda: self._client.chat_postMessage(
            channel=channel, text=view.text, blocks=view.blocks, metadata=_metadata(card),
            thread_ts=card.thread_ts, unfurl_links=False, unfurl_media=False,
        ))  # fmt: skip
        return Posted(channel=str(response["channel"]), ts=str(response["ts"]))

    def _find(self, channel: str, card: CardToPost) -> Posted | None:
        """The card already in the channel (or thread), by its metadata key."""
        if card.thread_ts:
            response = self._call(lambda: self._client.conversations_replies(
                channel=channel, ts=card.thread_ts, include_all_metadata=True, limit=200,
            ))  # fmt: skip
        else:
            response = self._call(lambda: self._client.conversations_history(
                channel=channel, include_all_metadata=True, limit=200,
            ))  # fmt: skip
        for message in response.get("messages", []):
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == EVENT_TYPE and (
                metadata.get("event_payload", {}).get("key") == card.key
            ):
                logger.info("card %s was already posted: not posting it again", card.key)
                return Posted(channel=channel, ts=str(message["ts"]))
        return None

    def _places(self, destination: Destination) -> Iterator[str]:
        """Where to try, best first; a DM is only opened when the channels before it failed."""
        tried: set[str] = set()
        for place in self._candidates(destination):
            channel = place() if callable(place) else place
            if channel and channel not in tried:
                tried.add(channel)
                yield channel

    def _candidates(self, destination: Destination) -> Iterator[str | Callable[[], Any] | None]:
        yield destination.lo_channel
        for user in (destination.lo_user, destination.user):
            if user:
                yield lambda user=user: self._dm_channel(user)
        if destination.lo_email and not destination.lo_user:
            yield lambda: self._dm_by_email(destination.lo_email or "")
        if destination.team:
            yield self._settings.SLACK_TEAM_CHANNEL
        if destination.approvals or destination.team:
            yield self._settings.SLACK_APPROVALS_CHANNEL

    def _dm_channel(self, user: str) -> str | None:
        if user not in self._dm:
            try:
                response = self._call(lambda: self._client.conversations_open(users=user))
            except PostFailed:
                return None
            self._dm[user] = str(response["channel"]["id"])
        return self._dm[user]

    def _dm_by_email(self, email: str) -> str | None:
        try:
            user = self._call(lambda: self._client.users_lookupByEmail(email=email))["user"]["id"]
        except PostFailed:
            return None
        return self._dm_channel(str(user))

    @staticmethod
    def _call(request: Callable[[], Any]) -> Any:
        """Run a Web API call; Slack's refusals and network trouble become PostFailed."""
        try:
            return request()
        except SlackApiError as exc:
            response = exc.response
            status = response.status_code
            if status == 429:
                retry = float(response.headers.get("Retry-After", response.headers.get(
                    "retry-after", 1)))  # fmt: skip
                raise PostFailed("rate_limited", retry_after=retry, maybe_posted=False) from None
            error = str(response.get("error") or f"http_{status}")
            # A 5xx may come after Slack stored the message: look before posting again.
            raise PostFailed(error, maybe_posted=status >= 500) from None
        except OSError as exc:  # timeouts and refused connections (URLError is an OSError)
            raise PostFailed(f"network: {type(exc).__name__}", maybe_posted=True) from None


def _metadata(card: CardToPost) -> Metadata:
    return Metadata(event_type=EVENT_TYPE, event_payload={"key": card.key, "card": card.card_id})


class LogCardPoster:
    """No Slack set up: each card is written readably to the log (and kept for the demo)."""

    def __init__(self, *, settings: Settings, sla_minutes: int,
                 echo: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self._settings = settings
        self._sla = sla_minutes
        self._echo = echo
        self.shown: list[tuple[str, str]] = []  # (card key, text), for the demo's story

    def post(self, card: CardToPost) -> Posted:
        """Render the card as text; it lands in the 'sandbox' channel."""
        self._show(card, "card")
        return Posted(channel="sandbox", ts=f"sandbox.{card.card_id}")

    def update(self, card: CardToPost, *, channel: str, ts: str) -> None:
        """Render the card's new state."""
        self._show(card, "card updated")

    def _show(self, card: CardToPost, what: str) -> None:
        managers = sorted(self._settings.manager_ids)
        text = _masked(view_text(render_card(card, managers=managers, sla_minutes=self._sla)), card)
        self.shown.append((card.key, text))
        if self._echo is not None:
            self._echo(text)
        else:
            logger.info("%s %s (Slack is not set up):\n%s", what, card.key, text)


def _masked(text: str, card: CardToPost) -> str:
    """The card's text with the borrower's phone and email hidden: it goes to a log, not to
    the loan officer (a dialable '(415) 555-0123' is beyond the log filter's E.164 pattern)."""
    subject = card.subject
    addresses = []
    if subject.reply is not None:
        addresses.append(subject.reply.sender)
    if subject.task is not None:
        addresses.extend(a for a in (subject.task.phone, subject.task.email) if a)
    for address in addresses:
        if "@" in address:
            text = text.replace(address, mask_email(address))
        else:
            text = text.replace(phone_words(address), mask_phone(address))
    return mask_contact_details(text)
