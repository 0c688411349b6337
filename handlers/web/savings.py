"""Route: `GET /s/{token}`, the borrower's personal savings page (COMPLIANCE §6)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.inbound.savings import savings_page
from core.outreach.context import token_secret
from core.tokens import SAVINGS, TokenError, max_age_for, verify
from handlers.web.deps import WebDeps
from handlers.web.pages import link_problem, page
from handlers.web.tracking import hit_of


def routes(deps: WebDeps) -> list[BaseRoute]:
    """The savings page."""

    async def show(request: Request) -> Response:
        try:
            subject = verify(
                secret=token_secret(deps.settings), purpose=SAVINGS,
                token=request.path_params["token"], now=deps.now(),
                max_age=max_age_for(SAVINGS),
            )  # fmt: skip
        except TokenError as exc:
            return link_problem(deps, expired="expired" in str(exc))
        if not subject.isdigit():
            return link_problem(deps)
        hit = hit_of(request, deps)
        facts = await run_in_threadpool(
            savings_page, sessions=deps.sessions, batch_member_id=int(subject),
            settings=deps.settings, now=hit.now, user_agent=hit.user_agent,
            client_ip=hit.client_ip,
        )  # fmt: skip
        if facts is None:
            return link_problem(deps)
        return page(deps, "savings.html.j2", facts=facts)

    return [Route("/s/{token:path}", show, methods=["GET"])]
