"""`winback web`: the HTTP process (Procfile `web`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from bot.cli.common import app, runtime
from core.settings import Settings


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


@app.command("web")
def web_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: $PORT, else 8000).")
    ] = None,
) -> None:
    """Serve the HTTP endpoints: webhooks, unsubscribe, tracking, savings pages, health."""
    import uvicorn

    from bot.web import create_web_app

    rt = runtime()
    rt.sessions  # noqa: B018 - migrate or refuse a stale schema before taking traffic
    chosen = port or int(os.environ.get("PORT", "8000"))
    for line in webhook_summary(rt.settings):
        typer.echo(line, err=True)
    uvicorn.run(create_web_app(rt), host=host, port=chosen, log_level="info")
