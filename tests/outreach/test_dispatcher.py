"""The dispatcher end to end: an approved batch reaches the fake Twilio and a real SMTP server
exactly as the compliance rules allow, with every hold and suppression explained by its rule."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.audit.models import AuditEvent
from core.book.models import OPTED_OUT, Contact
from core.channels.base import SendResult
from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.consent.models import Suppression
from core.outreach import models as outbox
from core.outreach.dispatcher import dispatch
from core.outreach.models import Enrollment, TemplateVersion
from core.outreach.optout import add_suppression, record_opt_out
from core.outreach.switches import pause, resume
from core.tokens import REPLY, SAVINGS, UNSUBSCRIBE, verify
from core.tracks.config import load_tracks
from tests.fakes.twilio_api import Answer, FakeTwilio, fake_twilio  # noqa: F401
from tests.outreach import (
    BASE_URL,
    NOW,
    SmtpServer,
    approved_book,
    dispatch_options,
    live_settings,
    run_dispatch,
    sandbox_settings,
    sessions,  # noqa: F401
    smtp_server,  # noqa: F401
    twilio_sender,
)

DAY = timedelta(days=1)
# One text and nothing else, so no other touch interferes through the caps.
TEXT_ONLY = load_tracks(
    {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "intro"}]}}
)


def _audit_reasons(factory: sessionmaker[Session], action: str) -> list[str | None]:
    with factory() as session:
        return list(
            session.scalars(
                select(AuditEvent.reason).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


def test_an_approved_batch_reaches_twilio_and_smtp_as_the_rules_allow(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
    smtp_server: SmtpServer,
) -> None:
    book = approved_book(
        sessions,
        [{}, {}, {"sms_consent": "unknown"}, {}],  # the third person never agreed to texts
    )
    texted, also_texted, email_only, listed = book.contacts
    listed_phone = book.contact(listed).phone or ""
    with sessions() as session, session.begin():
        add_suppression(
            session=session, kind="phone", value=listed_phone, reason="manual", by="t", now=NOW
        )
    settings = live_settings(database_url, fake_twilio, smtp_server.url)
    sms, email = twilio_sender(fake_twilio), smtp_server.sender()

    first = run_dispatch(sessions, settings, sms, email)

    # Texts to the two consenting people; the third gets her intro by email at once (her text
    # was suppressed, so nothing counts against her cap); the listed phone gets no text.
    assert list(first.as_json())[:4] == ["sent", "held", "suppressed", "failed"]
    assert first.sent == 4
    assert first.suppressed == {"no_sms_consent": 1, "suppression_list": 1}
    # Everyone else's same-day email waits a day: at most one marketing message per 24 h.
    assert first.held == {"cap_24h": 2}
    phones = {book.contact(c).phone for c in (texted, also_texted)}
    assert {m.to for m in fake_twilio.messages} == phones
    assert len(fake_twilio.messages) == 2
    for text in fake_twilio.messages:
        assert text.status_callback == f"{BASE_URL}/twilio/status"
        assert "Maple Mortgage, NMLS 765432. Reply STOP to opt out" in text.body
        assert f"{BASE_URL}/s/" in text.body
    rcpts = sorted(r.rcpt_tos[0] for r in smtp_server.mailbox.received)
    assert rcpts == sorted([book.contact(email_only).email, book.contact(listed).email])
    message = smtp_server.mailbox.received[0].message
    assert message["List-Unsubscribe"].startswith(f"<{BASE_URL}/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    reply_to = parseaddr(message["Reply-To"])[1]
    assert reply_to.startswith("reply+") and reply_to.endswith("@maple.example.com")
    token = reply_to.removeprefix("reply+").partition("@")[0]
    subject = verify(secret="test-signing-key", purpose=REPLY, token=token, now=NOW, max_age=None)
    assert int(subject) in {m.id for m in book.messages()}
    text_part = message.get_body(("plain",))
    assert text_part is not None and "APR" in text_part.get_content()

    # The next day the held emails go, and nothing is ever sent twice.
    second = run_dispatch(sessions, settings, sms, email, now=NOW + DAY)
    assert second.sent == 2 and second.held == {} and second.suppressed == {}
    assert len(fake_twilio.messages) == 2
    assert len(smtp_server.mailbox.received) == 4
    assert len(smtp_server.mailbox.peers) == 1  # one reused SMTP connection
    statuses = sorted(m.status for m in book.messages() if m.step <= 2)
    assert statuses == ["sent"] * 6 + ["suppressed"] * 2
    email.close()


def test_a_sent_message_keeps_its_text_template_version_and_signed_links(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}])
    settings = live_settings(database_url, fake_twilio)

    run_dispatch(sessions, settings, twilio_sender(fake_twilio), SandboxEmailSender())

    sms = book.messages()[0]
    assert sms.status == outbox.SENT and sms.sent_at == NOW
    assert sms.provider_id == fake_twilio.messages[0].sid
    assert sms.body == fake_twilio.messages[0].body
    with sessions() as session:
        version = session.get(TemplateVersion, sms.template_version_id)
        assert version is not None and "refinance/intro.sms.j2" in version.source
        sent = session.scalars(select(AuditEvent).where(AuditEvent.action == "message.sent")).one()
    assert book.contact(book.contacts[0]).phone not in str(sent.details)  # masked
    link = sms.body.split(f"{BASE_URL}/s/")[1].split()[0]
    assert verify(secret="test-signing-key", purpose=SAVINGS, token=link, now=NOW, max_age=None)
    with pytest.raises(ValueError):
        verify(secret="test-signing-key", purpose=UNSUBSCRIBE, token=link, now=NOW, max_age=None)


def test_quiet_hours_defer_to_the_next_open_minute(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    # Approved at 21:30 in California (04:30 UTC the next day): the federal window is shut.
    late = datetime(2026, 9, 25, 4, 30, tzinfo=UTC)
    book = approved_book(sessions, [{}], approved_at=late)
    settings = sandbox_settings(database_url)

    report = run_dispatch(sessions, settings, SandboxSmsSender(), SandboxEmailSender(), now=late)

    assert report.sent == 0
    assert report.held == {"quiet_hours_federal": 2}
    first = book.messages()[0]
    assert first.status == outbox.SCHEDULED and first.rule == "quiet_hours_federal"
    # 08:00 the next morning in California is 15:00 UTC.
    assert first.due_at == datetime(2026, 9, 25, 15, 0, tzinfo=UTC)
    assert _audit_reasons(sessions, "message.held") == ["quiet_hours_federal"] * 2

    early = run_dispatch(
        sessions, settings, SandboxSmsSender(), SandboxEmailSender(),
        now=datetime(2026, 9, 25, 14, 59, tzinfo=UTC),
    )  # fmt: skip
    assert early.sent == 0 and early.held == {}  # not due yet: not even looked at
    sandbox = SandboxSmsSender()
    morning = run_dispatch(sessions, settings, sandbox, SandboxEmailSender(), now=first.due_at)
    assert morning.sent == 1 and len(sandbox.sent) == 1


class _StopsSomeoneMidBatch:
    """A Twilio sender that, while the batch is going out, records a STOP from someone later in
    the same batch (as the inbound webhook would, in its own transaction)."""

    def __init__(self, inner: object, factory: sessionmaker[Session], who: int) -> None:
        self.inner = inner
        self.sessions = factory
        self.who = who
        self.calls = 0

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        self.calls += 1
        if self.calls == 1:
            with self.sessions() as session, session.begin():
                record_opt_out(
                    session=session, contact=session.get(Contact, self.who),
                    channel="sms", source="keyword", by="borrower", now=NOW, evidence="STOP",
                )  # fmt: skip
        return self.inner.send(to=to, body=body, status_callback=status_callback)  # type: ignore[attr-defined]


def test_a_stop_recorded_while_the_batch_is_dispatching_stops_everything_to_that_number(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}, {}, {}])
    first, stopper, last = book.contacts
    sms = _StopsSomeoneMidBatch(twilio_sender(fake_twilio), sessions, stopper)
    settings = live_settings(database_url, fake_twilio)

    report = run_dispatch(sessions, settings, sms, SandboxEmailSender())

    stopped_phone = book.contact(stopper).phone
    assert stopped_phone not in {m.to for m in fake_twilio.messages}
    assert {m.to for m in fake_twilio.messages} == {
        book.contact(first).phone,
        book.contact(last).phone,
    }
    assert report.sent == 2 and report.cancelled >= 1
    assert {m.status for m in book.messages(stopper)} == {outbox.CANCELLED}
    # And nothing later goes either, not even days on.
    later = run_dispatch(sessions, settings, sms, SandboxEmailSender(), now=NOW + 20 * DAY)
    assert stopped_phone not in {m.to for m in fake_twilio.messages}
    assert later.sent == 2  # the other two people's emails


def test_twilio_21610_records_a_global_opt_out_and_suppresses(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}])
    (person,) = book.contacts
    fake_twilio.respond_to(book.contact(person).phone or "", Answer(status=400, code=21610))
    settings = live_settings(database_url, fake_twilio)

    report = run_dispatch(sessions, settings, twilio_sender(fake_twilio), SandboxEmailSender())

    assert report.sent == 0 and report.suppressed == {"opted_out": 1}
    contact = book.contact(person)
    assert (contact.sms_consent, contact.email_consent) == (OPTED_OUT, OPTED_OUT)
    sms, email_step, *_ = book.messages(person)
    assert (sms.status, sms.rule, sms.error_code) == (outbox.SUPPRESSED, "opted_out", "21610")
    assert email_step.status == outbox.CANCELLED
    with sessions() as session:
        listed = session.scalars(select(Suppression.kind)).all()
        assert listed == ["phone"]
        enrollment = session.scalars(select(Enrollment)).one()
        assert enrollment.status == outbox.STOPPED


def test_an_invalid_number_is_marked_bad_and_suppressed(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}])
    (person,) = book.contacts
    fake_twilio.respond_to(book.contact(person).phone or "", Answer(status=400, code=21614))
    settings = live_settings(database_url, fake_twilio)

    report = run_dispatch(sessions, settings, twilio_sender(fake_twilio), SandboxEmailSender())

    assert report.suppressed == {"bad_number": 1}
    assert book.contact(person).phone_status == "bad"
    text, email = book.messages(person)[:2]
    assert (text.status, text.rule) == (outbox.SUPPRESSED, "bad_number")
    # A bad phone is not an opt-out: the email goes (the refused text counts for no cap).
    assert report.sent == 1 and email.status == outbox.SANDBOX
    assert len(fake_twilio.messages) == 0


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_outages_reschedule_with_backoff(
    status: int,
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}], tracks=TEXT_ONLY)
    (person,) = book.contacts
    phone = book.contact(person).phone or ""
    fake_twilio.respond_to(phone, Answer(status=status, code=20429 if status == 429 else None))
    settings = live_settings(database_url, fake_twilio)
    sms, email = twilio_sender(fake_twilio), SandboxEmailSender()

    first = run_dispatch(sessions, settings, sms, email, tracks=TEXT_ONLY)
    after_first = book.messages(person)[0]
    second = run_dispatch(sessions, settings, sms, email, now=after_first.due_at, tracks=TEXT_ONLY)
    after_second = book.messages(person)[0]

    assert (first.retrying, second.retrying) == (1, 1)
    assert (after_first.status, after_first.rule) == (outbox.SCHEDULED, "provider_retry")
    assert after_first.due_at == NOW + timedelta(minutes=2)
    assert after_second.due_at == after_first.due_at + timedelta(minutes=4)
    assert after_second.attempts == 2
    assert fake_twilio.requests_seen == 2 and fake_twilio.messages == []

    fake_twilio.respond_to(phone, Answer(status=201))  # the provider is back
    third = run_dispatch(sessions, settings, sms, email, now=after_second.due_at, tracks=TEXT_ONLY)
    assert third.sent == 1 and len(fake_twilio.messages) == 1


def test_retries_end_in_failed_after_five_attempts(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}], tracks=TEXT_ONLY)
    (person,) = book.contacts
    fake_twilio.respond_to(book.contact(person).phone or "", Answer(status=503))
    settings = live_settings(database_url, fake_twilio)
    sms = twilio_sender(fake_twilio)
    when = NOW
    for _ in range(5):
        run_dispatch(sessions, settings, sms, SandboxEmailSender(), now=when, tracks=TEXT_ONLY)
        when = book.messages(person)[0].due_at

    message = book.messages(person)[0]
    assert (message.status, message.rule, message.attempts) == ("failed", "retries_exhausted", 5)
    assert fake_twilio.requests_seen == 5


def test_a_lost_answer_is_unknown_and_never_resent(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    book = approved_book(sessions, [{}])
    (person,) = book.contacts
    fake_twilio.respond_to(
        book.contact(person).phone or "", Answer(delay=3.0, after_delay_still_record=True)
    )
    settings = live_settings(database_url, fake_twilio)
    sms = twilio_sender(fake_twilio, timeout=0.5)

    report = run_dispatch(sessions, settings, sms, SandboxEmailSender())
    an_hour_later = NOW + timedelta(hours=1)
    again = run_dispatch(sessions, settings, sms, SandboxEmailSender(), now=an_hour_later)

    assert report.unknown == 1 and report.sent == 0
    assert again.sent == 0 and again.unknown == 0
    message = book.messages(person)[0]
    assert (message.status, message.rule) == (outbox.UNKNOWN, "answer_lost")
    assert len(fake_twilio.messages) == 1  # Twilio did queue it: it must not get a twin
    assert fake_twilio.requests_seen == 1
    assert _audit_reasons(sessions, "message.unknown") == ["answer_lost"]


def test_a_render_failure_sends_nothing(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    # A loan officer without an NMLS ID: a live SMS cannot carry its required sign-off.
    book = approved_book(sessions, [{}], nmls_id=None)
    settings = live_settings(database_url, fake_twilio)

    report = run_dispatch(sessions, settings, twilio_sender(fake_twilio), SandboxEmailSender())

    assert report.sent == 0 and report.render_failed == 2
    message = book.messages()[0]
    assert message.status == outbox.RENDER_FAILED
    assert message.details is not None and "lo.nmls_id" in message.details["error"]
    assert message.body is None
    assert fake_twilio.messages == []


def test_sandbox_mode_keeps_messages_in_the_outbox_and_logs_no_contact_details(
    database_url: str, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    book = approved_book(sessions, [{}, {"sms_consent": "unknown"}], nmls_id=None)
    sms, email = SandboxSmsSender(), SandboxEmailSender()
    caplog.set_level(logging.DEBUG)

    report = run_dispatch(sessions, sandbox_settings(database_url), sms, email)

    assert report.sent == 2
    assert {m.status for m in book.messages() if m.step == 1} == {"sandbox", "suppressed"}
    assert len(sms.sent) == 1 and len(email.sent) == 1
    assert "Sample Brokerage, NMLS 000000" in sms.sent[0].body
    logged = caplog.text
    assert "sandbox sms to" in logged
    for contact_id in book.contacts:
        contact = book.contact(contact_id)
        assert contact.phone not in logged and (contact.email or "") not in logged
    assert "+1415***" in logged  # the masked form is what the log carries


def test_a_call_task_opens_for_the_loan_officer_and_completes_the_enrollment(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    tracks = load_tracks(
        {"refinance": {"steps": [{"delay_days": 0, "channel": "call_task", "template": "call"}]}}
    )
    book = approved_book(sessions, [{}], tracks=tracks)
    sms = SandboxSmsSender()

    report = run_dispatch(
        sessions, sandbox_settings(database_url), sms, SandboxEmailSender(), tracks=tracks
    )

    assert report.tasks == 1 and report.sent == 0 and sms.sent == []
    (task,) = book.messages()
    assert task.status == outbox.TASK_OPEN
    assert task.body is not None and task.body.startswith("Call Pat")
    with sessions() as session:
        assert session.scalars(select(Enrollment.status)).one() == outbox.COMPLETED


def test_pause_holds_everything_until_resumed(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{}, {}])
    settings = sandbox_settings(database_url)
    with sessions() as session, session.begin():
        pause(session=session, by="manager", reason="rate sheet error", now=NOW)

    held = run_dispatch(sessions, settings, SandboxSmsSender(), SandboxEmailSender())
    again = run_dispatch(sessions, settings, SandboxSmsSender(), SandboxEmailSender())

    assert held.sent == 0 and held.held == {"paused": 4}
    assert again.held == {"paused": 4}
    assert {m.rule for m in book.messages() if m.due_at <= NOW} == {"paused"}
    # Held once in the audit trail, not once per pass.
    assert _audit_reasons(sessions, "message.held") == ["paused"] * 4
    with sessions() as session, session.begin():
        resume(session=session, by="manager", now=NOW)
    sandbox = SandboxSmsSender()
    after = run_dispatch(sessions, settings, sandbox, SandboxEmailSender())
    assert after.sent == 2 and len(sandbox.sent) == 2


def test_only_due_messages_are_claimed(database_url: str, sessions: sessionmaker[Session]) -> None:
    book = approved_book(sessions, [{}])
    settings = sandbox_settings(database_url)

    run_dispatch(sessions, settings, SandboxSmsSender(), SandboxEmailSender())

    later_steps = [m for m in book.messages() if m.step >= 3]
    assert {m.status for m in later_steps} == {outbox.SCHEDULED}
    assert all(m.attempts == 0 and m.claimed_by is None for m in later_steps)
    with sessions() as session:
        counted = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "message.sent")
        )
    assert counted == 1


def test_a_long_pass_judges_each_message_by_the_clock_not_by_its_start(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    start = datetime(2026, 9, 25, 3, 58, tzinfo=UTC)  # 20:58 in California
    approved_book(sessions, [{}, {}, {}], approved_at=start, tracks=TEXT_ONLY)
    minutes = iter(range(100))
    sms = SandboxSmsSender()

    options = dispatch_options(
        sandbox_settings(database_url), sms, SandboxEmailSender(), tracks=TEXT_ONLY,
        worker_id="slow", clock=lambda: start + timedelta(minutes=next(minutes)),
    )  # fmt: skip
    report = dispatch(session_factory=sessions, now=start, options=options)

    # Each message is judged when its turn comes: 20:59 is open, 21:00 and 21:01 are not.
    assert report.sent == 1 and report.held == {"quiet_hours_federal": 2}
    assert len(sms.sent) == 1
