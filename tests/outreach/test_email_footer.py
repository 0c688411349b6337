"""The email footer carries the operator's licensing line and support contact, as configured,
and the send-time check knows when a rendering lacks them."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.compliance.disclosures import missing_disclosures
from core.outreach.context import company_from_settings
from core.tracks.lint import sample_context
from core.tracks.render import TEMPLATES_FOLDER, render_step
from tests.fakes.twilio_api import FakeTwilio, fake_twilio  # noqa: F401
from tests.outreach import (
    COMPANY,
    SmtpServer,
    approved_book,
    live_settings,
    run_dispatch,
    sandbox_settings,
    sessions,  # noqa: F401
    smtp_server,  # noqa: F401
    twilio_sender,
)

LICENSING = COMPANY["COMPANY_LICENSING"]
SUPPORT = COMPANY["COMPANY_SUPPORT"]


def test_a_live_email_carries_the_configured_licensing_line_and_support_contact(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
    smtp_server: SmtpServer,
) -> None:
    # No SMS consent: her first touch is the intro email, sent at once.
    book = approved_book(sessions, [{"sms_consent": "unknown"}])
    settings = live_settings(database_url, fake_twilio, smtp_server.url)
    email = smtp_server.sender()

    report = run_dispatch(sessions, settings, twilio_sender(fake_twilio), email)
    email.close()

    assert report.sent == 1
    (received,) = smtp_server.mailbox.received
    text = received.message.get_body(("plain",))
    html = received.message.get_body(("html",))
    assert text is not None and html is not None
    for part in (text.get_content(), html.get_content()):
        assert LICENSING in part
        assert f"Questions? {SUPPORT}" in part
    (sent,) = [m for m in book.messages() if m.channel == "email" and m.status == "sent"]
    company = company_from_settings(settings)
    assert company.required_lines("email") == (LICENSING, SUPPORT)
    assert (
        missing_disclosures(
            channel="email", text=sent.body or "", required=company.required_lines("email")
        )
        == ()
    )


def test_a_sandbox_email_carries_the_placeholder_lines_and_passes_the_check(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{"sms_consent": "unknown"}])
    settings = sandbox_settings(database_url)

    report = run_dispatch(sessions, settings, SandboxSmsSender(), SandboxEmailSender())

    assert report.sent == 1
    (sent,) = [m for m in book.messages() if m.channel == "email" and m.body]
    company = company_from_settings(settings)
    assert company.sandbox and "Sample licensing line (sandbox)." in (sent.body or "")
    required = company.required_lines("email")
    assert missing_disclosures(channel="email", text=sent.body or "", required=required) == ()


def test_a_footer_that_drops_the_licensing_line_fails_the_send_time_check(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_FOLDER, folder)
    footer = folder / "_shared" / "footer.txt.j2"
    footer.write_text(footer.read_text().replace("{{ company.licensing }} ", ""))
    context = sample_context("refinance")
    context["company"] |= {"licensing": LICENSING, "support": SUPPORT}

    rendered = render_step(
        track="refinance", template="intro", channel="email", context=context, folder=folder
    )
    text = rendered.email_text or ""

    assert SUPPORT in text and LICENSING not in text
    assert missing_disclosures(channel="email", text=text) == ()  # the fixed phrases are there
    assert missing_disclosures(channel="email", text=text, required=(LICENSING, SUPPORT)) == (
        LICENSING,
    )
