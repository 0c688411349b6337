"""The running system's parts, built once from settings: database, clock, senders."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, parse_now
from core.config import Config, load_config
from core.db import make_engine, make_sessionmaker
from core.inbound.router import ReplyRouter
from core.migrate import pending_revisions, upgrade
from core.privacy import MaskContactDetails
from core.settings import Settings, SettingsError, load_settings
from core.tracks.config import Track, load_tracks
from core.tracks.lint import TemplateLintError, lint_templates

# The senders, the dispatcher and the rate feeds are imported where they are built, so a
# command that sends nothing (`segments`, `batches`) does not pay ~0.6 s to import them.
if TYPE_CHECKING:
    from slack_bolt import App

    from core.cards.posting import CardPoster, PostingOptions
    from core.channels.base import EmailSender, SmsSender
    from core.channels.ratelimit import TokenBucket
    from core.outreach.dispatcher import DispatchOptions
    from core.rates.feeds import RateFeed


@dataclass
class Runtime:
    """Settings plus the objects every command and process shares."""

    settings: Settings
    clock: Clock
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        """The database engine (created on first use)."""
        return self._engine or make_engine(self.settings.DATABASE_URL)

    @cached_property
    def config(self) -> Config:
        """Triggers, math, rates and compliance configuration (defaults + WINBACK_CONFIG)."""
        return load_config(self.settings.WINBACK_CONFIG)

    @cached_property
    def tracks(self) -> Mapping[str, Track]:
        """The tracks with the operator's overrides; refuses to start on any template lint."""
        tracks = load_tracks(self.config.tracks or None)
        problems = lint_templates(
            max_sms_segments=self.config.compliance.max_sms_segments,
            no_cost_allowed=self.config.compliance.no_cost_claims_allowed,
        )
        if problems:
            raise TemplateLintError(problems)
        return tracks

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, on a schema that is known to be current."""
        self._ensure_schema()
        return make_sessionmaker(self.engine)

    @cached_property
    def sms_sender(self) -> SmsSender:
        """Twilio when TWILIO_ACCOUNT_SID/AUTH_TOKEN are set (TWILIO_API_URL honored), else the
        sandbox outbox."""
        from core.channels.sms import SandboxSmsSender, TwilioSmsSender

        s = self.settings
        if not s.sms_enabled:
            return SandboxSmsSender()
        return TwilioSmsSender(
            account_sid=s.TWILIO_ACCOUNT_SID or "",
            auth_token=s.TWILIO_AUTH_TOKEN or "",
            from_number=s.TWILIO_FROM_NUMBER,
            messaging_service_sid=s.TWILIO_MESSAGING_SERVICE_SID,
            api_url=s.TWILIO_API_URL,
        )

    @cached_property
    def email_sender(self) -> EmailSender:
        """SMTP (one reused connection) when SMTP_URL is set, else the sandbox outbox."""
        from core.channels.email import SandboxEmailSender, SmtpEmailSender

        if self.settings.SMTP_URL:
            return SmtpEmailSender(self.settings.SMTP_URL, clock=self.clock)
        return SandboxEmailSender(clock=self.clock)

    @cached_property
    def sms_rate_limiter(self) -> TokenBucket:
        """Paces SMS for the carrier: WINBACK_SMS_PER_SECOND (default 10 per second)."""
        from core.channels.ratelimit import TokenBucket

        rate = self.settings.WINBACK_SMS_PER_SECOND
        return TokenBucket(rate_per_second=rate, burst=max(1, int(rate)))

    @cached_property
    def rate_feed(self) -> RateFeed:
        """Where today's rates come from (RATE_FEED_URL, FRED API with a key, FRED CSV)."""
        from core.rates.feeds import feed_from_settings

        return feed_from_settings(
            rate_feed_url=self.settings.RATE_FEED_URL, fred_api_key=self.settings.FRED_API_KEY
        )

    @cached_property
    def card_poster(self) -> CardPoster:
        """Slack when SLACK_BOT_TOKEN is set, else the log (the sandbox, and the demo)."""
        from bot.slack_cards import LogCardPoster, SlackCardPoster

        sla = self.config.replies.claim_sla_minutes
        if self.settings.slack_enabled:
            from bot.slack_app import web_client

            client = web_client(self.settings)
            return SlackCardPoster(client=client, settings=self.settings, sla_minutes=sla)
        return LogCardPoster(settings=self.settings, sla_minutes=sla)

    def posting_options(self, owner: str) -> PostingOptions:
        """How this process posts cards (its leases are recorded as `owner`)."""
        from core.cards.posting import PostingOptions
        from core.cards.subjects import subject_renderer
        from core.digest import digest_renderer

        render = digest_renderer(subject_renderer(self.settings), self.config)
        return PostingOptions(poster=self.card_poster, owner=owner, render=render)

    @cached_property
    def reply_router(self) -> ReplyRouter:
        """Where stored warm replies go: a card in the LO's Slack channel (the log without
        Slack), posted at once; the worker's posting job retries whatever did not land."""
        from bot.worker import worker_id
        from core.cards.router import CardReplyRouter

        return CardReplyRouter(
            session_factory=lambda: self.sessions(), options=self.posting_options(worker_id()),
            clock=self.clock,
        )  # fmt: skip

    @cached_property
    def slack_app(self) -> App:
        """The Bolt app (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET required)."""
        from bot.slack_app import SlackDeps, create_app
        from bot.worker import worker_id

        deps = SlackDeps(
            settings=self.settings, sessions=lambda: self.sessions(), clock=self.clock,
            config=self.config, tracks=lambda: self.tracks,
            posting=self.posting_options(worker_id()),
        )  # fmt: skip
        return create_app(self.settings, deps)

    def dispatch_options(
        self, *, worker_id: str, limit: int = 100_000, stop: threading.Event | None = None
    ) -> DispatchOptions:
        """What a dispatch pass of this process sends with: senders, pacing, the live clock."""
        from bot.preflight import refuse_dead_links
        from core.outreach.dispatcher import DispatchOptions

        # Every command and process that sends (dispatch, tick, worker) gets its options here,
        # so this is where live sending is refused before the first message goes out.
        refuse_dead_links(self)
        return DispatchOptions(
            settings=self.settings,
            config=self.config,
            tracks=self.tracks,
            sms=self.sms_sender,
            email=self.email_sender,
            worker_id=worker_id,
            limit=limit,
            rate_limiter=self.sms_rate_limiter,
            stop=stop,
            clock=self.clock.now,
        )

    def _ensure_schema(self) -> None:
        # The embedded SQLite default has one user, so it migrates itself; a shared
        # PostgreSQL is migrated deliberately by the operator (Procfile `release`).
        with self.engine.connect() as connection:
            behind = pending_revisions(connection)
        if not behind:
            return
        if self.engine.dialect.name == "sqlite":
            upgrade(self.settings.DATABASE_URL)
        else:
            raise SettingsError(
                "setting DATABASE_URL points at a schema that is not up to date: "
                "run `winback db upgrade`"
            )


# Client libraries that log whole request and response bodies (a card's text, a borrower's
# words, an SMS's To) when their loggers are at DEBUG: never below these levels, whatever the
# root's, since masking catches phones and emails but not what a borrower wrote.
QUIET_CLIENTS = {
    "slack_sdk": logging.INFO,
    "slack_bolt": logging.INFO,
    "twilio.http_client": logging.WARNING,  # at INFO it logs every request's headers
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "urllib3": logging.WARNING,
    "aiosmtpd": logging.WARNING,
}


def mask_logs(level: int = logging.INFO) -> None:
    """Log to stderr, with phone numbers and emails masked on every root handler."""
    for name, floor in QUIET_CLIENTS.items():
        client = logging.getLogger(name)
        client.setLevel(max(floor, client.level))  # a stricter level set by an operator stays
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    for handler in root.handlers:
        if not any(isinstance(f, MaskContactDetails) for f in handler.filters):
            handler.addFilter(MaskContactDetails())


def build_runtime(now: str | None = None) -> Runtime:
    """Read settings and build the runtime; `now` (or WINBACK_NOW) fixes the clock."""
    settings = load_settings()
    mask_logs(logging.WARNING)
    return Runtime(settings=settings, clock=parse_now(now or settings.WINBACK_NOW))
