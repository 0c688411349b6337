"""Start-up checks of the composition root: refuse to send for real what cannot work yet."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

# The web app and the render context are imported by the check itself, so the CLI (which
# imports this module for its error type) does not pay for them at every command.
if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute

    from bot.runtime import Runtime


class LiveSendingRefused(Exception):
    """Live sending would go wrong; the message is one line saying why."""


def unserved_links(app: Starlette) -> tuple[str, ...]:
    """The routes sent messages need that `app` does not answer: '/u/{token}' for a link
    nobody serves with GET, 'POST /u/{token}' for a callback nobody serves with POST."""
    from starlette.routing import compile_path

    from core.outreach.context import Links

    served = {
        method: [compile_path(path)[0] for path in _paths(app.routes, method)]
        for method in ("GET", "POST")
    }
    token = _example_token()
    missing = []
    for method, template in Links.required_routes():
        # Match a real link's path, not the template text, so a route declared with another
        # parameter name or a converter (`/u/{t:str}`) counts exactly when it answers the link.
        example = template.format(token=token)
        if not any(pattern.match(example) for pattern in served[method]):
            missing.append(template if method == "GET" else f"{method} {template}")
    return tuple(missing)


def refuse_dead_links(runtime: Runtime, app: Starlette | None = None) -> None:
    """When anything is live, refuse to start unless the web process serves every link."""
    if not runtime.settings.live:
        return  # the sandbox sends nothing, so nobody can follow a link
    if app is None:
        from bot.web import create_web_app

        app = create_web_app(runtime)
    missing = unserved_links(app)
    if missing:
        them = "them" if len(missing) > 1 else "it"
        raise LiveSendingRefused(
            f"live sending refused: messages need {', '.join(missing)} "
            f"but the web process does not serve {them} yet"
        )


def _paths(routes: Iterable[BaseRoute], method: str, prefix: str = "") -> Iterator[str]:
    """Full path templates of the routes that answer `method`, through mounted sub-routers."""
    from starlette.routing import Mount, Route

    for route in routes:
        if isinstance(route, Mount):
            yield from _paths(route.routes, method, prefix + route.path)
        elif isinstance(route, Route) and (route.methods is None or method in route.methods):
            yield prefix + route.path


def _example_token() -> str:
    """A token shaped like the ones messages carry (the key and subject do not matter)."""
    from core.tokens import SAVINGS, sign

    issued = datetime(2026, 1, 1, tzinfo=UTC)
    return sign(secret="preflight-example", purpose=SAVINGS, subject=1, issued_at=issued)
