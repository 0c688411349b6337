"""Socket Mode over a real WebSocket: apps.connections.open on the fake Slack hands out a URL on
a loopback WebSocket server (aiohttp) that plays Slack's side: `hello`, then envelopes; the app
acks each over the socket. When the server drops the connection, the watchdog reconnects with a
fresh URL; when Slack is down, it backs off and keeps trying."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from aiohttp import WSMsgType
from aiohttp import web as aioweb

from bot.socket_mode import SocketModeRunning, start_socket_mode
from core.outreach.switches import is_paused
from core.settings import SettingsError
from tests.fakes.slack_api import RESPONSE_URL, FakeSlack
from tests.slack.live import BOT_TOKEN, MANAGER, SIGNING_SECRET, slack_settings, slack_web
from tests.slack.signing import APP_ID, slash_command_body
from tests.web import LiveWeb, free_port

Envelope = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]


class SlackSocket:
    """Slack's Socket Mode side on 127.0.0.1: accepts only tickets the fake Slack handed out,
    each once; says hello; records what the app sends back."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.connections = 0
        self.hellos = 0
        self.closed = 0
        self.received: list[Envelope] = []
        self.refused: list[str] = []
        self._used: set[str] = set()
        self._current: aioweb.WebSocketResponse | None = None
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._runner: aioweb.AppRunner | None = None
        self.port = 0

    def start(self) -> SlackSocket:
        """Serve from a background thread's event loop."""
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Close every connection and stop serving."""
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)

    @property
    def http_url(self) -> str:
        """Where the fake's apps.connections.open points (ws:// once it swaps the scheme)."""
        return f"http://127.0.0.1:{self.port}"

    def send(self, envelope: Envelope) -> None:
        """Send one envelope on the current connection."""
        assert self._current is not None, "nobody is connected"
        self._call(self._current.send_str(json.dumps(envelope)))

    def drop(self) -> None:
        """Close the current connection from Slack's side (as Slack does now and then)."""
        assert self._current is not None
        self._call(self._current.close(code=1001, message=b"going away"))

    def wait(self, what: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until `what()` holds."""
        with self._changed:
            if not self._changed.wait_for(what, timeout):
                raise AssertionError(
                    f"timed out: {self.connections} connections, {self.hellos} hellos, "
                    f"received {self.received}, refused {self.refused}"
                )

    def ack_of(self, envelope_id: str, timeout: float = 10) -> Envelope:
        """The app's acknowledgement of `envelope_id`."""
        self.wait(lambda: any(m.get("envelope_id") == envelope_id for m in self.received), timeout)
        return next(m for m in self.received if m.get("envelope_id") == envelope_id)

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _start(self) -> None:
        app = aioweb.Application()
        app.router.add_get("/link/", self._link)
        self._runner = aioweb.AppRunner(app)
        await self._runner.setup()
        site = aioweb.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _handed_out(self) -> set[str]:
        urls = [c.answer.get("url", "") for c in self.fake.calls("apps.connections.open")]
        return {dict(parse_qsl(urlsplit(url).query)).get("ticket", "") for url in urls}

    async def _link(self, request: aioweb.Request) -> aioweb.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._handed_out() or ticket in self._used:
            with self._changed:
                self.refused.append(ticket)
                self._changed.notify_all()
            return aioweb.Response(status=401, text="invalid ticket")
        self._used.add(ticket)
        ws = aioweb.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._current = ws
        with self._changed:
            self.connections += 1
            self._changed.notify_all()
        hello = {
            "type": "hello",
            "num_connections": 1,
            "connection_info": {"app_id": APP_ID},
            "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
        }
        await ws.send_str(json.dumps(hello))
        with self._changed:
            self.hellos += 1
            self._changed.notify_all()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                with self._changed:
                    self.received.append(json.loads(message.data))
                    self._changed.notify_all()
        with self._changed:
            self.closed += 1
            self._changed.notify_all()
        return ws


@pytest.fixture
def slack_socket(fake_slack: FakeSlack) -> Iterator[SlackSocket]:
    """The WebSocket server, with the fake's apps.connections.open pointing at it (Slack's
    socket host is not its API host either)."""
    server = SlackSocket(fake_slack).start()
    fake_slack.workspace.root_url = server.http_url
    yield server
    server.stop()


@pytest.fixture
def web(database_url: str, fake_slack: FakeSlack, slack_socket: SlackSocket) -> Iterator[LiveWeb]:
    """`winback web` with Slack set up (and an app-level token), on SQLite and PostgreSQL."""
    yield from slack_web(database_url, fake_slack, SLACK_APP_TOKEN=fake_slack.app_token)


@pytest.fixture
def socket_mode(web: LiveWeb) -> Iterator[SocketModeRunning]:
    """The web process's Bolt app over Socket Mode, its watchdog looking every 0.2 s."""
    running = start_socket_mode(web.runtime.slack_app, web.settings, check_every=0.2,
                                max_backoff=0.5)  # fmt: skip
    yield running
    running.stop()


def eventually(what: Callable[[], bool], timeout: float = 10) -> None:
    """Wait until `what()` holds (state another thread is about to record)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if what():
            return
        done.wait(0.02)
    raise AssertionError("timed out waiting")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def slash_envelope(envelope_id: str, text: str, *, user: str, response_url: str) -> Envelope:
    """A /winback command as Socket Mode delivers it."""
    body = slash_command_body(text=text, user_id=user, response_url=response_url)
    payload = dict(parse_qsl(body.decode()))
    return {"envelope_id": envelope_id, "type": "slash_commands", "payload": payload,
            "accepts_response_payload": True}  # fmt: skip


def test_a_slash_command_over_the_socket_is_acked_and_answered(
    web: LiveWeb, fake_slack: FakeSlack, slack_socket: SlackSocket, socket_mode: SocketModeRunning
) -> None:
    slack_socket.wait(lambda: slack_socket.hellos == 1)
    (opened,) = fake_slack.calls("apps.connections.open")
    assert opened.headers["Authorization"] == f"Bearer {fake_slack.app_token}"

    slack_socket.send(slash_envelope("env-help-1", "help", user=MANAGER,
                                     response_url=fake_slack.response_url("help")))  # fmt: skip
    ack = slack_socket.ack_of("env-help-1")
    assert "/winback" in json.dumps(ack["payload"]["blocks"])  # the help, in the ack itself

    slack_socket.send(slash_envelope("env-pause-1", "pause", user=MANAGER,
                                     response_url=fake_slack.response_url("pause")))  # fmt: skip
    assert slack_socket.ack_of("env-pause-1")["envelope_id"] == "env-pause-1"
    fake_slack.wait_for(RESPONSE_URL, lambda c: c.path == "/response/pause")
    with web.sessions() as session:
        assert is_paused(session)  # the handler ran, over the socket


def test_the_watchdog_reconnects_when_slack_drops_the_connection(
    web: LiveWeb, fake_slack: FakeSlack, slack_socket: SlackSocket, socket_mode: SocketModeRunning
) -> None:
    slack_socket.wait(lambda: slack_socket.hellos == 1)
    slack_socket.drop()
    slack_socket.wait(lambda: slack_socket.closed == 1)

    slack_socket.wait(lambda: slack_socket.hellos == 2)
    assert len(fake_slack.calls("apps.connections.open")) == 2  # a fresh URL, never the old one
    assert slack_socket.refused == []
    slack_socket.send(slash_envelope("env-after", "help", user=MANAGER,
                                     response_url=fake_slack.response_url("after")))  # fmt: skip
    assert slack_socket.ack_of("env-after")["payload"]["blocks"]  # the new connection works
    eventually(lambda: socket_mode.connects == 2)


def test_while_slack_is_down_the_watchdog_keeps_trying(
    web: LiveWeb, fake_slack: FakeSlack, slack_socket: SlackSocket
) -> None:
    fake_slack.fail_next("apps.connections.open", status=500, times=2)
    running = start_socket_mode(web.runtime.slack_app, web.settings, check_every=0.1,
                                max_backoff=0.2)  # fmt: skip
    try:
        slack_socket.wait(lambda: slack_socket.hellos == 1)
        statuses = [c.status for c in fake_slack.calls("apps.connections.open")]
        assert statuses == [500, 500, 200]
        eventually(lambda: running.connects == 1)  # the watchdog counts it just after
        assert running.is_connected() and running.failures == 0
    finally:
        running.stop()
    slack_socket.wait(lambda: slack_socket.closed == 1)  # stop() closed the socket
    assert not running.is_connected()


def test_an_app_token_that_is_not_xapp_is_refused_at_start(web: LiveWeb) -> None:
    settings = web.settings.model_copy(update={"SLACK_APP_TOKEN": BOT_TOKEN})
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN must be an app-level token"):
        start_socket_mode(web.runtime.slack_app, settings)


def test_winback_web_runs_socket_mode_and_stops_it_on_shutdown(
    database_url: str, fake_slack: FakeSlack, slack_socket: SlackSocket, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TWILIO_"))},
        **slack_settings(fake_slack, SLACK_APP_TOKEN=fake_slack.app_token),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": "http://127.0.0.1",
    }
    cli = [sys.executable, "-m", "bot.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    log = (tmp_path / "web.log").open("w+")
    port = free_port()
    process = subprocess.Popen([*cli, "web", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        slack_socket.wait(lambda: slack_socket.hellos == 1, timeout=30)
        eventually(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        slack_socket.send(slash_envelope("env-cli", "help", user=MANAGER,
                                         response_url=fake_slack.response_url("cli")))  # fmt: skip
        assert slack_socket.ack_of("env-cli")["payload"]["blocks"]
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            log.seek(0)
            pytest.fail(f"winback web did not stop within 30 s of SIGTERM:\n{log.read()}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log.seek(0)
    output = log.read()
    assert "Slack Socket Mode: on" in output, output
    assert BOT_TOKEN not in output and fake_slack.app_token not in output
    slack_socket.wait(lambda: slack_socket.closed == 1)  # shutdown closed the socket
