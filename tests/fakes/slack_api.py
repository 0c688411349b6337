"""A strict loopback fake of Slack's Web API, in the spirit of twilio-python's Holodeck.

The real `slack_sdk.WebClient(token=fake.token, base_url=fake.url)` talks to it. It records every
call (method, decoded body, headers, time received), keeps messages per channel so chat.update
and conversations.history agree, and fails on demand (5xx, 429 with Retry-After, `ok: false`,
accepted-but-answered-too-late, slow). Anything Winback should never send (an unknown method,
a missing or wrong token, an undecodable body, a URL the fake never handed out) is answered as
Slack would and recorded in `unexpected`; the `fake_slack` fixture (tests/slack/conftest.py)
fails the test at teardown if any was recorded and not taken. The methods are in
tests/fakes/slack_methods.py, the workspace state in tests/fakes/slack_workspace.py.
"""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes.slack_methods import METHODS, TOKEN_PREFIX
from tests.fakes.slack_workspace import (
    SlackError,
    SlackUser,
    Upload,
    Workspace,
    decode,
    token_error,
)

Body = dict[str, Any]
RESPONSE_URL = "response_url"  # the method name failures and calls() use for response_url posts
UPLOAD = "upload"  # ... and for the files_upload_v2 upload URL


@dataclass(frozen=True)
class Call:
    """One request the fake answered; `headers` is case-insensitive (`headers["Authorization"]`)."""

    method: str  # "chat.postMessage", or RESPONSE_URL / UPLOAD
    body: Body  # decoded: form or JSON, with JSON-valued form fields parsed
    headers: HTTPMessage
    received_at: datetime
    status: int
    answer: Body
    path: str

    @property
    def ok(self) -> bool:
        """Whether Slack would have accepted it (HTTP 200 and ok: true)."""
        return self.status == 200 and bool(self.answer.get("ok"))


@dataclass
class _Rule:
    kind: str  # "fail", "rate_limit", "error" or "accept_then_timeout"
    times: int
    status: int = 200
    error: str = ""
    retry_after: int = 0
    delay: float = 0.0


