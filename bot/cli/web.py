"""`winback web`: the HTTP process (Procfile `web`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from bot.cli.common import app, runtime


@app.command("web")
def web_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: $PORT, else 8000).")
    ] = None,
) -> None:
    """Serve the HTTP endpoints (health now; Slack and webhooks as they arrive)."""
    import uvicorn

    from bot.web import create_web_app

    rt = runtime()
    chosen = port or int(os.environ.get("PORT", "8000"))
    uvicorn.run(create_web_app(rt), host=host, port=chosen, log_level="info")
