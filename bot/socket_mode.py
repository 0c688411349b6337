"""Socket Mode: the same Bolt app over Slack's WebSocket, for brokers without a public URL.

When SLACK_APP_TOKEN (xapp-…) is set, the web process connects out to Slack (apps.connections.open
at SLACK_API_URL, then the WebSocket it hands out) besides serving POST /slack/events. The SDK's
built-in client does the protocol; its own reconnect is turned off and a watchdog thread owns
reconnection instead: it checks `is_connected()` every few seconds and, when the connection is
gone (Slack closed it, the network dropped, the SDK's ping check found it stale), asks for a new
URL and connects again, backing off while Slack is unreachable. One owner means no two threads
race to reconnect, and a failed reconnect is retried rather than given up on.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from core.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

CHECK_EVERY = 10.0  # seconds between two looks at the connection
MAX_BACKOFF = 120.0  # the longest wait between two failed reconnects
PING_INTERVAL = 10.0  # the SDK pings this often and drops a connection silent for 4 pings


@dataclass
class SocketModeRunning:
    """A started Socket Mode connection and its watchdog; `stop()` ends both."""

    handler: SocketModeHandler
    check_every: float
    max_backoff: float
    connects: int = 0  # connections made (the first one included)
    failures: int = 0  # reconnects that failed in a row
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def is_connected(self) -> bool:
        """Whether the WebSocket to Slack is open right now."""
        return bool(self.handler.client.is_connected())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the watchdog, then close the connection and the SDK's threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        # The SDK's close joins its own threads; one stuck on a dead socket must not keep the
        # process from exiting when the platform stops it (they are daemons: exit ends them).
        closing = threading.Thread(target=self.handler.close, name="winback-socket-close",
                                   daemon=True)  # fmt: skip
        closing.start()
        closing.join(timeout)
        if closing.is_alive():
            logger.warning("Socket Mode: the connection did not close within %.0f s", timeout)
        else:
            logger.info("Socket Mode stopped")

    def _watch(self) -> None:
        """Connect now, then every `check_every` seconds reconnect if the connection is gone."""
        while not self._stop.is_set():
            wait = self.check_every
            if not self.is_connected():
                wait = self._reconnect()
            self._stop.wait(wait)

    def _reconnect(self) -> float:
        """One attempt; how long to wait before the next look."""
        first = self.connects == 0
        try:
            # A fresh URL every time: Slack's tickets are single-use.
            self.handler.client.connect_to_new_endpoint()
        except Exception as exc:  # Slack down, a bad token: log it, back off, try again
            logger.warning("Socket Mode: could not connect (%s: %s)", type(exc).__name__,
                           _error_of(exc))  # fmt: skip
        if self.is_connected():
            self.connects += 1
            self.failures = 0
            logger.info("Socket Mode: %s", "connected" if first else "reconnected")
            return self.check_every
        self.failures += 1
        backoff = min(self.max_backoff, self.check_every * 2 ** min(self.failures - 1, 10))
        wait = backoff * random.uniform(0.8, 1.2)  # jitter: many installs never retry in step
        logger.warning("Socket Mode: not connected; trying again in %.1f s", wait)
        return wait


def start_socket_mode(
    app: App,
    settings: Settings,
    *,
    check_every: float = CHECK_EVERY,
    max_backoff: float = MAX_BACKOFF,
    ping_interval: float = PING_INTERVAL,
) -> SocketModeRunning:
    """Run `app` over Socket Mode in the background (SLACK_APP_TOKEN); `stop()` on shutdown."""
    token = settings.SLACK_APP_TOKEN or ""
    if not token.startswith("xapp-"):
        raise SettingsError("setting SLACK_APP_TOKEN must be an app-level token (xapp-…)")
    handler = SocketModeHandler(
        app,
        app_token=token,
        web_client=app.client,  # SLACK_API_URL, no automatic retries
        logger=logging.getLogger("slack_sdk.socket_mode"),
        auto_reconnect_enabled=False,  # the watchdog reconnects (see the module docstring)
        ping_interval=ping_interval,
    )
    running = SocketModeRunning(handler=handler, check_every=check_every, max_backoff=max_backoff)
    running._thread = threading.Thread(
        target=running._watch, name="winback-socket-mode-watchdog", daemon=True
    )
    running._thread.start()
    return running


def _error_of(exc: Exception) -> str:
    """Slack's error code for an API refusal, else the exception's first line (no tokens)."""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            return str(response.get("error"))
        except AttributeError:
            pass
    return str(exc).splitlines()[0][:200] if str(exc) else ""
