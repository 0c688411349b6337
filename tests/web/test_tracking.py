"""`GET /t/o/{token}` and `GET /t/c/{token}` over real HTTP, from a really dispatched email:
the pixel is a 1×1 transparent GIF that records an open; a tracked link records the click and
redirects only to the URL signed into it; scanners and Apple's proxy are flagged; tampered,
expired or arbitrary tokens never redirect and never answer 5xx."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import io
import re
from datetime import timedelta
from urllib.parse import quote, urlsplit

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.outreach.context import Links
from core.tokens import CLICK, OPEN, sign
from tests.outreach import NOW, SmtpServer, smtp_server  # noqa: F401
from tests.web import SECRET_KEY, LiveWeb
from tests.web.emailing import Sent, engagements, hrefs, path_of, send_emails

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
SAFE_LINKS = "Mozilla/5.0 (compatible; Microsoft SafeLinks URL checker)"


def _sent(web: LiveWeb, smtp: SmtpServer) -> Sent:
    return send_emails(web, smtp, [{"email": "pat@example.com"}])


def _click_links(web: LiveWeb, sent: Sent) -> list[str]:
    return [url for url in hrefs(sent.html()) if url.startswith(web.public_base_url + "/t/c/")]


def _pixel(web: LiveWeb, sent: Sent) -> str:
    (src,) = re.findall(r'<img src="([^"]+/t/o/[^"]+)" width="1" height="1" alt=""', sent.html())
    return src


def _savings_link(sent: Sent) -> str:
    (url,) = re.findall(r"https?://\S+/s/[\w.-]+", sent.text())
    return url


def test_the_email_links_through_the_click_route_and_carries_an_open_pixel(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = _sent(web, smtp_server)

    html = sent.html()
    assert _click_links(web, sent), html
    assert _pixel(web, sent)
    assert "/s/" not in " ".join(hrefs(html))  # the savings page only through /t/c/
    # The plain-text part keeps the direct link, and the unsubscribe link is never tracked.
    assert "/t/" not in sent.text() and _savings_link(sent)
    assert sent.unsubscribe_url() in hrefs(html)


def test_a_click_on_the_savings_link_records_it_and_lands_on_the_savings_page(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = _sent(web, smtp_server)
    (email,) = [m for m in sent.book.messages() if m.channel == "email" and m.sent_at]
    savings = _savings_link(sent)
    web.clock.advance(hours=3)  # she reads it in the afternoon

    for url in _click_links(web, sent):
        response = web.http.get(path_of(url, web), headers={"User-Agent": CHROME})
        assert response.status_code == 302
        assert "set-cookie" not in response.headers
        if urlsplit(response.headers["location"]).path.startswith("/s/"):
            landed = response.headers["location"]

    assert landed == savings
    clicks = [e for e in engagements(web) if e.kind == "click"]
    assert savings in [c.url for c in clicks]
    (click,) = [c for c in clicks if c.url == savings]
    assert (click.message_id, click.contact_id) == (email.id, sent.book.contacts[0])
    assert click.batch_member_id is not None
    assert (click.machine, click.machine_reason, click.user_agent) == (False, None, CHROME)


def test_a_scanner_following_the_link_at_delivery_is_flagged_machine(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = _sent(web, smtp_server)
    url = _click_links(web, sent)[0]

    scanner = web.http.get(path_of(url, web), headers={"User-Agent": SAFE_LINKS})
    at_once = web.http.get(path_of(url, web), headers={"User-Agent": CHROME})

    assert scanner.status_code == at_once.status_code == 302
    reasons = [(e.machine, e.machine_reason) for e in engagements(web)]
    assert reasons == [(True, "proxy_or_scanner"), (True, "too_soon_after_sending")]


def test_the_pixel_is_a_transparent_1x1_gif_that_records_an_open(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = _sent(web, smtp_server)
    (email,) = [m for m in sent.book.messages() if m.channel == "email" and m.sent_at]
    web.clock.advance(minutes=20)

    response = web.http.get(path_of(_pixel(web, sent), web), headers={"User-Agent": CHROME})

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert "no-store" in response.headers["cache-control"]
    assert "set-cookie" not in response.headers
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size) == ("GIF", (1, 1))
    assert image.convert("RGBA").getpixel((0, 0))[3] == 0  # transparent
    (opened,) = engagements(web)
    assert (opened.kind, opened.message_id, opened.machine) == ("open", email.id, False)


def test_apple_privacy_proxy_opens_are_flagged(web: LiveWeb, smtp_server: SmtpServer) -> None:
    sent = _sent(web, smtp_server)
    path = path_of(_pixel(web, sent), web)

    web.http.get(path, headers={"User-Agent": "Mozilla/5.0", "X-Forwarded-For": "104.28.9.1"})
    web.http.get(path, headers={"User-Agent": CHROME, "X-Forwarded-For": "17.58.4.2, 10.0.0.1"})

    assert [(e.machine, e.machine_reason) for e in engagements(web)] == [
        (True, "apple_privacy_proxy"),
        (True, "apple_privacy_proxy"),
    ]


def test_an_invalid_open_token_still_gets_the_image_but_records_nothing(web: LiveWeb) -> None:
    forged = sign(secret="another-key", purpose=OPEN, subject=1, issued_at=NOW)

    for path in (f"/t/o/{forged}", "/t/o/garbage", "/t/o/a/b"):
        response = web.http.get(path)
        assert response.status_code == 200 and response.content[:6] == b"GIF89a"
    assert engagements(web) == []


def test_tampered_click_tokens_get_a_friendly_400_and_never_a_redirect(
    web: LiveWeb, smtp_server: SmtpServer
) -> None:
    sent = _sent(web, smtp_server)
    good = path_of(_click_links(web, sent)[0], web)
    token = good.rsplit("/", 1)[1]
    subject, issued, signature = token.split(".")
    evil = Links(web.public_base_url, "not-our-key").click(1, "https://evil.example/", NOW)
    open_token = sign(secret=SECRET_KEY, purpose=OPEN, subject=1, issued_at=NOW)
    swapped = sign(secret="x", purpose=CLICK, subject="1 https://evil.example/", issued_at=NOW)

    for path in [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        f"/t/c/{swapped.split('.')[0]}.{issued}.{signature}",  # our signature, their URL
        f"/t/c/{subject}.{issued}",
        path_of(evil, web),
        f"/t/c/{open_token}",
        "/t/c/" + quote("https://evil.example/", safe=""),
        "/t/c//evil.example",
    ]:
        response = web.http.get(path)
        assert response.status_code == 400, path
        assert "location" not in response.headers
        assert "This link does not work" in response.text
    assert engagements(web) == []


def test_an_expired_click_link_gets_a_friendly_page(web: LiveWeb) -> None:
    old = Links(web.public_base_url, SECRET_KEY).click(
        1, web.public_base_url + "/s/x", NOW - timedelta(days=181)
    )
    fresh_enough = Links(web.public_base_url, SECRET_KEY).click(
        1, web.public_base_url + "/s/x", NOW - timedelta(days=90)
    )

    expired = web.http.get(path_of(old, web))
    kept = web.http.get(path_of(fresh_enough, web))

    assert expired.status_code == 410 and "location" not in expired.headers
    assert "This link has expired" in expired.text
    assert kept.status_code == 302  # links live at least 90 days (SPEC §5)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(token=st.text(min_size=1, max_size=120))
def test_no_token_at_all_causes_a_5xx_or_a_redirect(web: LiveWeb, token: str) -> None:
    assume(token not in (".", ".."))  # dot segments: the client removes them from the path
    path = quote(token, safe="")
    for method, route in [("GET", "/t/c/"), ("GET", "/t/o/"), ("GET", "/u/"), ("POST", "/u/")]:
        response = web.http.request(method, route + path)
        assert response.status_code < 500, (method, route, token)
        assert "location" not in response.headers, (method, route, token)
