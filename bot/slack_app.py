"""The Slack app (Bolt): built by `create_app`, served at POST /slack/events or over Socket Mode.

There is no module-level App: tests build their own against the fake Web API. Request
verification (signature and timestamp) is Bolt's and is never turned off. Listeners get the
shared parts through `context["winback"]` (a middleware puts them there), and open their own
database session: lazy listeners outlive the request, so a per-request session would close
under them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.orm import Session

from core.cards.posting import PostingOptions
from core.clock import Clock
from core.config import Config
from core.settings import Settings, SettingsError
from core.tracks.config import Track

logger = logging.getLogger(__name__)


@dataclass
class SlackDeps:
    """What every Slack listener may use: settings, the database, the clock, cards."""

    settings: Settings
    sessions: Callable[[], Session]
    clock: Clock
    config: Config
    tracks: Callable[[], Any]  # the tracks (built lazily: only approvals need them)
    posting: PostingOptions | None = None  # re-renders cards after a button

    def __deepcopy__(self, memo: dict[int, Any]) -> SlackDeps:
        # Bolt deep-copies the context for lazy listeners; these parts are shared, not copied.
        return self

    def is_manager(self, user_id: str) -> bool:
        """Whether this Slack user may approve, reject, pause and resume."""
        return user_id in self.settings.manager_ids

    def track_map(self) -> dict[str, Track]:
        """The tracks with the operator's overrides."""
        return dict(self.tracks())


def web_client(settings: Settings) -> WebClient:
    """The Web API client (SLACK_API_URL honored); no automatic retries: the callers decide."""
    base_url = settings.SLACK_API_URL if settings.SLACK_API_URL.endswith("/") else (
        settings.SLACK_API_URL + "/"
    )  # fmt: skip
    return WebClient(
        token=settings.SLACK_BOT_TOKEN, base_url=base_url, timeout=5, retry_handlers=[]
    )


def create_app(settings: Settings, deps: SlackDeps, *, client: WebClient | None = None) -> App:
    """The Bolt app with every handler registered."""
    from handlers.slack import register_all

    if not settings.SLACK_BOT_TOKEN or not settings.SLACK_SIGNING_SECRET:
        raise SettingsError("setting SLACK_BOT_TOKEN is required for the Slack app")
    app = App(
        client=client or web_client(settings),
        signing_secret=settings.SLACK_SIGNING_SECRET,
        # Listeners finish before the HTTP answer; slow work goes to lazy listeners.
        process_before_response=True,
        # Every request's signature and timestamp are checked (here and in dispatch()); never off.
        request_verification_enabled=True,
        # This flag is not request verification: it only skips calling auth.test while the app
        # is built, so a Slack outage at start-up cannot keep the Twilio webhooks from serving.
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )

    @app.middleware
    def winback_context(context: Any, next: Callable[[], BoltResponse]) -> BoltResponse:
        context["winback"] = deps
        return next()

    @app.error
    def answer_errors(error: Exception, body: dict[str, Any], logger: logging.Logger) -> None:
        # Never a stack trace to the user: the listener answered (or Slack shows its own error).
        logger.exception("Slack request failed: %s", type(error).__name__)

    register_all(app)
    return app


def dispatch(
    app: App, *, body: bytes, headers: dict[str, str], query: str, signing_secret: str
) -> BoltResponse:
    """Run one Slack HTTP request through the app (called in a worker thread).

    The signature is checked before the body is parsed: Bolt parses in its request's
    constructor, and a malformed body must get a clean 400 (signed) or 401 (not), never a 500.
    """
    if not SignatureVerifier(signing_secret).is_valid_request(body, headers):
        return BoltResponse(status=401, body='{"error": "invalid request"}')
    try:
        request = BoltRequest(body=body.decode("utf-8"), query=query, headers=headers)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return BoltResponse(status=400, body='{"error": "malformed request body"}')
    return app.dispatch(request)
