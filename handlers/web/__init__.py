"""The web process's HTTP routes (SPEC §5), one module per audience, each thin:
verify → parse → one core call → respond. Database work runs off the event loop."""

from __future__ import annotations

from starlette.routing import BaseRoute

from handlers.web import email, savings, tracking, twilio, unsubscribe
from handlers.web.deps import WebDeps


def web_routes(deps: WebDeps) -> list[BaseRoute]:
    """Every non-Slack route of the web process."""
    routes: list[BaseRoute] = []
    for module in (twilio, email, unsubscribe, tracking, savings):
        routes += module.routes(deps)
    return routes
