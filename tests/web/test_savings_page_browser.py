"""The savings page in real headless Chromium at 375 px and 1280 px, one page per trigger: the
figures a reader sees equal core's Decimal math, every figure has its label, nothing scrolls
sideways, text contrast meets WCAG AA, no console errors or warnings, no JavaScript needed;
screenshots kept as artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.batches.models import BatchMember
from core.outreach.context import Links
from tests.web import FROM_NUMBER, SECRET_KEY, LiveWeb
from tests.web.test_savings_page import (
    OTHER_TRIGGERS,
    expected_rows,
    refinance_member,
    refinance_rows,
    trigger_member,
)

WIDTHS = [375, 1280]

# Each table row as [header, value] as the browser lays them out, and every value cell whose
# row has no non-empty header (a figure nobody could read the meaning of).
_ROWS_JS = """() => {
  const cells = [...document.querySelectorAll('main td')];
  return {
    rows: cells.map(td => [td.parentElement.querySelector('th')?.innerText.trim() ?? '',
                           td.innerText.trim()]),
    unlabelled: cells.filter(td => {
      const th = td.parentElement.querySelector('th[scope="row"]');
      return !th || !th.innerText.trim();
    }).map(td => td.innerText),
  };
}"""

# WCAG 2.1 contrast of every element's own text against the background it is drawn on.
_CONTRAST_JS = """() => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    const a = lum(rgb(style.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) low.push(`${el.tagName} ${ratio.toFixed(2)}: ${el.innerText}`);
  }
  return low;
}"""


def _console(message: Any, problems: list[str]) -> None:
    """Keep console errors and warnings (base.html.j2 names a data: icon, so none is fetched)."""
    if message.type in ("error", "warning"):
        problems.append(f"{message.type}: {message.text} ({message.location.get('url', '')})")


def _expected(web: LiveWeb, trigger: str) -> tuple[BatchMember, list[tuple[str, str]]]:
    """The member whose page is opened, and its figures in page order, from core's math."""
    if trigger == "rate_drop":
        member = refinance_member(web)
        headline, remaining_term = refinance_rows(member.snapshot)
        return member, [*headline.items(), *remaining_term]
    member, loan = trigger_member(web, trigger)
    return member, list(expected_rows(member, loan).items())


def _backend(web: LiveWeb) -> str:
    return "postgresql" if web.settings.DATABASE_URL.startswith("postgresql") else "sqlite"


@pytest.mark.parametrize("trigger", ["rate_drop", *OTHER_TRIGGERS])
def test_the_savings_page_reads_right_on_a_phone_and_a_desktop(
    web: LiveWeb, chromium: Any, screenshots: Path, trigger: str
) -> None:
    member, expected = _expected(web, trigger)
    url = Links(web.url, SECRET_KEY).savings(member.id, web.clock.now())
    for width in WIDTHS:
        context = chromium.new_context(
            viewport={"width": width, "height": 900}, java_script_enabled=False
        )
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message, found=problems: _console(message, found))
        page.on("pageerror", lambda error, found=problems: found.append(str(error)))
        page.on("requestfailed", lambda request, found=problems: found.append(request.url))
        try:
            response = page.goto(url)
            assert response is not None and response.status == 200
            figures = page.evaluate(_ROWS_JS)
            assert [tuple(row) for row in figures["rows"]] == expected, width
            assert figures["unlabelled"] == []
            assert page.locator("html").get_attribute("lang") == "en"
            assert page.title() and page.locator("h1").count() == 1
            assert page.get_by_text("This is not a commitment to lend.").is_visible()
            assert page.get_by_text("Equal Housing Opportunity.").is_visible()
            assert page.get_by_text("NMLS ID 765432").is_visible()
            assert page.locator(".photo").is_visible()
            for scheme in ("sms", "tel"):
                button = page.locator(f'a[href="{scheme}:{FROM_NUMBER}"]')
                box = button.bounding_box()
                assert button.is_visible() and box is not None and box["height"] >= 44
            # Nothing wider than the screen: no sideways scrolling on a phone.
            overflow = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert overflow[0] <= overflow[1] == width
            assert page.evaluate(_CONTRAST_JS) == []
            page.screenshot(
                path=str(screenshots / f"savings-{trigger}-{width}-{_backend(web)}.png"),
                full_page=True,
            )
            assert problems == []
        finally:
            context.close()
