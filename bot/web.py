"""The web process: an ASGI app (Starlette under uvicorn). The Slack route joins in step 6."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
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
    return Starlette(routes=routes)
