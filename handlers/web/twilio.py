"""Routes: `POST /twilio/sms` (inbound texts, answers TwiML) and `POST /twilio/status`.

Verify → parse → one core call (off the event loop) → respond. The signature is checked with
Twilio's own RequestValidator against PUBLIC_BASE_URL + path (+ query): behind a TLS proxy the
request reaches us as http://127.0.0.1, but Twilio signed the public https address. Without
TWILIO_AUTH_TOKEN nothing is accepted. A request that fails verification gets 403 and changes
nothing; a failure while recording gets 503 (nothing half-written) so Twilio retries.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from core.inbound.sms import receive_sms
from core.inbound.status import receive_status
from core.settings import Settings
from handlers.web.deps import WebDeps

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # Twilio's forms are a few kB; anything bigger is not Twilio
SIGNATURE = "x-twilio-signature"


def signed_url(settings: Settings, request: Request) -> str:
    """The URL Twilio signed: the public base URL, our path and the query string, if any."""
    url = settings.PUBLIC_BASE_URL.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def verified_form(request: Request, settings: Settings) -> dict[str, str] | None:
    """The form fields when X-Twilio-Signature is Twilio's for them; None otherwise."""
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get(SIGNATURE, "")
    if not token or not signature:
        return None
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        return None
    try:
        form = await request.form()
    except Exception:  # a malformed body cannot carry a valid signature either
        return None
    if any(not isinstance(value, str) for _, value in form.multi_items()):
        return None  # Twilio posts plain form fields, never files
    if not RequestValidator(token).validate(signed_url(settings, request), form, signature):
        return None
    return {name: str(value) for name, value in form.items()}


def twiml(message: str | None) -> Response:
    """Our TwiML answer: an empty ``<Response/>`` or one ``<Message>``."""
    answer = MessagingResponse()
    if message:
        answer.message(message)
    return Response(str(answer), media_type="application/xml")


def _unavailable(route: str, exc: Exception) -> Response:
    # The type only: a database error's text carries the statement's parameters (the number).
    logger.error("%s could not be recorded (%s): 503, Twilio retries", route, type(exc).__name__)
    return Response("temporarily unavailable", status_code=503, media_type="text/plain")


def routes(deps: WebDeps) -> list[BaseRoute]:
    """The Twilio webhooks."""

    async def inbound_sms(request: Request) -> Response:
        form = await verified_form(request, deps.settings)
        if form is None:
            return Response("forbidden", status_code=403, media_type="text/plain")
        try:
            answer = await run_in_threadpool(
                receive_sms, sessions=deps.sessions, router=deps.router, form=form,
                headers=dict(request.headers), now=deps.now(), settings=deps.settings,
            )  # fmt: skip
        except Exception as exc:
            return _unavailable("inbound SMS", exc)
        return twiml(answer.message)

    async def status_callback(request: Request) -> Response:
        form = await verified_form(request, deps.settings)
        if form is None:
            return Response("forbidden", status_code=403, media_type="text/plain")
        try:
            await run_in_threadpool(
                receive_status, sessions=deps.sessions, form=form,
                headers=dict(request.headers), now=deps.now(),
            )  # fmt: skip
        except Exception as exc:
            return _unavailable("status callback", exc)
        return Response(status_code=200)

    return [
        Route("/twilio/sms", inbound_sms, methods=["POST"]),
        Route("/twilio/status", status_callback, methods=["POST"]),
    ]
