"""The live web process answers on 127.0.0.1 and a real browser can load it."""

from __future__ import annotations

from tests.web import LiveWeb


def test_the_live_process_answers_its_health_check(web: LiveWeb) -> None:
    assert web.http.get("/healthz").json() == {"status": "ok"}


def test_chromium_loads_a_page_from_the_live_process(web: LiveWeb, chromium) -> None:  # type: ignore[no-untyped-def]
    page = chromium.new_page()
    try:
        response = page.goto(web.url + "/healthz")
        assert response is not None and response.status == 200
        assert '"ok"' in page.content()
    finally:
        page.close()
