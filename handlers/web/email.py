"""Route: `POST /email/inbound` (SendGrid Inbound Parse), guarded by EMAIL_INBOUND_SECRET.

SendGrid signs nothing on Inbound Parse, so the operator puts a shared secret in the webhook
URL. Three places are accepted, each compared in constant time:

- HTTP basic auth in the URL (recommended: ``https://inbound:SECRET@host/email/inbound``;
  SendGrid sends it as an Authorization header, so the secret stays out of access logs);
- the query string, ``/email/inbound?secret=SECRET``;
- an ``X-Winback-Secret`` header (for a proxy in front that adds it).

With EMAIL_INBOUND_SECRET unset every request gets 403. A wrong or missing secret gets 403
and nothing is read or written; a failure while recording gets 503 so SendGrid retries.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from core.inbound.email import receive_email
from core.outreach.context import token_secret
from handlers.web.deps import WebDeps

logger = logging.getLogger(__name__)

MAX_BODY = 30 * 1024 * 1024  # SendGrid's limit for a parsed message with attachments
SECRET_HEADER = "x-winback-secret"


def presented_secrets(request: Request) -> list[str]:
    """Every secret the request offers: basic-auth password, ?secret=, X-Winback-Secret."""
    offered = [request.query_params.get("secret", ""), request.headers.get(SECRET_HEADER, "")]
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        offered.append(decoded.partition(":")[2])
    return [secret for secret in offered if secret]


def authorized(request: Request, secret: str | None) -> bool:
    """True when the request carries EMAIL_INBOUND_SECRET (never when it is unset)."""
    if not secret:
        return False
    expected = secret.encode()
    # Compare every offer, not just until a match, so timing tells nothing about which held it.
    matches = [
        hmac.compare_digest(offer.encode(), expected) for offer in presented_secrets(request)
    ]
    return any(matches)


async def email_fields(request: Request) -> dict[str, str] | None:
    """The text fields of the form (attachments are named, not kept); None when unreadable."""
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_BODY):
        return None
    try:
        form = await request.form(max_files=50, max_fields=200)
    except Exception:
        return None
    fields: dict[str, str] = {}
    attachments: list[str] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            attachments.append(f"{name}:{value.filename or ''}"[:200])
        elif name not in fields:
            fields[name] = value
    await form.close()
    if attachments:
        fields["attachment_names"] = ", ".join(attachments)
    return fields


def routes(deps: WebDeps) -> list[BaseRoute]:
    """The inbound email webhook."""

    async def inbound_email(request: Request) -> Response:
        if not authorized(request, deps.settings.EMAIL_INBOUND_SECRET):
            return PlainTextResponse("forbidden", status_code=403)
        fields = await email_fields(request)
        if fields is None:
            return PlainTextResponse("unreadable form", status_code=400)
        try:
            answer = await run_in_threadpool(
                receive_email, sessions=deps.sessions, router=deps.router, form=fields,
                headers=dict(request.headers), now=deps.now(),
                secret=token_secret(deps.settings),
            )  # fmt: skip
        except Exception as exc:
            # The type only: a database error's text carries the statement's parameters.
            logger.error("inbound email could not be recorded (%s): 503", type(exc).__name__)
            return PlainTextResponse("temporarily unavailable", status_code=503)
        return PlainTextResponse(answer.outcome)

    return [Route("/email/inbound", inbound_email, methods=["POST"])]
