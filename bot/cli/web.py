"""`winback web`: the HTTP process (Procfile `web`)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import app, fail, runtime
from core.settings import Settings, SettingsError

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.socket_mode import SocketModeRunning


def webhook_summary(settings: Settings) -> list[str]:
    """What the web process will accept, one line per inbound path (printed at start-up)."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    twilio = (
        f"verified with TWILIO_AUTH_TOKEN against {base}/twilio/…"
        if settings.TWILIO_AUTH_TOKEN
        else "refused with 403 (TWILIO_AUTH_TOKEN is not set)"
    )
    email = (
        "guarded by EMAIL_INBOUND_SECRET"
        if settings.EMAIL_INBOUND_SECRET
        else "refused with 403 (EMAIL_INBOUND_SECRET is not set)"
    )
    return [
        f"links in messages point to {base}",
        f"Twilio webhooks (/twilio/sms, /twilio/status): {twilio}",
        f"inbound email (/email/inbound): {email}",
    ]


HostOption = Annotated[str, typer.Option("--host", help="Interface to listen on.")]
PortOption = Annotated[int | None, typer.Option("--port", help="Port (default: $PORT, else 8000).")]


@app.command("web")
def web_command(host: HostOption = "127.0.0.1", port: PortOption = None) -> None:
    """Serve the HTTP endpoints: webhooks, unsubscribe, tracking, savings pages, health."""
    _serve(host, port, with_worker=False)


@app.command("serve")
def serve_command(host: HostOption = "127.0.0.1", port: PortOption = None) -> None:
    """The web process and the worker's jobs in one process, for a small brokerage."""
    _serve(host, port, with_worker=True)


def _serve(host: str, port: int | None, *, with_worker: bool) -> None:
    import uvicorn

    from bot.web import create_web_app

    rt = runtime()
    rt.sessions  # noqa: B018 - migrate or refuse a stale schema before taking traffic
    chosen = port or int(os.environ.get("PORT", "8000"))
    for line in webhook_summary(rt.settings):
        typer.echo(line, err=True)
    web_app = create_web_app(rt)
    stop_worker = _start_worker(rt) if with_worker else None
    socket_mode = _start_socket_mode(rt)
    if socket_mode is not None or stop_worker is not None:
        # uvicorn shuts down gracefully on SIGTERM, then raises it again with the previous
        # handler back: the default one would kill the process before the rest is stopped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # A bounded graceful shutdown: an idle keep-alive client must not hold the process up.
        uvicorn.run(web_app, host=host, port=chosen, log_level="info",
                    timeout_graceful_shutdown=10)  # fmt: skip
    finally:
        if socket_mode is not None:
            socket_mode.stop()
        if stop_worker is not None:
            stop_worker()  # the pass in progress ends after its message in flight


def _start_worker(rt: Runtime) -> Callable[[], None]:
    """The worker's jobs beside the web server; refused in one line if a setting is missing."""
    from bot.runtime import mask_logs
    from bot.worker import start_in_background

    mask_logs()
    try:
        stop = start_in_background(rt)
    except SettingsError as exc:
        fail(str(exc))
    typer.echo("worker jobs: on in this process (cards, dispatch, rates, evaluate…)", err=True)
    return stop


def _start_socket_mode(rt: Runtime) -> SocketModeRunning | None:
    """Socket Mode beside POST /slack/events when SLACK_APP_TOKEN is set (no public URL needed)."""
    if not rt.settings.SLACK_APP_TOKEN:
        return None
    if not rt.settings.slack_enabled:
        typer.echo("Slack Socket Mode: off (SLACK_APP_TOKEN needs SLACK_BOT_TOKEN too)", err=True)
        return None
    from bot.socket_mode import start_socket_mode

    try:
        running = start_socket_mode(rt.slack_app, rt.settings)
    except SettingsError as exc:
        fail(str(exc))
    typer.echo("Slack Socket Mode: on (SLACK_APP_TOKEN is set), connecting to Slack", err=True)
    return running
