"""`POST /email/inbound` over real HTTP: SendGrid's multipart form, guarded by the secret;
replies matched by the signed reply address of a really sent email, else the sender; quoted
history cut; auto-replies recorded but never warm; "unsubscribe" opts out; a replay lands once."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from core.book.models import OPTED_OUT
from core.consent.models import Suppression
from core.inbound.models import EMAIL_INBOUND
from core.outreach.models import Enrollment
from tests.inbound.test_email_parsing import APPLE_MAIL, GMAIL, OUTLOOK_MOBILE
from tests.outreach import SmtpServer, smtp_server  # noqa: F401
from tests.web import INBOUND_SECRET, LiveWeb, live_web
from tests.web.emailing import inbound, ledger, replies, send_emails

STRANGER = "Sam Stranger <sam@elsewhere.example>"


@pytest.fixture
def unkeyed(database_url: str) -> Iterator[LiveWeb]:
    """The web process with EMAIL_INBOUND_SECRET unset."""
    yield from live_web(database_url, EMAIL_INBOUND_SECRET="")


def _statuses(web: LiveWeb) -> list[str]:
    with web.sessions() as session:
        return [e.status for e in session.scalars(select(Enrollment).order_by(Enrollment.id))]


@pytest.mark.parametrize("how", ["none", "basic", "query", "header"])
def test_a_wrong_or_missing_secret_gets_403_and_nothing_is_written(web: LiveWeb, how: str) -> None:
    files = {"from": (None, STRANGER), "to": (None, "x@y.example"), "text": (None, "hi")}
    wrong = INBOUND_SECRET + "x"
    kwargs = {
        "none": {},
        "basic": {"auth": ("inbound", wrong)},
        "query": {"params": {"secret": wrong}},
        "header": {"headers": {"X-Winback-Secret": wrong}},
    }[how]

    response = web.http.post("/email/inbound", files=files, **kwargs)  # type: ignore[arg-type]

    assert response.status_code == 403
    assert ledger(web, EMAIL_INBOUND) == [] and replies(web) == []
    assert web.router.notices == []


@pytest.mark.parametrize("how", ["basic", "query", "header"])
def test_the_secret_is_accepted_where_an_operator_can_put_it(web: LiveWeb, how: str) -> None:
    files = {"from": (None, STRANGER), "to": (None, "x@y.example"), "text": (None, f"hi {how}")}
    kwargs = {
        "basic": {"auth": ("inbound", INBOUND_SECRET)},
        "query": {"params": {"secret": INBOUND_SECRET}},
        "header": {"headers": {"X-Winback-Secret": INBOUND_SECRET}},
    }[how]

    response = web.http.post("/email/inbound", files=files, **kwargs)  # type: ignore[arg-type]

    assert response.status_code == 200
    assert len(ledger(web, EMAIL_INBOUND)) == 1


def test_without_a_configured_secret_nothing_is_accepted(unkeyed: LiveWeb) -> None:
    response = inbound(unkeyed, sender=STRANGER, to="x@y.example", text="hi", secret="")

    assert response.status_code == 403
    assert ledger(unkeyed, EMAIL_INBOUND) == []


def test_a_reply_to_our_signed_address_is_matched_to_the_touch_it_answers(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])
    (email,) = [m for m in sent.book.messages() if m.channel == "email" and m.sent_at]
    assert sent.reply_to().startswith("reply+")

    # From her work address: only the reply token can tell who she is.
    response = inbound(
        web, sender="Pat <pat.doe@work.example>", to=sent.reply_to(), text="Yes, call me today"
    )

    assert response.status_code == 200
    (reply,) = replies(web)
    assert (reply.contact_id, reply.message_id) == (sent.book.contacts[0], email.id)
    assert (reply.channel, reply.body, reply.classification) == (
        "email", "Yes, call me today", "interested",
    )  # fmt: skip
    assert _statuses(web) == ["stopped"]
    assert [n.contact_id for n in web.router.notices] == [sent.book.contacts[0]]


def test_a_reply_without_our_token_is_matched_by_the_sender(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])

    inbound(web, sender="Pat <PAT@Example.com>", to="loans@maple.example.com", text="What rate?")

    (reply,) = replies(web)
    assert reply.contact_id == sent.book.contacts[0]
    assert reply.message_id is not None  # the latest email she was sent
    assert reply.classification == "question"
    assert _statuses(web) == ["stopped"]


def test_a_forged_reply_token_falls_back_to_the_sender(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])
    forged = sent.reply_to().replace("reply+", "reply+A")

    inbound(web, sender=STRANGER, to=forged, text="Call me")

    (reply,) = replies(web)
    assert reply.contact_id is None and reply.message_id is None
    assert _statuses(web) == ["active"]


def test_a_reply_from_someone_not_in_the_book_is_kept_and_routed_as_unknown(web: LiveWeb) -> None:
    response = inbound(web, sender=STRANGER, to="loans@maple.example.com", text="Who is this?")

    assert response.status_code == 200
    (reply,) = replies(web)
    assert (reply.contact_id, reply.sender, reply.body) == (
        None,
        "sam@elsewhere.example",
        "Who is this?",
    )
    assert [(n.reply_id, n.contact_id) for n in web.router.notices] == [(reply.id, None)]


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        (GMAIL, "Yes, please call me Thursday.\n\nPat"),
        (OUTLOOK_MOBILE, "What rate could I get on a 15 year?"),
        (APPLE_MAIL, "Sounds good, call me after 5"),
    ],
    ids=["gmail", "outlook", "apple-mail"],
)
def test_the_quoted_email_is_cut_from_the_stored_reply(
    web: LiveWeb, smtp_server: SmtpServer, raw: str, written: str
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])

    inbound(web, sender="pat@example.com", to=sent.reply_to(), text=raw)

    (reply,) = replies(web)
    assert reply.body == written
    # Our own "unsubscribe" in the quoted email did not opt her out.
    assert sent.book.contact(sent.book.contacts[0]).email_consent != OPTED_OUT


@pytest.mark.parametrize(
    ("headers", "subject", "sender"),
    [
        ("Auto-Submitted: auto-replied\nMessage-ID: <o1@m.example>\n", "Re: Pat", "pat@x.example"),
        ("X-Autoreply: yes\n", "Re: Pat, your rate", "pat@example.com"),
        ("Precedence: bulk\n", "Re: Pat, your rate", "pat@example.com"),
        ("", "Out of Office: Re: Pat, your rate", "pat@example.com"),
        ("", "Automatic reply: Pat, your rate", "pat@example.com"),
        ("", "Undeliverable: Pat, your rate", "MAILER-DAEMON@mx.example.com"),
    ],
)  # fmt: skip
def test_auto_replies_are_recorded_but_are_never_warm_replies(
    web: LiveWeb, smtp_server: SmtpServer, headers: str, subject: str, sender: str
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])

    response = inbound(
        web, sender=sender, to=sent.reply_to(), subject=subject, headers=headers,
        text="I am out of the office until Monday. Please call me then. Unsubscribe",
    )  # fmt: skip

    assert response.status_code == 200
    (row,) = ledger(web, EMAIL_INBOUND)
    assert row.outcome == "auto_reply"
    assert row.contact_id == sent.book.contacts[0]
    assert replies(web) == [] and web.router.notices == []
    assert _statuses(web) == ["active"]  # her sequence goes on
    assert sent.book.contact(sent.book.contacts[0]).email_consent != OPTED_OUT
    assert len(smtp_server.mailbox.received) == 1  # nothing was sent back


@pytest.mark.parametrize(
    "words", ["Unsubscribe", "Please remove me from your list", "stop emailing me, thanks"]
)
def test_asking_to_stop_in_a_reply_opts_out(
    web: LiveWeb, smtp_server: SmtpServer, words: str
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])
    contact_id = sent.book.contacts[0]

    response = inbound(
        web, sender="pat@example.com", to=sent.reply_to(), text=words + "\n\n" + GMAIL
    )

    assert response.status_code == 200
    person = sent.book.contact(contact_id)
    # Every opt-out is global (COMPLIANCE §1): email and texts both stop.
    assert (person.email_consent, person.sms_consent) == (OPTED_OUT, OPTED_OUT)
    assert _statuses(web) == ["stopped"]
    unsent = {m.status for m in sent.book.messages() if not m.sent_at}
    assert "cancelled" in unsent and "scheduled" not in unsent
    with web.sessions() as session:
        listed = session.scalars(select(Suppression.value).where(Suppression.kind == "email"))
        assert list(listed) == ["pat@example.com"]
    assert replies(web) == [] and web.router.notices == []
    (row,) = ledger(web, EMAIL_INBOUND)
    assert (row.outcome, row.contact_id) == ("opt_out", contact_id)


def test_a_replayed_email_lands_once(web: LiveWeb, smtp_server: SmtpServer) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])
    headers = "Message-ID: <CAF=reply1@mail.gmail.com>\nFrom: pat@example.com\n"

    answers = [
        inbound(web, sender="pat@example.com", to=sent.reply_to(), text="Yes", headers=headers)
        for _ in range(3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.text for a in answers] == ["warm_reply", "duplicate", "duplicate"]
    assert len(replies(web)) == 1 and len(web.router.notices) == 1
    (row,) = ledger(web, EMAIL_INBOUND)
    assert row.idempotency_key == "message-id:<CAF=reply1@mail.gmail.com>"


def test_a_database_failure_answers_5xx_writes_nothing_and_the_retry_lands_once(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])
    headers = "Message-ID: <retry@mail.example>\n"

    def fail_on_reply(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO REPLIES"):
            raise RuntimeError("the database went away")

    engine = web.runtime.engine
    event.listen(engine, "before_cursor_execute", fail_on_reply)
    try:
        failed = inbound(
            web, sender="pat@example.com", to=sent.reply_to(), text="Yes", headers=headers
        )
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_reply)

    assert failed.status_code == 503
    assert ledger(web, EMAIL_INBOUND) == [] and replies(web) == []
    assert _statuses(web) == ["active"]

    retried = inbound(
        web, sender="pat@example.com", to=sent.reply_to(), text="Yes", headers=headers
    )

    assert retried.status_code == 200
    assert len(replies(web)) == 1 and len(ledger(web, EMAIL_INBOUND)) == 1
    assert _statuses(web) == ["stopped"]


def test_an_html_only_reply_is_read_without_its_quote(web: LiveWeb) -> None:
    html = (
        '<div dir="ltr">Yes call me tomorrow</div><div class="gmail_quote">'
        "<blockquote>Unsubscribe</blockquote></div>"
    )

    inbound(web, sender=STRANGER, to="loans@maple.example.com", text="", html=html)

    (reply,) = replies(web)
    assert reply.body == "Yes call me tomorrow"


def test_no_email_address_in_the_logs(
    web: LiveWeb, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    sent = send_emails(web, smtp_server, [{"email": "pat@example.com"}])
    caplog.set_level("DEBUG")

    inbound(web, sender="pat@example.com", to=sent.reply_to(), text="Yes")
    inbound(web, sender="pat@example.com", to=sent.reply_to(), text="unsubscribe")

    assert "pat@example.com" not in caplog.text
