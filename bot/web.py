"""The web process: an ASGI app (Starlette under uvicorn). Slack and webhook routes join later."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.runtime import Runtime
from core.health import database_answers


def create_web_app(runtime: Runtime) -> Starlette:
    """Build the web app for `runtime` (no module-level app: tests build their own)."""

    async def healthz(_request: Request) -> JSONResponse:
        ok, problem = database_answers(runtime.engine)
        if ok:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable", "database": problem}, status_code=503)

    return Starlette(routes=[Route("/healthz", healthz, methods=["GET"])])
