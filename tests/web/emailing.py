"""Real emails for the web tests: a book dispatched by the real dispatcher through aiosmtpd,
with the links signed for the live web process, and SendGrid-shaped inbound posts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from html import unescape
from typing import Any

import httpx
from sqlalchemy import select

from core.channels.sms import SandboxSmsSender
from core.inbound.models import Engagement, InboundEvent, Reply
from tests.outreach import Book, SmtpServer, approved_book, run_dispatch
from tests.web import INBOUND_SECRET, LiveWeb, web_settings

EMAIL_FROM = "Maple Mortgage <loans@maple.example.com>"


@dataclass
class Sent:
    """The emails the dispatcher sent for a book, as the mail server received them."""

    book: Book
    emails: list[EmailMessage]

    def html(self, index: int = 0) -> str:
        """The HTML part of one email."""
        part = self.emails[index].get_body(("html",))
        assert part is not None
        return str(part.get_content())

    def text(self, index: int = 0) -> str:
        """The plain-text part of one email."""
        part = self.emails[index].get_body(("plain",))
        assert part is not None
        return str(part.get_content())

    def reply_to(self, index: int = 0) -> str:
        """The Reply-To address (reply+<token>@domain)."""
        return str(self.emails[index]["Reply-To"])

    def unsubscribe_url(self, index: int = 0) -> str:
        """The List-Unsubscribe URL."""
        return str(self.emails[index]["List-Unsubscribe"]).strip("<>")


def send_emails(web: LiveWeb, smtp: SmtpServer, people: list[dict[str, Any]]) -> Sent:
    """One intro email per person (no SMS consent, so email goes first), really sent."""
    book = approved_book(web.sessions, [{"sms_consent": "unknown", **p} for p in people])
    settings = web_settings(
        str(web.settings.DATABASE_URL), web.public_base_url,
        SMTP_URL=smtp.url, EMAIL_FROM=EMAIL_FROM,
    )  # fmt: skip
    sender = smtp.sender()
    try:
        report = run_dispatch(web.sessions, settings, SandboxSmsSender(), sender)
    finally:
        sender.close()
    assert report.sent == len(people), report
    return Sent(book, [received.message for received in smtp.mailbox.received])


def hrefs(html: str) -> list[str]:
    """Every href in an HTML body, unescaped."""
    return [unescape(url) for url in re.findall(r'href="([^"]+)"', html)]


def path_of(url: str, web: LiveWeb) -> str:
    """The path of one of our URLs (they start with PUBLIC_BASE_URL)."""
    assert url.startswith(web.public_base_url), url
    return url[len(web.public_base_url) :]


def inbound(
    web: LiveWeb,
    *,
    sender: str,
    to: str,
    text: str,
    subject: str = "Re: Pat, your rate",
    headers: str = "",
    secret: str | None = INBOUND_SECRET,
    **extra: str,
) -> httpx.Response:
    """POST a SendGrid Inbound Parse form (multipart, as SendGrid sends it), basic auth."""
    fields = {"from": sender, "to": to, "subject": subject, "text": text, "headers": headers}
    fields |= {"envelope": f'{{"to": ["{to}"], "from": "{sender}"}}', "SPF": "pass", **extra}
    files = {name: (None, value) for name, value in fields.items()}  # multipart/form-data
    auth = ("inbound", secret) if secret is not None else None
    return web.http.post("/email/inbound", files=files, auth=auth)


def ledger(web: LiveWeb, source: str) -> list[InboundEvent]:
    """The ledger rows of one source."""
    with web.sessions() as session:
        query = select(InboundEvent).where(InboundEvent.source == source)
        return list(session.scalars(query.order_by(InboundEvent.id)))


def replies(web: LiveWeb) -> list[Reply]:
    """Every stored warm reply."""
    with web.sessions() as session:
        return list(session.scalars(select(Reply).order_by(Reply.id)))


def engagements(web: LiveWeb) -> list[Engagement]:
    """Every recorded open, click and visit."""
    with web.sessions() as session:
        return list(session.scalars(select(Engagement).order_by(Engagement.id)))
