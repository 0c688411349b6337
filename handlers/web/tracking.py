"""Routes: `GET /t/o/{token}` (the open pixel) and `GET /t/c/{token}` (a tracked link).

The pixel always answers the GIF, a broken image helps nobody, but only a genuine open token
records an open. A click redirects (302) only to the URL signed into its token: a tampered
token gets a friendly 400 page and an expired one a 410 page, never a redirect. Who fetched
is read from the user agent and the client address (the first X-Forwarded-For hop when a proxy
is in front), so machine engagement (Apple's privacy proxy, link scanners) is flagged.
"""

from __future__ import annotations

import base64
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.inbound.tracking import EXPIRED, GOOD, Hit, read_click, record_click, record_open
from core.outreach.context import token_secret
from handlers.web.deps import WebDeps
from handlers.web.pages import link_problem

logger = logging.getLogger(__name__)

# The smallest transparent GIF89a: one pixel, one transparent colour.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_UNCACHED = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
}


def hit_of(request: Request, deps: WebDeps) -> Hit:
    """Who is fetching: their user agent and address, and when."""
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
    client = forwarded or (request.client.host if request.client else None)
    return Hit(user_agent=request.headers.get("user-agent"), client_ip=client, now=deps.now())


def routes(deps: WebDeps) -> list[BaseRoute]:
    """The open pixel and the click redirect."""

    async def open_pixel(request: Request) -> Response:
        try:
            await run_in_threadpool(
                record_open, sessions=deps.sessions, token=request.path_params["token"],
                secret=token_secret(deps.settings), hit=hit_of(request, deps),
            )  # fmt: skip
        except Exception as exc:  # an open lost is a statistic; the image still loads
            logger.error("open could not be recorded (%s)", type(exc).__name__)
        return Response(PIXEL, media_type="image/gif", headers=_UNCACHED)

    async def click(request: Request) -> Response:
        token = request.path_params["token"]
        hit = hit_of(request, deps)
        try:
            target = await run_in_threadpool(
                record_click, sessions=deps.sessions, token=token,
                secret=token_secret(deps.settings), hit=hit,
            )  # fmt: skip
        except Exception as exc:  # the borrower still gets where the link goes
            logger.error("click could not be recorded (%s)", type(exc).__name__)
            target = read_click(token, secret=token_secret(deps.settings), now=hit.now)
        if target.state == GOOD and target.url:
            return RedirectResponse(target.url, status_code=302, headers=_UNCACHED)
        return link_problem(deps, expired=target.state == EXPIRED)

    return [
        Route("/t/o/{token:path}", open_pixel, methods=["GET"]),
        Route("/t/c/{token:path}", click, methods=["GET"]),
    ]
