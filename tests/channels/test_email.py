"""SMTP round trips against aiosmtpd on 127.0.0.1: headers, parts, reuse, auth, refusals."""

from __future__ import annotations

import logging
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.channels.base import BAD_ADDRESS, FAILED, RETRY, SENT, UNKNOWN, OutboundEmail
from core.channels.email import (
    SandboxEmailSender,
    SmtpEmailSender,
    SmtpServer,
    build_message,
    parse_smtp_url,
)
from core.clock import FixedClock

BORROWER = "jane.doe@gmail.com"
UNSUBSCRIBE_URL = "https://winback.example.com/u/" + "A" * 120
NOW = datetime(2024, 11, 4, 15, 30, tzinfo=UTC)


def an_email(**changes: Any) -> OutboundEmail:
    email = OutboundEmail(
        to=f"Jane Doe <{BORROWER}>",
        from_addr="Maple Mortgage <loans@maple.example.com>",
        reply_to="reply+abc.def@maple.example.com",
        subject="Rates moved — here is what it could mean for you",
        text="Hi Jane, rates moved. Your savings: https://winback.example.com/s/x",
        html="<p>Hi Jane, rates moved. <a href='https://winback.example.com/s/x'>See</a></p>",
        message_id="<winback.42.1@maple.example.com>",
        list_unsubscribe_url=UNSUBSCRIBE_URL,
    )
    return replace(email, **changes)


@dataclass
class Received:
    """One message the test server accepted."""

    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: bytes | None


class Mailbox:
    """aiosmtpd handler: records messages and the connection each came on; refuses on cue."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refusals: dict[str, str] = {}
        self.drop_after_data = False
        self.transports: list[Any] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        login = session.auth_data.login if session.authenticated else None
        self.received.append(
            Received(session.peer[:2], envelope.mail_from, list(envelope.rcpt_tos), message, login)
        )
        self.transports.append(server.transport)
        if self.drop_after_data:
            server.transport.close()
        return "250 2.0.0 Ok: queued"

    @property
    def connections(self) -> set[tuple[str, int]]:
        return {received.peer for received in self.received}


class LoopbackController(Controller):
    """aiosmtpd's Controller, able to listen on port 0 (it learns the real port first)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


SmtpFixture = tuple[LoopbackController, Mailbox]


@pytest.fixture
def smtp_server() -> Iterator[SmtpFixture]:
    mailbox = Mailbox()
    controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    yield controller, mailbox
    controller.stop()


def url_of(controller: LoopbackController, scheme: str = "smtp", userinfo: str = "") -> str:
    return f"{scheme}://{userinfo}127.0.0.1:{controller.port}"


def test_received_email_has_every_header_and_both_parts(smtp_server: SmtpFixture) -> None:
    controller, mailbox = smtp_server
    with SmtpEmailSender(url_of(controller), clock=FixedClock(NOW)) as sender:
        result = sender.send(an_email())

    assert result.outcome == SENT
    assert result.provider_id == "<winback.42.1@maple.example.com>"
    [received] = mailbox.received
    assert received.mail_from == "loans@maple.example.com"
    assert received.rcpt_tos == [BORROWER]
    message = received.message
    assert message["From"] == "Maple Mortgage <loans@maple.example.com>"
    assert message["To"] == f"Jane Doe <{BORROWER}>"
    assert message["Reply-To"] == "reply+abc.def@maple.example.com"
    assert message["Subject"] == "Rates moved — here is what it could mean for you"
    assert message["Message-ID"] == "<winback.42.1@maple.example.com>"
    assert message["Date"].datetime == NOW
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "rates moved" in text.get_content()
    assert html is not None and "<a href='https://winback.example.com/s/x'>" in html.get_content()


def test_text_only_email_without_reply_to_or_unsubscribe(smtp_server: SmtpFixture) -> None:
    controller, mailbox = smtp_server
    email = an_email(html=None, reply_to=None, list_unsubscribe_url=None, headers={"X-Tag": "1"})
    with SmtpEmailSender(url_of(controller)) as sender:
        assert sender.send(email).outcome == SENT

    message = mailbox.received[0].message
    assert message.get_content_type() == "text/plain"
    assert "Reply-To" not in message
    assert "List-Unsubscribe" not in message
    assert message["X-Tag"] == "1"


