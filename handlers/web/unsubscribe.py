"""Routes: unsubscribe (being built)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from handlers.web.deps import WebDeps


def routes(deps: WebDeps) -> list[BaseRoute]:
    """The unsubscribe routes."""
    return []
