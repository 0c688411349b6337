"""The demo's runtime and its borrowers' phones: texts posted to the real web app, in-process.

`winback demo` builds the same Starlette app as `winback web` (bot.web.create_web_app), serves
it in-process through httpx's ASGI transport, and posts each borrower's text to
`POST /twilio/sms` with a genuine X-Twilio-Signature, computed with Twilio's RequestValidator
over the demo's own auth token. Nothing can leave the machine: the demo's settings have no
Twilio account, no SMTP and no Slack, so every sender is a sandbox and every card goes to the
terminal through LogCardPoster's echo.
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from bot.runtime import Runtime
from bot.slack_cards import LogCardPoster
from core.settings import Settings

if TYPE_CHECKING:
    from core.cards.posting import CardPoster

DEMO_ACCOUNT_SID = "AC" + "d" * 32  # only ever in the form the demo posts to itself
DEMO_FROM_NUMBER = "+15005550006"  # Twilio's documented test "From" number


# The sample book's brokerage and loan officers (no NMLS IDs) are the story's, whatever
# brokerage the operator configured: its messages sign off as the sandbox's sample brokerage.
COMPANY = ("COMPANY_NAME", "COMPANY_NMLS_ID", "COMPANY_ADDRESS", "COMPANY_LICENSING",
           "COMPANY_SUPPORT", "EMAIL_FROM")  # fmt: skip


def demo_settings(base: Settings, database_url: str) -> Settings:
    """The operator's settings with everything that could send or post removed, the demo's
    database, and an auth token of the demo's own to sign its borrowers' texts with."""
    return base.model_copy(
        update={
            **dict.fromkeys(COMPANY),
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": None,
            "SLACK_SIGNING_SECRET": None,
            "SLACK_APP_TOKEN": None,
            "TWILIO_ACCOUNT_SID": None,  # no account: SMS stay in the sandbox outbox
            "TWILIO_AUTH_TOKEN": secrets.token_hex(16),  # verifies inbound webhooks only
            "TWILIO_MESSAGING_SERVICE_SID": None,
            "SMTP_URL": None,
        }
    )


class CardScreen:
    """LogCardPoster's echo: cards land here (from the router's threads too), and the story
    takes them one by one, so the terminal shows each card after the text that made it."""

    def __init__(self) -> None:
        self._cards: queue.Queue[tuple[float, str]] = queue.Queue()

    def echo(self, text: str) -> None:
        """A card was posted or re-rendered."""
        self._cards.put((time.perf_counter(), text))

    def next(self, timeout: float = 5.0) -> tuple[float, str] | None:
        """The next card shown (when, by perf_counter, and its text), None if none comes."""
        try:
            return self._cards.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[str]:
        """Every card shown and not taken yet."""
        cards = []
        while not self._cards.empty():
            cards.append(self._cards.get_nowait()[1])
        return cards


@dataclass
class DemoRuntime(Runtime):
    """The runtime with the terminal as its Slack: cards are echoed instead of logged."""

    echo: Callable[[str], None] | None = None

    @cached_property
    def card_poster(self) -> CardPoster:
        """LogCardPoster with the demo's echo (the demo's settings never enable Slack)."""
        sla = self.config.replies.claim_sla_minutes
        return LogCardPoster(settings=self.settings, sla_minutes=sla, echo=self.echo)


class InProcessWeb:
    """The web app answering HTTP in this process, through httpx's ASGI transport (no port,
    no server). The app's shutdown is not run: the caller closes the reply router itself."""

    def __init__(self, app: Starlette) -> None:
        self._runner = asyncio.Runner()  # one event loop for every request, as uvicorn has
        transport = httpx.ASGITransport(app=app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://winback-demo")

    def post(self, path: str, *, data: dict[str, str], headers: dict[str, str]) -> httpx.Response:
        """POST a form and wait for the answer."""
        return self._runner.run(self._client.post(path, data=data, headers=headers))

    def close(self) -> None:
        """Close the client and its event loop."""
        self._runner.run(self._client.aclose())
        self._runner.close()


@dataclass(frozen=True)
class Answer:
    """What the web app answered a text: the HTTP status and our TwiML message, if any."""

    status: int
    message: str | None


class BorrowerPhones:
    """Texts from borrowers, posted to /twilio/sms the way Twilio posts them."""

    PATH = "/twilio/sms"

    def __init__(self, web: InProcessWeb, settings: Settings) -> None:
        self._web = web
        self._url = settings.PUBLIC_BASE_URL.rstrip("/") + self.PATH  # what Twilio signs
        self._validator = RequestValidator(settings.TWILIO_AUTH_TOKEN or "")
        self._to = settings.TWILIO_FROM_NUMBER or DEMO_FROM_NUMBER

    def text(
        self, sender: str, words: str, *, message_sid: str | None = None
    ) -> tuple[str, Answer]:
        """Post one text (a retry when `message_sid` repeats an earlier one); its sid, answer."""
        sid = message_sid or f"SM{uuid.uuid4().hex}"
        form = {"MessageSid": sid, "AccountSid": DEMO_ACCOUNT_SID, "From": sender,
                "To": self._to, "Body": words, "NumMedia": "0"}  # fmt: skip
        signature = self._validator.compute_signature(self._url, form)
        response = self._web.post(self.PATH, data=form, headers={"X-Twilio-Signature": signature})
        return sid, Answer(response.status_code, twiml_message(response.text))


def twiml_message(body: str) -> str | None:
    """The text of the one <Message> in a TwiML answer; None for an empty <Response/>."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    message = root.find("Message")
    return message.text if message is not None and message.text else None
