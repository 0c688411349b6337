"""A Twilio 5xx other than 503 may come after the text was queued: the dispatcher marks it
unknown and never sends it again, while a 503 is still retried."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.audit.models import AuditEvent
from core.channels.email import SandboxEmailSender
from core.outreach import models as outbox
from core.tracks.config import load_tracks
from tests.fakes.twilio_api import Answer, FakeTwilio, fake_twilio  # noqa: F401
from tests.outreach import (
    NOW,
    approved_book,
    live_settings,
    run_dispatch,
    sessions,  # noqa: F401
    twilio_sender,
)

# One text and nothing else, so no later touch sends to the fake.
TEXT_ONLY = load_tracks(
    {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "intro"}]}}
)


@pytest.mark.parametrize("status", [500, 502, 504])
def test_an_ambiguous_twilio_error_ends_unknown_and_is_never_sent_again(
    status: int,
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}], tracks=TEXT_ONLY)
    (person,) = book.contacts
    fake_twilio.respond_to(book.contact(person).phone or "", Answer(status=status, times=1))
    settings = live_settings(database_url, fake_twilio)
    sms, email = twilio_sender(fake_twilio), SandboxEmailSender()

    first = run_dispatch(sessions, settings, sms, email, tracks=TEXT_ONLY)
    # Later passes (Twilio answering normally again) must not send a twin.
    for later in (NOW + timedelta(minutes=2), NOW + timedelta(hours=1), NOW + timedelta(days=1)):
        again = run_dispatch(sessions, settings, sms, email, now=later, tracks=TEXT_ONLY)
        assert (again.sent, again.retrying, again.unknown) == (0, 0, 0)

    assert (first.unknown, first.retrying, first.sent) == (1, 0, 0)
    (message,) = book.messages(person)
    assert (message.status, message.rule, message.attempts) == (outbox.UNKNOWN, "answer_lost", 1)
    assert message.details is not None
    assert message.details["provider"].startswith(
        f"Twilio answered {status}: the message may have been queued; not resent"
    )
    assert fake_twilio.requests_seen == 1
    with sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("message.%"))
        ).all()
    assert "message.unknown" in actions and "message.retry" not in actions


def test_twilio_unavailable_is_still_retried(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}], tracks=TEXT_ONLY)
    (person,) = book.contacts
    fake_twilio.respond_to(book.contact(person).phone or "", Answer(status=503, times=1))
    settings = live_settings(database_url, fake_twilio)
    sms, email = twilio_sender(fake_twilio), SandboxEmailSender()

    first = run_dispatch(sessions, settings, sms, email, tracks=TEXT_ONLY)
    due = book.messages(person)[0].due_at
    second = run_dispatch(sessions, settings, sms, email, now=due, tracks=TEXT_ONLY)

    assert (first.retrying, first.unknown, second.sent) == (1, 0, 1)
    assert fake_twilio.requests_seen == 2 and len(fake_twilio.messages) == 1
    assert book.messages(person)[0].status == outbox.SENT
