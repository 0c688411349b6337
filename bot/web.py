"""The web process (Starlette under uvicorn): webhooks, borrower pages, POST /slack/events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.runtime import Runtime
from core.health import database_answers
from handlers.web import openapi, web_routes
from handlers.web.deps import WebDeps


def web_deps(runtime: Runtime) -> WebDeps:
    """What the web handlers share, from the runtime."""
    return WebDeps(
        settings=runtime.settings,
        sessions=lambda: runtime.sessions(),  # the schema check runs on first use
        clock=runtime.clock,
        router=runtime.reply_router,
    )


def create_web_app(runtime: Runtime) -> Starlette:
    """Build the web app for `runtime` (no module-level app: tests build their own)."""

    async def healthz(_request: Request) -> JSONResponse:
        ok, problem = database_answers(runtime.engine)
        if ok:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "database": problem}, status_code=503)

    deps = web_deps(runtime)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *web_routes(deps),
        *openapi.routes(deps),  # describes the routes above (tests/web/test_openapi.py)
    ]
    if runtime.settings.slack_enabled:
        routes.append(slack_route(runtime))
    return Starlette(routes=routes, lifespan=_lifespan(runtime))


def slack_route(runtime: Runtime) -> Route:
    """POST /slack/events: every Slack request, verified by Bolt, run off the event loop."""
    from bot.slack_app import dispatch

    app = runtime.slack_app

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        answer = await run_in_threadpool(
            dispatch,
            app,
            body=body,
            headers=dict(request.headers),
            query=request.url.query,
            signing_secret=runtime.settings.SLACK_SIGNING_SECRET or "",
        )
        headers = {k: v[0] for k, v in answer.headers.items() if k.lower() != "content-length"}
        return Response(content=answer.body, status_code=answer.status, headers=headers)

    return Route("/slack/events", slack_events, methods=["POST"])


def _lifespan(runtime: Runtime):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        router = runtime.__dict__.get("reply_router")  # only if this process made one
        if router is not None and hasattr(router, "close"):
            await run_in_threadpool(router.close)  # cards being posted finish first

    return lifespan
