"""GET /openapi.json: an OpenAPI 3.1 description of exactly the non-Slack routes the app serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import schemathesis
from starlette.routing import Route

from bot.runtime import Runtime
from bot.web import create_web_app
from handlers.web.openapi import openapi_document
from tests.web import LiveWeb, MovableClock, web_settings

NOT_DESCRIBED = {"/openapi.json", "/slack/events"}  # the description itself; Slack's own route
METHODS = {"get", "post", "put", "patch", "delete"}
# What SPEC §5 promises for every route: the status a forged or tampered request gets. (The
# open pixel answers its GIF whatever the token, and records nothing for a bad one.)
REFUSALS = {
    ("/twilio/sms", "post"): "403", ("/twilio/status", "post"): "403",
    ("/email/inbound", "post"): "403", ("/u/{token}", "get"): "400",
    ("/u/{token}", "post"): "400", ("/t/c/{token}", "get"): "400", ("/s/{token}", "get"): "400",
}  # fmt: skip


def served(routes: list[Any]) -> set[tuple[str, str]]:
    """(path, method) for every route the app serves, path parameters as OpenAPI writes them."""
    pairs = set()
    for route in routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # '{token:str}' -> '{token}'
        if path in NOT_DESCRIBED or any(path.startswith(p + "/") for p in NOT_DESCRIBED):
            continue
        assert isinstance(route, Route), f"{path}: a mount or websocket this test cannot read"
        pairs |= {(path, method.lower()) for method in route.methods or () if method != "HEAD"}
    return pairs


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(path, method) for every operation in the description."""
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_describes_exactly_what_the_app_serves(tmp_path: Path) -> None:
    settings = web_settings(f"sqlite:///{tmp_path / 'unused.db'}", "https://winback.example.com")
    app = create_web_app(Runtime(settings=settings, clock=MovableClock()))
    document = openapi_document(settings.PUBLIC_BASE_URL)

    app_routes, doc_routes = served(app.routes), described(document)

    assert not app_routes - doc_routes, f"served but not described: {app_routes - doc_routes}"
    assert not doc_routes - app_routes, f"described but not served: {doc_routes - app_routes}"
    assert ("/openapi.json", "get") in {
        (r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in r.methods or ()
    }


def test_served_over_http_and_valid_openapi_31(web: LiveWeb) -> None:
    response = web.http.get("/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document == openapi_document(web.public_base_url)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": web.public_base_url}]
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema


def test_every_operation_says_how_it_refuses() -> None:
    document = openapi_document("https://winback.example.com")

    for (path, method), status in REFUSALS.items():
        operation = document["paths"][path][method]
        assert status in operation["responses"], f"{method.upper()} {path} lacks {status}"
        assert operation["summary"] and operation["operationId"]
    twilio = document["paths"]["/twilio/sms"]["post"]
    form = twilio["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"MessageSid", "AccountSid", "From", "To", "Body", "NumSegments", "OptOutType"} <= set(
        form["properties"]
    )
    status = document["paths"]["/twilio/status"]["post"]["requestBody"]["content"]
    fields = status["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert {"MessageSid", "MessageStatus", "ErrorCode"} <= set(fields)
    email = document["paths"]["/email/inbound"]["post"]["requestBody"]["content"]
    assert {"from", "to", "subject", "text", "headers"} <= set(
        email["multipart/form-data"]["schema"]["properties"]
    )
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_a_missing_route_is_caught() -> None:
    document = openapi_document("https://winback.example.com")
    document["paths"]["/t/x/{token}"] = {"get": {"responses": {"200": {"description": "x"}}}}

    assert ("/t/x/{token}", "get") in described(document)
    assert served([Route("/t/x/{token:str}", lambda r: None, methods=["GET"])]) == {
        ("/t/x/{token}", "get")
    }
