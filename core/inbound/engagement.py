"""Opens, clicks and savings-page visits, with machine engagement flagged apart.

Mail privacy proxies and link scanners fetch pixels and links without a person: Apple Mail
Privacy Protection loads every pixel through Apple's proxies, security gateways (Safe Links,
Mimecast, Proofpoint, Barracuda) follow every link seconds after delivery. Their hits are kept
(the funnel can show them) but flagged ``machine`` so human engagement is counted apart.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from core.inbound.models import Engagement
from core.outreach.models import Message

OPEN = "open"
CLICK = "click"
VISIT = "visit"

# A person cannot read a message and click within this long of its sending; a scanner can.
TOO_SOON = timedelta(seconds=10)
# Apple's own network (Mail Privacy Protection fetches pixels from it).
_APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
# Mail clients' image fetchers: Gmail's and Yahoo's proxies and Outlook fetch a pixel when a
# person opens the message (unlike Apple's, which prefetch every pixel), so their opens count
# as human; a click from one of them is a link preview, not a person.
_MAIL_CLIENT_FETCHERS = re.compile(
    r"googleimageproxy|yahoomailproxy|ymailproxy|outlook-?(?:ios|android)?-?proxy|"
    r"microsoft office|ms-office|msoffice",
    re.IGNORECASE,
)
_PROXY_AGENTS = re.compile(
    r"googleimageproxy|yahoomailproxy|ymailproxy|outlook-?(?:ios|android)?-?proxy|"
    r"microsoft office|ms-office|safelinks|mimecast|proofpoint|barracuda|symantec|"
    r"messagelabs|forcepoint|trendmicro|sophos|fireeye|zscaler|cisco|ironport|"
    r"bot\b|crawler|spider|preview|headlesschrome|phantomjs|python|curl|wget|go-http|java/|"
    r"okhttp|libwww|httpclient|scanner",
    re.IGNORECASE,
)


def machine_reason(
    *,
    kind: str,
    user_agent: str | None,
    client_ip: str | None,
    sent_at: datetime | None,
    now: datetime,
) -> str | None:
    """Why this hit looks like a machine (None: a person, as far as we can tell)."""
    agent = (user_agent or "").strip()
    if _from_apple(client_ip) and kind == OPEN:
        return "apple_privacy_proxy"
    if kind == OPEN and agent == "Mozilla/5.0":
        return "apple_privacy_proxy"  # MPP's bare agent, seen from every Apple proxy
    if not agent:
        return "no_user_agent"
    if kind == OPEN and _MAIL_CLIENT_FETCHERS.search(agent):
        return None
    if _PROXY_AGENTS.search(agent):
        return "proxy_or_scanner"
    if kind == CLICK and sent_at is not None and now - _aware(sent_at, now) < TOO_SOON:
        return "too_soon_after_sending"
    return None


def record_engagement(
    session: Session,
    *,
    kind: str,
    now: datetime,
    user_agent: str | None,
    client_ip: str | None,
    message: Message | None = None,
    contact_id: int | None = None,
    batch_member_id: int | None = None,
    url: str | None = None,
) -> Engagement:
    """Add one open, click or visit (flagged when a machine made it) to the session."""
    reason = machine_reason(
        kind=kind,
        user_agent=user_agent,
        client_ip=client_ip,
        sent_at=message.sent_at if message is not None else None,
        now=now,
    )
    row = Engagement(
        kind=kind,
        message_id=message.id if message is not None else None,
        contact_id=contact_id if contact_id is not None else (message and message.contact_id),
        batch_member_id=batch_member_id,
        at=now,
        machine=reason is not None,
        machine_reason=reason,
        user_agent=(user_agent or "")[:300] or None,
        url=url,
    )
    session.add(row)
    session.flush()
    return row


def _from_apple(client_ip: str | None) -> bool:
    try:
        return client_ip is not None and ipaddress.ip_address(client_ip) in _APPLE_NETWORK
    except ValueError:
        return False


def _aware(moment: datetime, like: datetime) -> datetime:
    # SQLite hands back naive UTC datetimes.
    return moment.replace(tzinfo=like.tzinfo) if moment.tzinfo is None else moment
