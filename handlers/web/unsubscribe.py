"""Routes: `GET /u/{token}` (the unsubscribe page) and `POST /u/{token}` (RFC 8058 one-click,
and the page's form). SPEC §5, COMPLIANCE §5.

The GET only reads: mail scanners and link previews fetch every URL in a message. The POST is
honored at once: ``List-Unsubscribe=One-Click``, an empty body or one with no Content-Type at
all unsubscribes from email (a plain-text 200); the page's form sends ``scope=email|all`` and
gets the confirmation page. Idempotent, no cookies, no redirect; a tampered or unknown token
gets a friendly 400 page.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from core.inbound.unsubscribe import (
    EMAIL,
    EVERYTHING,
    ONE_CLICK,
    PAGE,
    page_facts,
    unsubscribe,
)
from core.outreach.context import token_secret
from core.tokens import UNSUBSCRIBE, TokenError, max_age_for, verify
from handlers.web.deps import WebDeps
from handlers.web.pages import NO_STORE, link_problem, page

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # a one-click body is 26 bytes; the page's form a few more


def contact_of(deps: WebDeps, token: str) -> int | None:
    """The contact id of a genuine unsubscribe token (they never expire); None otherwise."""
    try:
        subject = verify(
            secret=token_secret(deps.settings), purpose=UNSUBSCRIBE, token=token,
            now=deps.now(), max_age=max_age_for(UNSUBSCRIBE),
        )  # fmt: skip
    except TokenError:
        return None
    return int(subject) if subject.isdigit() else None


async def choice(request: Request) -> dict[str, str] | None:
    """The POSTed fields, whatever the Content-Type (None: too big to be ours)."""
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_BODY):
        return None
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        try:
            form = await request.form(max_files=0, max_fields=20)
        except Exception:
            return {}
        return {name: value for name, value in form.items() if isinstance(value, str)}
    body = await request.body()
    if len(body) > MAX_BODY:
        return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def routes(deps: WebDeps) -> list[BaseRoute]:
    """The unsubscribe page and one-click target."""

    async def show(request: Request) -> Response:
        contact_id = contact_of(deps, request.path_params["token"])
        if contact_id is None:
            return link_problem(deps)
        facts = await run_in_threadpool(
            page_facts, sessions=deps.sessions, contact_id=contact_id, settings=deps.settings
        )
        if not facts.known:
            return link_problem(deps)
        return page(
            deps, "unsubscribe.html.j2", facts=facts, company=facts.company,
            action=request.url.path,
        )  # fmt: skip

    async def stop(request: Request) -> Response:
        contact_id = contact_of(deps, request.path_params["token"])
        if contact_id is None:
            return link_problem(deps)
        fields = await choice(request)
        if fields is None:
            return PlainTextResponse("too large", status_code=413)
        from_page = "scope" in fields
        scope = EVERYTHING if fields.get("scope") == EVERYTHING else EMAIL
        try:
            done = await run_in_threadpool(
                unsubscribe, sessions=deps.sessions, contact_id=contact_id, scope=scope,
                how=PAGE if from_page else ONE_CLICK, form=fields,
                headers=dict(request.headers), now=deps.now(),
            )  # fmt: skip
        except Exception as exc:
            logger.error("unsubscribe could not be recorded (%s): 503", type(exc).__name__)
            return PlainTextResponse("temporarily unavailable, please try again", 503)
        if done is None:
            return link_problem(deps)
        if not from_page:
            return PlainTextResponse("You are unsubscribed.", headers=NO_STORE)
        return page(deps, "unsubscribe_done.html.j2", scope=done.scope)

    return [
        Route("/u/{token:path}", show, methods=["GET"]),
        Route("/u/{token:path}", stop, methods=["POST"]),
    ]