class FakeSlack:
    """The fake server: start() it and point WebClient(base_url=fake.url) at it."""

    token = "xoxb-0000000000-0000000000000-fakebottoken0000"
    app_token = "xapp-1-A0FAKEAPP-0000000000000-fakeapptoken0000"

    def __init__(self) -> None:
        self.workspace = Workspace()
        self.unexpected: list[str] = []
        self._calls: list[Call] = []
        self._rules: dict[str, deque[_Rule]] = {}
        self._slow: dict[str, float] = {}
        self._flaky: dict[str, tuple[float, random.Random | None]] = {}
        self._response_urls: set[str] = set()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        """Listen on 127.0.0.1 on a free port, serving from a background thread."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.workspace.root_url = self.root_url
        return self

    def stop(self) -> None:
        """Stop serving; wakes any handler still sleeping on a programmed delay."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT, with no trailing slash."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The Web API base URL, standing in for https://slack.com/api/ (trailing slash kept)."""
        return f"{self.root_url}/api/"

    # --- programming -----------------------------------------------------------------------
    def add_user(self, user_id: str, email: str, name: str) -> None:
        """Register a workspace member that users.lookupByEmail finds."""
        with self._lock:
            self.workspace.users[user_id] = SlackUser(id=user_id, email=email, name=name)

    def response_url(self, name: str) -> str:
        """A response_url on the fake; what is posted to it is in `responses(name)`."""
        with self._lock:
            self._response_urls.add(name)
        return f"{self.root_url}/response/{name}"

    def fail_next(self, method: str, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP `status`, storing nothing."""
        self._add_rule(method, _Rule("fail", times, status=status, error="internal_error"))

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls with HTTP 429 and Retry-After, storing nothing."""
        self._add_rule(method, _Rule("rate_limit", times, 429, "ratelimited", retry_after))

    def error_next(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next `times` calls with HTTP 200 `ok: false` and this error."""
        self._add_rule(method, _Rule("error", times, error=error))

    def accept_then_timeout(self, method: str, delay: float = 3.0, times: int = 1) -> None:
        """Do the next call (the message IS stored) but answer only after `delay` seconds."""
        self._add_rule(method, _Rule("accept_then_timeout", times, delay=delay))

    def flaky(self, method: str, share: float, seed: int = 1) -> None:
        """From now on answer about `share` of `method`'s calls with a 500 (0 to stop)."""
        with self._lock:
            self._flaky[method] = (share, random.Random(seed))

    def slow(self, method: str, seconds: float) -> None:
        """Wait `seconds` before handling every call of `method` (0 to stop)."""
        with self._lock:
            self._slow[method] = seconds

    def _add_rule(self, method: str, rule: _Rule) -> None:
        with self._lock:
            self._rules.setdefault(method, deque()).append(rule)

    # --- inspection ------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        """Every call answered so far (of `method`, if given), in arrival order."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def posted(self) -> list[Body]:
        """The bodies of the chat.postMessage calls the fake accepted (stored)."""
        return [c.body for c in self.calls("chat.postMessage") if c.ok]

    def wait_for(
        self, method: str, predicate: Callable[[Call], bool] | None = None, timeout: float = 5
    ) -> Call:
        """The first call of `method` matching `predicate`, waiting for it if need be."""

        def first() -> Call | None:
            matches = (c for c in self._calls if c.method == method)
            return next((c for c in matches if predicate is None or predicate(c)), None)

        with self._changed:
            found = self._changed.wait_for(first, timeout)
            if found is None:
                seen = [c.method for c in self._calls]
                raise AssertionError(f"no matching {method} call within {timeout}s; saw {seen}")
            return found

    def messages(self, channel: str) -> list[Body]:
        """The channel's stored messages, oldest first, thread replies included (copies)."""
        with self._lock:
            return json.loads(json.dumps(self.workspace.channels.get(channel, [])))

    def message(self, channel: str, ts: str) -> Body:
        """One stored message as it is now (after any chat.update)."""
        with self._lock:
            return json.loads(json.dumps(self.workspace.find(channel, ts)))

    def ephemerals(self) -> list[Body]:
        """Every ephemeral message, with its channel and user."""
        with self._lock:
            return json.loads(json.dumps(self.workspace.ephemerals))

    def home_view(self, user_id: str) -> Body | None:
        """The App Home last published for the user."""
        with self._lock:
            return self.workspace.home_views.get(user_id)

    def opened_views(self) -> list[Body]:
        """Every modal opened, with its trigger_id."""
        with self._lock:
            return list(self.workspace.opened_views)

    def uploads(self) -> list[Upload]:
        """Every file reserved, with its bytes once uploaded and its channel once shared."""
        with self._lock:
            return list(self.workspace.uploads.values())

    def responses(self, name: str) -> list[Body]:
        """What was posted to `response_url(name)`, in order."""
        path = f"/response/{name}"
        return [c.body for c in self.calls(RESPONSE_URL) if c.path == path]

    def dm_channel(self, user_id: str) -> str:
        """The DM channel id the fake gives for this user (opening it if need be)."""
        with self._lock:
            return self.workspace.dm_channel(frozenset({user_id}))

    def take_unexpected(self) -> list[str]:
        """Return and clear the unexpected requests (for tests that provoke them)."""
        with self._lock:
            taken, self.unexpected = self.unexpected, []
            return taken

    # --- used by the handler ---------------------------------------------------------------
    def _take_rule(self, method: str) -> _Rule | None:
        with self._lock:
            rules = self._rules.get(method)
            if not rules:
                share, rng = self._flaky.get(method, (0.0, None))
                if rng is not None and rng.random() < share:
                    return _Rule("fail", 1, status=500, error="internal_error")
                return None
            rule = rules[0]
            rule.times -= 1
            if rule.times <= 0:
                rules.popleft()
            return rule

    def _record(self, call: Call, problem: str | None = None) -> None:
        with self._changed:
            self._calls.append(call)
            if problem:
                self.unexpected.append(f"{call.method} ({call.path}): {problem}")
            self._changed.notify_all()

    def _perform(self, method: str, body: Body) -> Body:
        try:
            with self._lock:
                return {"ok": True, **METHODS[method](self.workspace, body)}
        except SlackError as exc:
            return {"ok": False, "error": exc.error}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack
    protocol_version = "HTTP/1.1"
    # Headers and body go out separately: without TCP_NODELAY the body waits on a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read calls() and unexpected instead."""

    def do_POST(self) -> None:
        received_at = datetime.now(UTC)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path.startswith("/api/"):
            self._api(unquote(path[len("/api/") :]), raw, received_at)
        elif path.startswith("/response/"):
            self._response_url(path, raw, received_at)
        elif path.startswith("/upload/v1/"):
            self._upload(path, raw, received_at)
        else:
            self._unexpected(path, received_at, "unknown URL", 404, {}, "not_found")

    def _refuse_other_methods(self) -> None:
        self.close_connection = True  # any body is left unread
        path = urlsplit(self.path).path
        error = "method_not_allowed"
        self._unexpected(path, datetime.now(UTC), f"unexpected {self.command}", 405, {}, error)

    do_GET = do_PUT = do_DELETE = do_PATCH = _refuse_other_methods

    def _api(self, method: str, raw: bytes, received_at: datetime) -> None:
        body, problem = decode(raw, self.headers.get("Content-Type", ""))
        if problem:
            self._unexpected(method, received_at, problem, 200, body, "invalid_form_data")
            return
        if method not in METHODS:
            self._unexpected(method, received_at, "unknown method", 404, body, "unknown_method")
            return
        error = token_error(self.headers.get("Authorization"), TOKEN_PREFIX.get(method, "xoxb-"))
        if error:
            self._unexpected(method, received_at, error, 200, body, error)
            return
        self._answer(method, body, received_at, lambda: self.fake._perform(method, body))

    def _response_url(self, path: str, raw: bytes, received_at: datetime) -> None:
        body, problem = decode(raw, self.headers.get("Content-Type", ""))
        if path[len("/response/") :] not in self.fake._response_urls:
            problem = "a response_url the fake never handed out"
        if problem:
            self._unexpected(RESPONSE_URL, received_at, problem, 404, body, "invalid_url")
            return
        self._answer(RESPONSE_URL, body, received_at, lambda: {"ok": True}, path)

    def _upload(self, path: str, raw: bytes, received_at: datetime) -> None:
        file_id = path[len("/upload/v1/") :]
        with self.fake._lock:
            upload = self.fake.workspace.uploads.get(file_id)
        if upload is None:
            self._unexpected(UPLOAD, received_at, "unknown upload URL", 404, {}, "not_found")
            return

        def store() -> Body:
            with self.fake._lock:
                upload.content = raw
            return {"ok": True}

        body = {"file_id": file_id, "length": len(raw)}
        self._answer(UPLOAD, body, received_at, store, path, text=f"OK - {len(raw)}")

    def _answer(
        self,
        method: str,
        body: Body,
        received_at: datetime,
        perform: Callable[[], Body],
        path: str | None = None,
        text: str | None = None,
    ) -> None:
        """Apply the programmed slowness or failure, else perform; record; then answer."""
        if delay := self.fake._slow.get(method):
            self.fake._stopping.wait(delay)
        rule = self.fake._take_rule(method)
        status, headers = 200, {}
        if rule is not None and rule.kind != "accept_then_timeout":
            status = rule.status
            answer: Body = {"ok": False, "error": rule.error}
            if rule.kind == "rate_limit":
                headers["Retry-After"] = str(rule.retry_after)
        else:
            answer = perform()
        call = Call(method, body, self.headers, received_at, status, answer, path or self.path)
        self.fake._record(call)
        if rule is not None and rule.kind == "accept_then_timeout":
            # Slack has done it; the answer comes after the client stopped waiting.
            self.fake._stopping.wait(rule.delay)
            self.close_connection = True
        if text is not None and call.ok:
            self._send(status, text.encode(), "text/plain", headers)
        else:
            self._send(status, json.dumps(answer).encode(), "application/json", headers)

    def _unexpected(
        self, method: str, received_at: datetime, problem: str, status: int, body: Body, error: str
    ) -> None:
        answer = {"ok": False, "error": error}
        path = urlsplit(self.path).path
        self.fake._record(
            Call(method, body, self.headers, received_at, status, answer, path), problem
        )
        self._send(status, json.dumps(answer).encode(), "application/json", {})

    def _send(self, status: int, payload: bytes, media_type: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", f"{media_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True


@contextmanager
def running_fake_slack() -> Iterator[FakeSlack]:
    """A started FakeSlack, stopped on exit."""
    fake = FakeSlack().start()
    try:
        yield fake
    finally:
        fake.stop()
