"""Live sending is refused while messages would link to routes the web process does not serve."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, compile_path

from bot.preflight import LiveSendingRefused, refuse_dead_links, unserved_links
from bot.runtime import Runtime
from bot.web import create_web_app
from core.book.models import Contact
from core.clock import SystemClock
from core.outreach.context import Links, company_from_settings, render_context
from core.settings import load_settings
from core.tracks.config import load_tracks
from core.tracks.lint import sample_context
from core.tracks.render import render_step

NOW = datetime(2026, 9, 24, 18, 0, tzinfo=UTC)
LIVE = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_FROM_NUMBER": "+14155550100",
    "WINBACK_SECRET_KEY": "test-signing-key",
    "COMPANY_NAME": "Maple Mortgage",
    "COMPANY_NMLS_ID": "123456",
    "COMPANY_ADDRESS": "1 Market St, San Francisco, CA 94105",
}
EVERY_ROUTE = (
    "/u/{token}", "/s/{token}", "/t/c/{token}", "/t/o/{token}", "POST /u/{token}",
    "POST /twilio/status",
)  # fmt: skip


async def _page(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _runtime(**values: str) -> Runtime:
    return Runtime(settings=load_settings(DATABASE_URL="sqlite://", **values), clock=SystemClock())


def test_live_sending_is_refused_while_the_web_app_serves_no_link() -> None:
    app = Starlette(routes=[Route("/healthz", _page)])

    with pytest.raises(LiveSendingRefused) as caught:
        refuse_dead_links(_runtime(**LIVE), app)

    assert str(caught.value) == (
        "live sending refused: messages need " + ", ".join(EVERY_ROUTE)
        + " but the web process does not serve them yet"
    )  # fmt: skip
    assert unserved_links(app) == EVERY_ROUTE


def test_todays_web_app_serves_every_route_a_message_needs() -> None:
    runtime = _runtime(**LIVE)

    assert unserved_links(create_web_app(runtime)) == ()
    refuse_dead_links(runtime)  # does not raise


def test_the_check_passes_once_the_web_app_serves_every_linked_route() -> None:
    app = Starlette(
        routes=[
            Route("/healthz", _page),
            Route("/u/{token}", _page, methods=["GET", "POST"]),
            # Declared another way (a sub-router, another parameter name): still the same link.
            Mount("/s", routes=[Route("/{savings_token:str}", _page)]),
            Mount("/t", routes=[Route("/c/{t}", _page), Route("/o/{t}", _page)]),
            Route("/twilio/status", _page, methods=["POST"]),
        ]
    )

    assert unserved_links(app) == ()
    refuse_dead_links(_runtime(**LIVE), app)  # does not raise


def test_a_route_that_does_not_answer_the_method_does_not_count() -> None:
    app = Starlette(
        routes=[
            Route("/u/{token}", _page, methods=["POST"]),
            Route("/s/{token}", _page),
            Route("/t/c/{token}", _page),
            Route("/t/o/{token}", _page),
            Route("/twilio/status", _page, methods=["GET"]),
        ]
    )

    with pytest.raises(LiveSendingRefused) as caught:
        refuse_dead_links(_runtime(**LIVE), app)

    assert str(caught.value) == (
        "live sending refused: messages need /u/{token}, POST /twilio/status "
        "but the web process does not serve them yet"
    )


def test_one_click_needs_post_on_the_unsubscribe_route() -> None:
    app = Starlette(
        routes=[
            Route("/u/{token}", _page, methods=["GET"]),
            Route("/s/{token}", _page),
            Route("/t/c/{token}", _page),
            Route("/t/o/{token}", _page),
            Route("/twilio/status", _page, methods=["POST"]),
        ]
    )

    assert unserved_links(app) == ("POST /u/{token}",)


def test_the_sandbox_is_never_refused() -> None:
    runtime = _runtime()

    refuse_dead_links(runtime)  # nothing is sent, so no link needs answering
    assert not runtime.settings.live


def test_every_link_a_message_carries_is_one_of_the_listed_routes() -> None:
    settings = load_settings(DATABASE_URL="sqlite://")
    contact = Contact(id=7, first_name="Pat", last_name="Lee")
    for track in load_tracks().values():
        for step in track.steps:
            context = render_context(
                contact=contact, officer=None, batch_member_id=3, trigger="rate_drop",
                snapshot={}, loan=None, step=step, company=company_from_settings(settings),
                links=Links("https://winback.example.com", "key"), email_from=None, now=NOW,
            )  # fmt: skip
            for url in context["links"].values():
                path = urlsplit(url).path
                patterns = [compile_path(t)[0] for t in Links.route_templates()]
                assert any(p.match(path) for p in patterns), (track.name, url)


def test_every_link_of_a_tracked_email_is_one_of_the_listed_routes() -> None:
    links = Links("https://winback.example.com", "key")
    patterns = [compile_path(t)[0] for t in Links.route_templates()]
    for track in load_tracks().values():
        for step in track.steps:
            if step.channel != "email":
                continue
            context = sample_context(track.name)
            context["links"] = {
                "savings": links.savings(3, NOW),
                "unsubscribe": links.unsubscribe(7, NOW),
            }
            rendered = render_step(
                track=track.name, template=step.template, channel="email", context=context
            )
            html = links.tracked_html(rendered.email_html or "", message_id=11, now=NOW)
            ours = re.findall(r'(?:href|src)="(https://winback\.example\.com[^"]*)"', html)
            assert len(ours) >= 3, (track.name, step.template)  # a link, the pixel, unsubscribe
            for url in ours:
                assert any(p.match(urlsplit(url).path) for p in patterns), (track.name, url)
