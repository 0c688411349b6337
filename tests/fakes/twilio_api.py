"""A strict loopback fake of Twilio's Messages REST API, in the spirit of twilio-python's Holodeck.

It accepts only what Winback should send (POST .../Accounts/{sid}/Messages.json with Basic auth
and the documented form fields); anything else is recorded in `errors` and answered 400, and the
`fake_twilio` fixture fails the test at teardown if any error was recorded and not taken.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

API_VERSION = "2010-04-01"
_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_FIELDS = frozenset({"To", "From", "MessagingServiceSid", "Body", "StatusCallback"})
ERROR_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    21211: "The 'To' number {to} is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
}


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the fake accepted, as Twilio would have queued it."""

    sid: str
    account_sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None


@dataclass
class Answer:
    """A programmed answer: a status (with a Twilio error code) and/or a delay."""

    status: int = 201
    code: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    after_delay_still_record: bool = False
    times: int | None = None  # None: every time
    # An HTML page instead of Twilio's JSON error, as a load balancer in front of Twilio sends.
    html: str | None = None

    def body(self, to: str) -> dict[str, object]:
        """The JSON error body Twilio sends with this status and code."""
        code = self.code if self.code is not None else self.status
        message = ERROR_MESSAGES.get(code, "Error").format(to=to)
        return {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": self.status,
        }


@dataclass
class FakeTwilio:
    """The fake server: start() it, point TwilioSmsSender(api_url=...) at `url`."""

    account_sid: str = "AC" + "0123456789abcdef" * 2
    auth_token: str = "test-auth-token-0123456789"
    messages_received: list[ReceivedMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests_seen: int = 0
    connections: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._by_number: dict[str, Answer] = {}
        self._next: deque[Answer] = deque()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeTwilio:
        """Listen on 127.0.0.1 on a free port, serving from a background thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes any handler that is still sleeping on a programmed delay."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        """The base URL, standing in for https://api.twilio.com."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- programming -----------------------------------------------------------------------
    def respond_to(self, to: str, answer: Answer) -> None:
        """Answer every send to `to` with `answer` (for `answer.times` calls, if set)."""
        with self._lock:
            self._by_number[to] = answer

    def respond_next(self, answer: Answer) -> None:
        """Answer the next send (whoever it is to) with `answer`; queued in order."""
        with self._lock:
            self._next.append(answer)

    # --- inspection ------------------------------------------------------------------------
    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of every accepted message, in arrival order."""
        with self._lock:
            return list(self.messages_received)

    def take_errors(self) -> list[str]:
        """Return and clear the recorded protocol errors (for tests that provoke them)."""
        with self._lock:
            taken, self.errors = self.errors, []
            return taken

    # --- used by the handler ---------------------------------------------------------------
    def _record_error(self, problem: str) -> None:
        with self._lock:
            self.errors.append(problem)

    def _answer_for(self, to: str) -> Answer:
        with self._lock:
            self.requests_seen += 1
            if self._next:
                return self._next.popleft()
            answer = self._by_number.get(to)
            if answer is None:
                return Answer()
            if answer.times is not None:
                answer.times -= 1
                if answer.times <= 0:
                    del self._by_number[to]
            return answer

    def _accept(self, form: dict[str, str]) -> ReceivedMessage:
        message = ReceivedMessage(
            sid="SM" + uuid.uuid4().hex,
            account_sid=self.account_sid,
            to=form["To"],
            body=form["Body"],
            from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            status_callback=form.get("StatusCallback"),
        )
        with self._lock:
            self.messages_received.append(message)
        return message


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTwilio
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API, so pooling is exercised
    # Headers and body are written separately: with Nagle's algorithm the body waits for the
    # client's delayed ACK, which caps a keep-alive connection at a few dozen requests a second.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read `messages` and `errors` instead."""

    def do_POST(self) -> None:
        with self.fake._lock:
            self.fake.connections.add(self.client_address[:2])
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        match = _PATH.match(self.path)
        if not match:
            self._reject(f"unexpected path {self.path}")
            return
        expected = f"{self.fake.account_sid}:{self.fake.auth_token}".encode()
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(expected).decode():
            self.fake._record_error("bad or missing Basic auth")
            self._send_json(401, Answer(status=401, code=20003).body(""))
            return
        if match.group("account") != self.fake.account_sid:
            self._reject(f"account in path {match.group('account')} is not the caller's")
            return
        form, problem = _parse_form(raw, self.headers.get("Content-Type", ""))
        if problem:
            self._reject(problem)
            return
        self._answer(form)

    def _answer(self, form: dict[str, str]) -> None:
        to = form["To"]
        if not _E164.match(to):
            self._send_json(400, Answer(status=400, code=21211).body(to))
            return
        if len(form["Body"]) > 1600:
            self._send_json(400, Answer(status=400, code=21617).body(to))
            return
        answer = self.fake._answer_for(to)
        if answer.delay:
            # "Reached Twilio, answer lost": queue the message first, then stall the answer.
            message = self.fake._accept(form) if answer.after_delay_still_record else None
            self.fake._stopping.wait(answer.delay)
            if message is None:
                self.close_connection = True
            else:
                self._send_json(201, _message_json(message))
            return
        if answer.status != 201:
            headers = {"Retry-After": answer.retry_after} if answer.retry_after else {}
            if answer.html is not None:
                self._send(answer.status, answer.html.encode(), "text/html", headers)
            else:
                self._send_json(answer.status, answer.body(to), headers)
            return
        self._send_json(201, _message_json(self.fake._accept(form)))

    def _reject(self, problem: str) -> None:
        self.fake._record_error(problem)
        self._send_json(400, {"code": 400, "message": problem, "status": 400})

    def _send_json(
        self, status: int, payload: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self, status: int, body: bytes, media_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", f"{media_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True

    def _refuse_other_methods(self) -> None:
        self._reject(f"unexpected method {self.command} {self.path}")

    do_GET = do_PUT = do_DELETE = do_PATCH = _refuse_other_methods


def _parse_form(raw: str, content_type: str) -> tuple[dict[str, str], str | None]:
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return {}, f"unexpected Content-Type {content_type!r}"
    try:
        fields = parse_qs(raw, keep_blank_values=True, strict_parsing=bool(raw))
    except ValueError as exc:
        return {}, f"malformed form body: {exc}"
    unexpected = set(fields) - _FIELDS
    if unexpected:
        return {}, f"unexpected form fields {sorted(unexpected)}"
    repeated = [name for name, values in fields.items() if len(values) != 1]
    if repeated:
        return {}, f"repeated form fields {repeated}"
    form = {name: values[0] for name, values in fields.items()}
    if not form.get("To") or not form.get("Body"):
        return {}, "To and Body are required"
    if not (form.get("From") or form.get("MessagingServiceSid")):
        return {}, "From or MessagingServiceSid is required"
    callback = form.get("StatusCallback")
    if callback is not None and not callback.startswith(("http://", "https://")):
        return {}, f"StatusCallback is not a URL: {callback!r}"
    return form, None


def _message_json(message: ReceivedMessage) -> dict[str, object]:
    now = format_datetime(datetime.now(UTC), usegmt=True)
    uri = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "accepted" if message.messaging_service_sid else "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A running strict fake Twilio; the test fails if it saw a request it did not expect."""
    fake = FakeTwilio().start()
    try:
        yield fake
    finally:
        fake.stop()
    errors = fake.take_errors()
    if errors:
        pytest.fail(f"the fake Twilio saw unexpected requests: {errors}")
