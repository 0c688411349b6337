"""The unsubscribe page in real headless Chromium at 375 px and 1280 px: both choices present
and labelled, "Stop emails" checked by default, submitting unsubscribes, no JavaScript needed,
no console errors; screenshots kept as artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.book.models import GRANTED, OPTED_OUT
from core.outreach.context import Links
from tests.outreach import NOW, approved_book
from tests.web import SECRET_KEY, LiveWeb

WIDTHS = [375, 1280]


def _open(chromium: Any, web: LiveWeb, width: int) -> tuple[Any, Any, list[str], int]:
    book = approved_book(web.sessions, [{"email": "pat@example.com"}])
    contact_id = book.contacts[0]
    url = Links(web.url, SECRET_KEY).unsubscribe(contact_id, NOW)
    context = chromium.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=False
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _console(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    response = page.goto(url)
    assert response is not None and response.status == 200
    return book, (context, page), problems, contact_id


def _console(message: Any, problems: list[str]) -> None:
    """Keep console errors; the browser's own favicon request (base.html.j2 names no icon, and
    the web process serves none) is not the page's."""
    if message.type != "error":
        return
    if str(message.location.get("url", "")).endswith("/favicon.ico"):
        return
    problems.append(f"{message.text} ({message.location.get('url', '')})")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_offers_both_choices_with_stop_emails_checked(
    web: LiveWeb, chromium: Any, screenshots: Path, width: int
) -> None:
    book, (context, page), problems, contact_id = _open(chromium, web, width)
    try:
        emails = page.get_by_label("Stop emails")
        everything = page.get_by_label("Stop everything (texts and calls too)")
        assert emails.is_visible() and everything.is_visible()
        assert emails.is_checked() and not everything.is_checked()
        assert page.get_by_role("button", name="Unsubscribe").is_visible()
        assert page.locator("html").get_attribute("lang") == "en"
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(screenshots / f"unsubscribe-{width}.png"), full_page=True)
        assert book.contact(contact_id).email_consent == GRANTED  # looking changed nothing
        assert problems == []
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_submitting_the_default_choice_unsubscribes_from_emails(
    web: LiveWeb, chromium: Any, screenshots: Path, width: int
) -> None:
    book, (context, page), problems, contact_id = _open(chromium, web, width)
    try:
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()

        assert page.get_by_role("heading", name="You are unsubscribed").is_visible()
        page.screenshot(path=str(screenshots / f"unsubscribe-done-{width}.png"), full_page=True)
        person = book.contact(contact_id)
        assert (person.email_consent, person.sms_consent) == (OPTED_OUT, GRANTED)
        assert context.cookies() == []
        assert problems == []
    finally:
        context.close()


def test_choosing_stop_everything_stops_texts_too(web: LiveWeb, chromium: Any) -> None:
    book, (context, page), problems, contact_id = _open(chromium, web, 375)
    try:
        page.get_by_label("Stop everything (texts and calls too)").check()
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_load_state()

        assert page.get_by_role("heading", name="You are unsubscribed").is_visible()
        person = book.contact(contact_id)
        assert (person.email_consent, person.sms_consent) == (OPTED_OUT, OPTED_OUT)
        assert problems == []
    finally:
        context.close()