def test_twenty_emails_share_one_connection(smtp_server: SmtpFixture) -> None:
    controller, mailbox = smtp_server
    with SmtpEmailSender(url_of(controller)) as sender:
        outcomes = [
            sender.send(an_email(message_id=f"<m{n}@maple.example.com>")).outcome for n in range(20)
        ]

    assert outcomes == [SENT] * 20
    assert len(mailbox.received) == 20
    assert len(mailbox.connections) == 1


def test_reconnects_once_when_the_server_closed_the_idle_connection(
    smtp_server: SmtpFixture,
) -> None:
    controller, mailbox = smtp_server
    sender = SmtpEmailSender(url_of(controller))
    assert sender.send(an_email()).outcome == SENT
    closed = threading.Event()
    controller.loop.call_soon_threadsafe(mailbox.transports[0].close)
    controller.loop.call_soon_threadsafe(controller.loop.call_soon, closed.set)
    assert closed.wait(5)

    result = sender.send(an_email(message_id="<second@maple.example.com>"))
    sender.close()

    assert result.outcome == SENT
    assert len(mailbox.received) == 2
    assert len(mailbox.connections) == 2


def test_drop_after_data_is_unknown_and_never_resent(smtp_server: SmtpFixture) -> None:
    controller, mailbox = smtp_server
    mailbox.drop_after_data = True
    sender = SmtpEmailSender(url_of(controller))

    result = sender.send(an_email())
    sender.close()

    assert result.outcome == UNKNOWN
    assert len(mailbox.received) == 1  # the server did get it: a resend would duplicate it


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown", BAD_ADDRESS),
        ("550 No such user here", BAD_ADDRESS),
        ("553 5.1.3 Bad recipient address syntax", BAD_ADDRESS),
        ("550 5.7.1 Message rejected by policy", FAILED),
        ("450 4.2.1 Mailbox busy, try later", RETRY),
    ],
)
def test_recipient_refusals_map_to_outcomes(
    smtp_server: SmtpFixture, reply: str, outcome: str
) -> None:
    controller, mailbox = smtp_server
    mailbox.refusals["nobody@example.com"] = reply
    with SmtpEmailSender(url_of(controller)) as sender:
        refused = sender.send(an_email(to="nobody@example.com"))
        after = sender.send(an_email())

    assert (refused.outcome, refused.error_code) == (outcome, reply[:3])
    assert after.outcome == SENT  # the connection was reset and is still usable
    assert [received.rcpt_tos for received in mailbox.received] == [[BORROWER]]
    assert len(mailbox.connections) == 1


def test_a_header_with_a_line_break_is_refused_before_sending(smtp_server: SmtpFixture) -> None:
    controller, mailbox = smtp_server
    with SmtpEmailSender(url_of(controller)) as sender:
        result = sender.send(an_email(subject="Hello\r\nBcc: everyone@example.com"))

    assert result.outcome == FAILED
    assert mailbox.received == []


def test_nothing_listening_is_a_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{closed_port}", timeout=2.0)

    assert sender.send(an_email()).outcome == RETRY


def test_logs_mask_the_recipient(
    smtp_server: SmtpFixture, caplog: pytest.LogCaptureFixture
) -> None:
    controller, _ = smtp_server
    caplog.set_level(logging.INFO)
    with SmtpEmailSender(url_of(controller)) as sender:
        sender.send(an_email())
    SandboxEmailSender().send(an_email())

    ours = [record.getMessage() for record in caplog.records if record.name.startswith("core.")]
    assert len(ours) == 2
    assert all(BORROWER not in line and "j***@g***.com" in line for line in ours)


# --- AUTH over plain SMTP -------------------------------------------------------------------
def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and auth_data == (b"broker", b"p@ss word")
    return AuthResult(success=good, handled=False, auth_data=auth_data)


