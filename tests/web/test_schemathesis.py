"""Schemathesis over GET /openapi.json's description against the live server: never a 5xx.

Each operation gets up to 25 generated requests per backend. Twilio webhooks are fuzzed twice:
as schemathesis makes them (a random X-Twilio-Signature: the 403 path) and signed with the real
auth token over PUBLIC_BASE_URL + path, so wild but genuine forms reach the handler and the core
behind it. Inbound email likewise with and without EMAIL_INBOUND_SECRET; token routes get real
signed tokens among the examples as well as garbage.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from twilio.request_validator import RequestValidator

from core import tokens
from handlers.web.openapi import FORM, openapi_document
from tests.outreach import NOW
from tests.web import AUTH_TOKEN, INBOUND_SECRET, SECRET_KEY, LiveWeb

PURPOSES = {"/u/{token}": tokens.UNSUBSCRIBE, "/t/o/{token}": tokens.OPEN,
            "/t/c/{token}": tokens.CLICK, "/s/{token}": tokens.SAVINGS}  # fmt: skip
BOUNDED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much],
)  # fmt: skip


# Genuine subjects: a contact (unsubscribe), a message (open, savings), a message and the URL
# a click goes to; this fresh database has none of those rows, which the routes must survive.
SUBJECTS = {
    tokens.UNSUBSCRIBE: ("1", "987654321", "not-a-number"),
    tokens.OPEN: ("1", "987654321", "not-a-number"),
    tokens.CLICK: ("1 https://maple.example.com/rates", "1 javascript:alert(1)", "1"),
    tokens.SAVINGS: ("1", "987654321", "not-a-number"),
}


def _with_real_tokens(document: dict[str, Any]) -> dict[str, Any]:
    """The description, each token parameter given genuine tokens as examples."""
    for path, purpose in PURPOSES.items():
        real = {
            f"subject {n}": {"value": tokens.sign(
                secret=SECRET_KEY, purpose=purpose, subject=subject, issued_at=NOW)}
            for n, subject in enumerate(SUBJECTS[purpose])
        }  # fmt: skip
        for operation in document["paths"][path].values():
            for parameter in operation["parameters"]:
                if parameter["name"] == "token":
                    parameter["examples"] = real
    return document


SCHEMA = schemathesis.openapi.from_dict(_with_real_tokens(openapi_document("http://127.0.0.1")))
WEBHOOKS = SCHEMA.include(path_regex=r"^/(twilio|email)/")


@SCHEMA.parametrize()
@BOUNDED
def test_no_server_error(case: schemathesis.Case, web: LiveWeb) -> None:
    response = case.call(base_url=web.url, timeout=10)
    case.validate_response(response, checks=[not_a_server_error])


@WEBHOOKS.parametrize()
@BOUNDED
def test_no_server_error_when_genuine(case: schemathesis.Case, web: LiveWeb) -> None:
    form = case.body if isinstance(case.body, dict) else None
    if (
        case.media_type != FORM
        or form is None
        or not all(isinstance(key, str) and isinstance(value, str) for key, value in form.items())
    ):
        return  # not a form Twilio or SendGrid could have sent: the first test covers it
    # As Twilio sends it: a form-urlencoded body (a generated Content-Type is dropped).
    headers = {name: value for name, value in (case.headers or {}).items()
               if name.lower() not in ("content-type", "content-length")
               and isinstance(value, str) and value.isascii() and value.isprintable()}  # fmt: skip
    query = {**(case.query or {})}
    if case.path == "/email/inbound":
        query["secret"] = INBOUND_SECRET
    else:
        url = web.public_base_url.rstrip("/") + case.formatted_path
        headers["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    # Sent with httpx exactly as the form was signed (the signature covers every field).
    response = web.http.post(case.formatted_path, data=form, headers=headers, params=query)
    case.validate_response(response, checks=[not_a_server_error])
    # Genuine credentials are never refused as forged.
    assert response.status_code != 403, (case.path, form, headers)
