"""Email through SMTP (one reused connection), and a sandbox sender for the demo."""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from core.channels.base import (
    BAD_ADDRESS,
    FAILED,
    RETRY,
    SENT,
    UNKNOWN,
    OutboundEmail,
    SendResult,
)
from core.clock import Clock, SystemClock
from core.privacy import mask_email

logger = logging.getLogger(__name__)

# CRLF line ends; long headers are not folded into RFC 2047 words, which would break the
# List-Unsubscribe URL (a header line may be up to 998 characters, RFC 5322 §2.1.1).
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)

Security = Literal["plain", "starttls", "ssl"]
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("ssl", 465),
}
_ENHANCED_STATUS = re.compile(rb"^\s*([245])\.(\d{1,3})\.\d{1,3}\b")


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to reach the mail server, read from SMTP_URL."""

    security: Security
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_smtp_url(smtp_url: str) -> SmtpServer:
    """Read `smtp://[user:pass@]host:port`, `smtp+starttls://…` or `smtps://…`."""
    parts = urlsplit(smtp_url)
    if parts.scheme not in _SCHEMES:
        raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host")
    security, default_port = _SCHEMES[parts.scheme]
    return SmtpServer(
        security=security,
        host=parts.hostname,
        port=parts.port or default_port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def build_message(email: OutboundEmail, *, clock: Clock) -> EmailMessage:
    """The MIME message: text (and HTML) alternatives with CAN-SPAM / RFC 8058 headers."""
    message = EmailMessage(policy=WIRE_POLICY)
    message["From"] = email.from_addr
    message["To"] = email.to
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = _bracketed(email.message_id) or make_msgid()
    if email.list_unsubscribe_url:
        message["List-Unsubscribe"] = f"<{email.list_unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers.items():
        del message[name]
        message[name] = value
    # Quoted-printable keeps the body 7-bit, so no server needs 8BITMIME.
    message.set_content(email.text, cte="quoted-printable")
    if email.html:
        message.add_alternative(email.html, subtype="html", cte="quoted-printable")
    return message


def _bracketed(message_id: str) -> str:
    message_id = message_id.strip()
    if message_id and not message_id.startswith("<"):
        return f"<{message_id}>"
    return message_id


class _TracksDataPhase:
    """Notes when the server said 354: from then on a lost answer may mean it was delivered."""

    awaiting_final_reply = False

    def getreply(self) -> tuple[int, bytes]:
        code, reply = super().getreply()  # type: ignore[misc]
        if code == 354:
            self.awaiting_final_reply = True
        return code, reply


class _Smtp(_TracksDataPhase, smtplib.SMTP):
    pass


class _SmtpSsl(_TracksDataPhase, smtplib.SMTP_SSL):
    pass


_Connection = _Smtp | _SmtpSsl


class _Disconnected(Exception):
    """The server went away before it could have accepted the message."""


class SmtpEmailSender:
    """Sends email over one SMTP connection kept open across sends (thread-safe)."""

    def __init__(
        self,
        smtp_url: str,
        *,
        timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.server = parse_smtp_url(smtp_url)
        self.timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._connection: _Connection | None = None

    def send(self, message: OutboundEmail) -> SendResult:
        """Hand one email to the server; never raises for delivery problems."""
        try:
            payload = build_message(message, clock=self._clock).as_bytes()
        except (ValueError, TypeError) as exc:  # e.g. a line break smuggled into a header
            result = SendResult(FAILED, detail=f"email could not be built: {exc}")
        else:
            envelope = (parseaddr(message.from_addr)[1], parseaddr(message.to)[1])
            with self._lock:
                result = self._deliver(envelope, payload, _bracketed(message.message_id))
        logger.info(
            "smtp email to %s: %s%s",
            mask_email(message.to),
            result.outcome,
            f" ({result.error_code})" if result.error_code else "",
        )
        return result

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    self._connection.quit()
                self._discard()

    def __enter__(self) -> SmtpEmailSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _deliver(self, envelope: tuple[str, str], payload: bytes, message_id: str) -> SendResult:
        # An idle connection the server has since closed fails before anything is accepted,
        # so one fresh connection is always worth a try.
        for attempt in (1, 2):
            try:
                connection = self._open()
            except smtplib.SMTPResponseException as exc:
                return _refusal(exc.smtp_code, exc.smtp_error, permanent=FAILED)
            except (smtplib.SMTPException, OSError) as exc:
                self._discard()
                return _connection_problem(exc)
            try:
                return self._transmit(connection, envelope, payload, message_id)
            except (_Disconnected, smtplib.SMTPServerDisconnected, OSError) as exc:
                committed = connection.awaiting_final_reply
                self._discard()
                if committed:
                    return SendResult(UNKNOWN, detail=f"connection lost after DATA: {exc}")
                if attempt == 2:
                    return SendResult(RETRY, detail=f"connection lost: {exc}")
            except smtplib.SMTPException as exc:  # e.g. an address the server cannot carry
                return SendResult(FAILED, detail=f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")

    def _transmit(
        self, connection: _Connection, envelope: tuple[str, str], payload: bytes, message_id: str
    ) -> SendResult:
        connection.awaiting_final_reply = False
        code, reply = connection.mail(envelope[0])
        if code != 250:
            return self._refused(connection, code, reply, permanent=FAILED)
        code, reply = connection.rcpt(envelope[1])
        if code not in (250, 251):
            return self._refused(connection, code, reply, permanent=_recipient_outcome(reply))
        try:
            code, reply = connection.data(payload)
        except smtplib.SMTPDataError as exc:  # DATA itself was refused, before any content
            return self._refused(connection, exc.smtp_code, exc.smtp_error, permanent=FAILED)
        connection.awaiting_final_reply = False
        if code != 250:
            return self._refused(connection, code, reply, permanent=FAILED)
        return SendResult(SENT, provider_id=message_id, detail=_text(reply))

    def _refused(
        self, connection: _Connection, code: int, reply: bytes, *, permanent: str
    ) -> SendResult:
        if code == 421:  # the server is closing the channel: nothing was accepted
            raise _Disconnected(_text(reply))
        try:
            connection.rset()  # so the kept connection is clean for the next message
        except (smtplib.SMTPException, OSError):
            self._discard()
        return _refusal(code, reply, permanent=permanent)

    def _open(self) -> _Connection:
        if self._connection is not None:
            return self._connection
        server = self.server
        connection: _Connection
        if server.security == "ssl":
            connection = _SmtpSsl(
                server.host, server.port, timeout=self.timeout, context=self._ssl_context
            )
        else:
            connection = _Smtp(server.host, server.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if server.security == "starttls":
                connection.starttls(context=self._ssl_context)
                connection.ehlo()
            if server.username:
                connection.login(server.username, server.password or "")
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


def _recipient_outcome(reply: bytes) -> str:
    """A permanent recipient refusal is a bad address unless the server says it is policy."""
    enhanced = _ENHANCED_STATUS.match(reply)
    if enhanced and enhanced.group(2) not in (b"1", b"2"):  # x.1 address, x.2 mailbox status
        return FAILED
    return BAD_ADDRESS


def _refusal(code: int, reply: Any, *, permanent: str) -> SendResult:
    detail = f"{code} {_text(reply)}"
    if 400 <= code < 500:
        return SendResult(RETRY, error_code=str(code), detail=detail)
    return SendResult(permanent, error_code=str(code), detail=detail)  # type: ignore[arg-type]


def _connection_problem(exc: BaseException) -> SendResult:
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return SendResult(FAILED, detail=f"mail server setup problem: {exc}")
    return SendResult(RETRY, detail=f"could not reach the mail server: {type(exc).__name__}")


def _text(reply: Any) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


@dataclass(frozen=True)
class SandboxEmail:
    """One email the sandbox pretended to send, with the exact MIME it would have sent."""

    email: OutboundEmail
    mime: EmailMessage


class SandboxEmailSender:
    """Pretends to send: builds and records the email, logs it masked, answers 'sent'."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._sent: list[SandboxEmail] = []

    def send(self, message: OutboundEmail) -> SendResult:
        """Record the email and answer 'sent' (or 'failed' if it could not be built)."""
        try:
            mime = build_message(message, clock=self._clock)
            mime.as_bytes()  # surfaces the same header errors a real send would
        except (ValueError, TypeError) as exc:
            return SendResult(FAILED, detail=f"email could not be built: {exc}")
        with self._lock:
            self._sent.append(SandboxEmail(message, mime))
        logger.info("sandbox email to %s: %s", mask_email(message.to), mime["Message-ID"])
        return SendResult(SENT, provider_id=str(mime["Message-ID"]))

    @property
    def sent(self) -> list[SandboxEmail]:
        """A copy of every email sent so far, oldest first."""
        with self._lock:
            return list(self._sent)
