"""The web process over real HTTP: a live uvicorn on 127.0.0.1, signed like Twilio signs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import uvicorn
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator

from bot.runtime import Runtime
from bot.web import create_web_app
from core.inbound.router import ReplyNotice
from core.settings import Settings, load_settings
from tests.outreach import COMPANY, NOW

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-twilio-auth-token-0123456789"
FROM_NUMBER = "+14155550100"
INBOUND_SECRET = "test-inbound-secret"
SECRET_KEY = "test-signing-key"


@dataclass
class MovableClock:
    """A clock the test moves by hand (the web process reads it on every request)."""

    at: datetime = NOW

    def now(self) -> datetime:
        """The current test time."""
        return self.at

    def advance(self, **delta: float) -> None:
        """Move the clock forward."""
        self.at += timedelta(**delta)


@dataclass
class RecordingRouter:
    """A ReplyRouter that remembers what it was told (step 6 replaces it with Slack)."""

    notices: list[ReplyNotice] = field(default_factory=list)

    def reply_received(self, notice: ReplyNotice) -> None:
        """Remember the notice."""
        self.notices.append(notice)


def web_settings(database_url: str, base_url: str, **extra: str) -> Settings:
    """Settings as a live install has them: Twilio, inbound email secret, signing key."""
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": base_url,
        "WINBACK_SECRET_KEY": SECRET_KEY,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_URL": "http://127.0.0.1:9",  # nothing in these tests may call Twilio
        "EMAIL_INBOUND_SECRET": INBOUND_SECRET,
        **COMPANY,
        **extra,
    }
    return load_settings(**values)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveWeb:
    """`winback web` running in a thread on 127.0.0.1, with the test's clock and router."""

    def __init__(
        self,
        database_url: str,
        *,
        public_base_url: str | None = None,
        real_router: bool = False,
        **extra: str,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # What Twilio signs against: PUBLIC_BASE_URL + path (a TLS proxy's https URL, say).
        self.public_base_url = public_base_url or self.url
        self.settings = web_settings(database_url, self.public_base_url, **extra)
        self.clock = MovableClock()
        self.router = RecordingRouter()
        self.runtime = Runtime(settings=self.settings, clock=self.clock)
        if not real_router:  # the product's router posts cards (tests/slack use it)
            self.runtime.__dict__["reply_router"] = self.router  # the cached_property, replaced
        self.app = create_web_app(self.runtime)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.http = httpx.Client(base_url=self.url, timeout=10.0, follow_redirects=False)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on the web process's database."""
        return self.runtime.sessions

    def start(self) -> LiveWeb:
        """Start serving and wait until /healthz answers."""
        self.runtime.sessions  # noqa: B018 - build the schema before the first request
        self.thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.02)
        raise RuntimeError("the web process did not start")

    def stop(self) -> None:
        """Stop the server and close the client."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
        router = self.runtime.__dict__.get("reply_router")
        if hasattr(router, "close"):
            router.close()  # posts in flight finish before the database goes
        self.http.close()
        self.runtime.engine.dispose()

    def twilio_post(
        self,
        path: str,
        form: Mapping[str, str],
        *,
        token: str = AUTH_TOKEN,
        signed_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST a form the way Twilio does, signed with `token` over PUBLIC_BASE_URL + path."""
        url = signed_url or self.public_base_url.rstrip("/") + path
        signature = RequestValidator(token).compute_signature(url, dict(form))
        sent = {"X-Twilio-Signature": signature, **(headers or {})}
        return self.http.post(path, data=dict(form), headers=sent)


def live_web(database_url: str, **kwargs: Any) -> Iterator[LiveWeb]:
    """Yield a started LiveWeb and stop it afterwards (for fixtures)."""
    web = LiveWeb(database_url, **kwargs).start()
    try:
        yield web
    finally:
        web.stop()


@dataclass(frozen=True)
class SentText:
    """A text the dispatcher really sent (through the fake Twilio): who, and its Twilio sid."""

    message_id: int
    contact_id: int
    phone: str
    sid: str


def send_texts(
    sessions: sessionmaker[Session], database_url: str, twilio: Any, people: int
) -> list[SentText]:
    """`people` Californians with a text due, dispatched for real through `twilio` (a started
    FakeTwilio); their messages as the outbox holds them, oldest first."""
    from sqlalchemy import select

    from core.book.models import Contact
    from core.channels.email import SandboxEmailSender
    from core.outreach.models import Message
    from core.tracks.config import load_tracks
    from tests.outreach import live_settings, run_dispatch, seed_due_texts, twilio_sender

    seed_due_texts(sessions, people)
    texts = load_tracks(
        {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "intro"}]}}
    )
    settings = live_settings(database_url, twilio)
    report = run_dispatch(
        sessions, settings, twilio_sender(twilio), SandboxEmailSender(), tracks=texts
    )
    assert report.sent == people, report.as_json()
    with sessions() as session:
        rows = session.execute(
            select(Message.id, Message.contact_id, Contact.phone, Message.provider_id)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.provider_id.is_not(None))
            .order_by(Message.id)
        ).all()
    return [SentText(m, c, phone or "", sid or "") for m, c, phone, sid in rows]
