"""`GET /openapi.json`: an OpenAPI 3.1 description of every non-Slack route (SPEC §5).

Written by hand as a plain dict, so it says what the routes promise (who signs what, which
status a forged or tampered request gets) rather than what a framework could infer.
tests/web/test_openapi.py fails when the app serves a route this lacks, or the reverse.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from handlers.web.deps import WebDeps

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
HTML = "text/html"


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


def _token(purpose: str) -> dict[str, Any]:
    return {
        "name": "token",
        "in": "path",
        "required": True,
        "description": f"A signed {purpose} token (`<subject>.<issued>.<signature>`, "
        "HMAC-SHA256 with WINBACK_SECRET_KEY); it carries no personal data.",
        "schema": {"type": "string"},
    }


_TWIML = {
    "description": "Accepted and recorded (a retry of a recorded webhook changes nothing and "
    "gets no second answer). The body is TwiML: an empty `<Response/>`, or one `<Message>` "
    "(the opt-out confirmation, the HELP text).",
    "content": {"application/xml": {"schema": {"type": "string"}}},
}
_RECORDED = {"description": "Recorded (a retry of a recorded callback changes nothing)."}
_FORBIDDEN_TWILIO = {
    "description": "X-Twilio-Signature is missing or does not match PUBLIC_BASE_URL + path "
    "and the form (or TWILIO_AUTH_TOKEN is unset); nothing was recorded."
}
_RETRY = {
    "description": "The webhook could not be recorded (the database failed); nothing was "
    "half-written, and the sender retries."
}
_BAD_TOKEN = (
    "The token was tampered with, made for another purpose, or is malformed: "
    "a friendly page, no redirect, nothing recorded."
)

_EXPIRED = "The link has expired: a friendly page, no redirect."

_TWILIO_HEADERS = [
    {
        "name": "X-Twilio-Signature",
        "in": "header",
        "required": True,
        "description": "Base64 HMAC-SHA1 of PUBLIC_BASE_URL + path and the sorted form fields, "
        "keyed with TWILIO_AUTH_TOKEN (twilio's RequestValidator).",
        "schema": {"type": "string"},
    },
    {
        "name": "I-Twilio-Idempotency-Token",
        "in": "header",
        "required": False,
        "description": "Twilio's delivery id: a retry carries the same one and is a no-op "
        "(without it, MessageSid + event is the key).",
        "schema": {"type": "string"},
    },
]

_INBOUND_SMS = {
    "type": "object",
    "required": ["MessageSid", "From", "Body"],
    "additionalProperties": {"type": "string"},
    "properties": {
        "MessageSid": _text("The message's id (SM… or MM…)."),
        "SmsSid": _text("Same as MessageSid (legacy)."),
        "SmsMessageSid": _text("Same as MessageSid (legacy)."),
        "AccountSid": _text("The Twilio account (AC…)."),
        "MessagingServiceSid": _text("The Messaging Service that received it (MG…)."),
        "From": _text("The sender, E.164."),
        "To": _text("Our number, E.164."),
        "Body": _text("What they wrote (up to 1600 characters)."),
        "NumSegments": _text("How many SMS segments it arrived in."),
        "NumMedia": _text("How many media items (MMS) it carries."),
        "OptOutType": _text(
            "Present when Twilio's Advanced Opt-Out already handled a keyword: Winback "
            "records it and sends no answer of its own.",
            enum=["STOP", "START", "HELP"],
        ),
        "ApiVersion": _text("2010-04-01."),
        "SmsStatus": _text("'received'."),
        "FromCity": _text("Geographic hint from the carrier."),
        "FromState": _text("Geographic hint from the carrier."),
        "FromZip": _text("Geographic hint from the carrier."),
        "FromCountry": _text("Geographic hint from the carrier."),
    },
}

_STATUS = {
    "type": "object",
    "required": ["MessageSid", "MessageStatus"],
    "additionalProperties": {"type": "string"},
    "properties": {
        "MessageSid": _text("The message's provider id (as returned when it was sent)."),
        "SmsSid": _text("Same as MessageSid (legacy)."),
        "MessageStatus": _text(
            "The new status; the history is kept and the message's state only moves forward "
            "(queued → sent → delivered | undelivered | failed).",
            enum=[
                "accepted",
                "scheduled",
                "queued",
                "sending",
                "sent",
                "delivered",
                "undelivered",
                "failed",
                "read",
                "canceled",
            ],
        ),
        "SmsStatus": _text("Same as MessageStatus (legacy)."),
        "ErrorCode": _text("Twilio's error code; 21610 means the number opted out (STOP)."),
        "ErrorMessage": _text("Twilio's description of the error."),
        "AccountSid": _text("The Twilio account (AC…)."),
        "MessagingServiceSid": _text("The Messaging Service that sent it (MG…)."),
        "From": _text("Our number, E.164."),
        "To": _text("The recipient, E.164."),
        "ApiVersion": _text("2010-04-01."),
        "RawDlrDoneDate": _text("The carrier's delivery-receipt time (YYMMDDhhmm)."),
    },
}

_INBOUND_EMAIL = {
    "type": "object",
    "required": ["from", "to"],
    "additionalProperties": {"type": "string"},
    "properties": {
        "from": _text("The sender, as in the From header ('Pat <pat@example.com>')."),
        "to": _text("The recipients; a signed reply token in the address matches the touch."),
        "cc": _text("Copied recipients."),
        "subject": _text("The subject."),
        "text": _text("The plain-text body (quoted history and signatures are stripped)."),
        "html": _text("The HTML body, when there is no text part."),
        "headers": _text(
            "The raw headers: Auto-Submitted, Precedence: bulk and out-of-office replies are "
            "recorded but are not warm replies and are never answered."
        ),
        "envelope": _text('SMTP envelope as JSON: {"to": […], "from": "…"}.'),
        "sender_ip": _text("The sending server's IP."),
        "dkim": _text("DKIM results."),
        "SPF": _text("SPF result."),
        "spam_score": _text("SpamAssassin score."),
        "spam_report": _text("SpamAssassin report."),
        "charsets": _text("JSON: the character set of each field."),
        "attachments": _text("Number of attachments."),
    },
}


def _twilio_post(
    summary: str, schema: dict[str, Any], operation_id: str, ok: dict[str, Any]
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["twilio"],
            "security": [{"twilioSignature": []}],
            "parameters": _TWILIO_HEADERS,
            "requestBody": {"required": True, "content": {FORM: {"schema": schema}}},
            "responses": {"200": ok, "403": _FORBIDDEN_TWILIO, "5XX": _RETRY},
        }
    }


def _paths() -> dict[str, Any]:
    return {
        "/twilio/sms": _twilio_post(
            "An inbound SMS: opt-out (keyword or intent), opt-in, HELP, or a warm reply "
            "(stored, the person's sequences stopped, handed to the reply router).",
            _INBOUND_SMS,
            "twilioInboundSms",
            _TWIML,
        ),
        "/twilio/status": _twilio_post(
            "A delivery-status callback, idempotent on (MessageSid, MessageStatus); a late 21610 "
            "records an opt-out.",
            _STATUS,
            "twilioStatusCallback",
            _RECORDED,
        ),
        "/email/inbound": {"post": _email_inbound()},
        "/u/{token}": {"get": _unsubscribe_page(), "post": _one_click()},
        "/t/o/{token}": {"get": _open_pixel()},
        "/t/c/{token}": {"get": _click()},
        "/s/{token}": {"get": _savings()},
        "/healthz": {"get": _health()},
    }


def _email_inbound() -> dict[str, Any]:
    body = {"schema": _INBOUND_EMAIL}
    return {
        "operationId": "emailInbound",
        "summary": "An inbound email (SendGrid Inbound Parse): a warm reply, an opt-out "
        "('unsubscribe', 'remove me'), or an auto-reply (recorded, never answered).",
        "tags": ["email"],
        "security": [{"inboundBasic": []}, {"inboundSecret": []}, {"inboundHeader": []}],
        "requestBody": {"required": True, "content": {MULTIPART: body, FORM: body}},
        "responses": {
            "200": {
                "description": "Recorded; the body names what it was (warm_reply, opt_out, "
                "auto_reply, duplicate…).",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "400": {"description": "The secret was right but the form cannot be read."},
            "403": {
                "description": "EMAIL_INBOUND_SECRET is unset, or no secret offered matches "
                "it (compared in constant time); nothing was read or recorded."
            },
            "5XX": _RETRY,
        },
    }


def _unsubscribe_page() -> dict[str, Any]:
    return {
        "operationId": "unsubscribePage",
        "summary": "The unsubscribe page: stop emails (the default) or stop everything. A GET "
        "never changes anything (mail scanners prefetch links).",
        "tags": ["borrower"],
        "parameters": [_token("unsubscribe")],
        "responses": {"200": _html("The page with its choice."), "400": _html(_BAD_TOKEN)},
    }


def _one_click() -> dict[str, Any]:
    choice = {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "properties": {
            "List-Unsubscribe": _text("RFC 8058 one-click: 'One-Click'.", enum=["One-Click"]),
            "scope": _text(
                "From the page: 'email' (the default) or 'everything'.",
                enum=["email", "everything"],
            ),
        },
    }
    body = {"schema": choice}
    return {
        "operationId": "unsubscribe",
        "summary": "RFC 8058 one-click unsubscribe from email (and the page's form): "
        "idempotent, no cookies, a missing body is fine.",
        "tags": ["borrower"],
        "parameters": [_token("unsubscribe")],
        "requestBody": {"required": False, "content": {FORM: body, MULTIPART: body}},
        "responses": {
            "200": {
                "description": "Unsubscribed (again, if it already was): plain text for a "
                "one-click POST, a confirmation page for the page's form.",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    HTML: {"schema": {"type": "string"}},
                },
            },
            "400": _html(_BAD_TOKEN),
            "413": {"description": "A body far larger than any unsubscribe form."},
            "5XX": _RETRY,
        },
    }


def _open_pixel() -> dict[str, Any]:
    return {
        "operationId": "openPixel",
        "summary": "The open pixel: a genuine token records an open (flagged when a proxy or "
        "scanner made it); any other token records nothing but still gets the image, since a "
        "broken image in a borrower's mail helps nobody.",
        "tags": ["tracking"],
        "parameters": [_token("open")],
        "responses": {
            "200": {
                "description": "A 1×1 transparent GIF, never cached.",
                "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
            },
        },
    }


def _click() -> dict[str, Any]:
    return {
        "operationId": "clickRedirect",
        "summary": "A tracked link: records the click, then redirects to the URL signed into "
        "the token, and only there (never an open redirect).",
        "tags": ["tracking"],
        "parameters": [_token("click")],
        "responses": {
            "302": {
                "description": "To the signed URL.",
                "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
            },
            "400": _html(_BAD_TOKEN),
            "410": _html(_EXPIRED),
        },
    }


def _savings() -> dict[str, Any]:
    return {
        "operationId": "savingsPage",
        "summary": "The borrower's savings page (COMPLIANCE.md §6): their figures from the "
        "trigger's snapshot, every assumption, the loan officer's NMLS ID; a visit is engagement.",
        "tags": ["borrower"],
        "parameters": [_token("savings")],
        "responses": {
            "200": _html("The page."),
            "400": _html(_BAD_TOKEN),
            "410": _html(_EXPIRED),
        },
    }


def _health() -> dict[str, Any]:
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "database": {"type": "string", "description": "Why the database did not answer."},
        },
    }
    json_body = {"application/json": {"schema": status}}
    return {
        "operationId": "health",
        "summary": "200 when the database answers.",
        "tags": ["operations"],
        "responses": {
            "200": {"description": "The database answers.", "content": json_body},
            "503": {"description": "The database does not answer.", "content": json_body},
        },
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the web process at `base_url` (PUBLIC_BASE_URL)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Winback web process",
            "version": "1",
            "description": "Everything a borrower sends or clicks comes back here. A request "
            "that fails verification changes nothing: Twilio and inbound email 403, a tampered "
            "or unknown token 400. /slack/events is Slack's and is not described here.",
        },
        "servers": [{"url": base_url.rstrip("/")}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "twilioSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Twilio-Signature",
                },
                # SendGrid: https://inbound:SECRET@host/email/inbound (the password is checked).
                "inboundBasic": {"type": "http", "scheme": "basic"},
                "inboundSecret": {"type": "apiKey", "in": "query", "name": "secret"},
                "inboundHeader": {"type": "apiKey", "in": "header", "name": "X-Winback-Secret"},
            }
        },
    }


def routes(deps: WebDeps) -> list[BaseRoute]:
    """`GET /openapi.json`."""
    document = openapi_document(deps.settings.PUBLIC_BASE_URL)

    async def openapi(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    return [Route("/openapi.json", openapi, methods=["GET"])]
