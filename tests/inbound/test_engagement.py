"""Machine engagement is told apart from people: Apple's privacy proxy prefetching pixels,
security gateways following links seconds after delivery, bare agents; people on Gmail, Outlook
and phones still count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.inbound.engagement import CLICK, OPEN, machine_reason

NOW = datetime(2026, 9, 24, 18, 0, tzinfo=UTC)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"


@pytest.mark.parametrize(
    ("kind", "agent", "ip", "sent_ago", "reason"),
    [
        (OPEN, IPHONE, "17.58.1.20", timedelta(hours=2), "apple_privacy_proxy"),
        (OPEN, "Mozilla/5.0", "104.28.1.2", timedelta(hours=2), "apple_privacy_proxy"),
        (OPEN, None, "203.0.113.9", timedelta(hours=2), "no_user_agent"),
        (CLICK, "Mozilla/5.0 (compatible; SafeLinks)", "40.94.1.1", timedelta(hours=2),
         "proxy_or_scanner"),
        (CLICK, "Mimecast URL Protect", "205.139.110.1", timedelta(hours=2), "proxy_or_scanner"),
        (CLICK, "python-requests/2.32", "198.51.100.7", timedelta(hours=2), "proxy_or_scanner"),
        (CLICK, CHROME, "198.51.100.7", timedelta(seconds=3), "too_soon_after_sending"),
        (CLICK, OUTLOOK_DESKTOP, "198.51.100.7", timedelta(hours=2), "proxy_or_scanner"),
    ],
)  # fmt: skip
def test_machines_are_flagged_with_their_reason(
    kind: str, agent: str | None, ip: str, sent_ago: timedelta, reason: str
) -> None:
    found = machine_reason(
        kind=kind, user_agent=agent, client_ip=ip, sent_at=NOW - sent_ago, now=NOW
    )

    assert found == reason


@pytest.mark.parametrize(
    ("kind", "agent", "ip", "sent_ago"),
    [
        (CLICK, IPHONE, "198.51.100.7", timedelta(hours=2)),
        (CLICK, CHROME, "198.51.100.7", timedelta(seconds=30)),
        (OPEN, CHROME, "198.51.100.7", timedelta(seconds=2)),  # opening at once is human
        # Gmail's proxy and Outlook fetch the pixel when the person opens the message.
        (OPEN, GMAIL_PROXY, "66.249.84.1", timedelta(hours=2)),
        (OPEN, OUTLOOK_DESKTOP, "198.51.100.7", timedelta(hours=2)),
    ],
)
def test_people_count_as_people(kind: str, agent: str, ip: str, sent_ago: timedelta) -> None:
    found = machine_reason(
        kind=kind, user_agent=agent, client_ip=ip, sent_at=NOW - sent_ago, now=NOW
    )

    assert found is None


def test_a_naive_sent_at_from_sqlite_is_read_as_utc() -> None:
    sent = (NOW - timedelta(seconds=4)).replace(tzinfo=None)

    found = machine_reason(kind=CLICK, user_agent=CHROME, client_ip=None, sent_at=sent, now=NOW)

    assert found == "too_soon_after_sending"


def test_an_unreadable_client_address_is_not_an_error() -> None:
    found = machine_reason(
        kind=OPEN, user_agent=CHROME, client_ip="not-an-ip", sent_at=None, now=NOW
    )

    assert found is None