@pytest.fixture
def auth_smtp_server() -> Iterator[SmtpFixture]:
    mailbox = Mailbox()
    controller = LoopbackController(
        mailbox,
        hostname="127.0.0.1",
        port=0,
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=False,  # loopback test only: lets AUTH run without TLS
    )
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_credentials_from_the_url(auth_smtp_server: SmtpFixture) -> None:
    controller, mailbox = auth_smtp_server
    with SmtpEmailSender(url_of(controller, userinfo="broker:p%40ss%20word@")) as sender:
        result = sender.send(an_email())

    assert result.outcome == SENT
    assert mailbox.received[0].login == b"broker"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_wrong_password_is_a_failure(auth_smtp_server: SmtpFixture) -> None:
    controller, mailbox = auth_smtp_server
    with SmtpEmailSender(url_of(controller, userinfo="broker:wrong@")) as sender:
        result = sender.send(an_email())

    assert (result.outcome, result.error_code) == (FAILED, "535")
    assert mailbox.received == []


# --- TLS ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a throwaway TLS certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.mark.parametrize("scheme", ["smtp+starttls", "smtps"])
def test_tls_schemes_deliver(certificate: tuple[Path, Path], scheme: str) -> None:
    mailbox = Mailbox()
    tls = (
        {"tls_context": _server_context(certificate), "require_starttls": True}
        if scheme == "smtp+starttls"
        else {"ssl_context": _server_context(certificate)}
    )
    controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0, **tls)
    controller.start()
    try:
        client_context = ssl.create_default_context(cafile=str(certificate[0]))
        with SmtpEmailSender(url_of(controller, scheme), ssl_context=client_context) as sender:
            outcomes = [sender.send(an_email()).outcome for _ in range(3)]
    finally:
        controller.stop()

    assert outcomes == [SENT] * 3
    assert len(mailbox.connections) == 1


def test_untrusted_certificate_is_a_setup_failure(certificate: tuple[Path, Path]) -> None:
    mailbox = Mailbox()
    controller = LoopbackController(
        mailbox, hostname="127.0.0.1", port=0, ssl_context=_server_context(certificate)
    )
    controller.start()
    try:
        with SmtpEmailSender(url_of(controller, "smtps")) as sender:  # default trust store
            result = sender.send(an_email())
    finally:
        controller.stop()

    assert result.outcome == FAILED
    assert mailbox.received == []


# --- pieces ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com:2525", SmtpServer("plain", "mail.example.com", 2525)),
        ("smtp://mail.example.com", SmtpServer("plain", "mail.example.com", 25)),
        (
            "smtp+starttls://u:p%2Fq@mx.example.com",
            SmtpServer("starttls", "mx.example.com", 587, "u", "p/q"),
        ),
        (
            "smtps://apikey:@smtp.example.com",
            SmtpServer("ssl", "smtp.example.com", 465, "apikey", ""),
        ),
    ],
)
def test_smtp_urls_are_read(url: str, expected: SmtpServer) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "mail.example.com:25"])
def test_bad_smtp_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        parse_smtp_url(url)


def test_message_id_gets_angle_brackets() -> None:
    message = build_message(an_email(message_id="abc@maple.example.com"), clock=FixedClock(NOW))

    assert message["Message-ID"] == "<abc@maple.example.com>"


def test_long_unsubscribe_url_survives_on_the_wire() -> None:
    wire = build_message(an_email(), clock=FixedClock(NOW)).as_bytes()

    assert f"List-Unsubscribe: <{UNSUBSCRIBE_URL}>\r\n".encode() in wire
    assert all(len(line) <= 998 for line in wire.split(b"\r\n"))


def test_sandbox_records_the_exact_message() -> None:
    sandbox = SandboxEmailSender(clock=FixedClock(NOW))

    result = sandbox.send(an_email())
    broken = sandbox.send(an_email(subject="a\nb"))

    assert (result.outcome, result.provider_id) == (SENT, "<winback.42.1@maple.example.com>")
    assert broken.outcome == FAILED
    [sent] = sandbox.sent
    assert sent.mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_smtplib_is_not_patched() -> None:
    # Guard: the sender subclasses smtplib, it must not alter the module for others.
    assert smtplib.SMTP.getreply.__qualname__ == "SMTP.getreply"
