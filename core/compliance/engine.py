"""The send-time decision: may this message go to this person now? (COMPLIANCE.md §0).

Checks run in the §0 order and the first failure wins, with a stable rule name:

1. Suppression (permanent): ``opted_out`` (an opt-out on any channel stops every channel),
   ``suppression_list``, ``bad_number`` (SMS or call to a number marked bad), ``no_address``;
   then the global pause holds everything (``paused``, until resumed: ``until`` is None).
2. Consent (permanent): ``no_sms_consent`` (marketing SMS needs granted consent; this also
   covers Washington recipients, by property or area code, who need affirmative consent),
   ``email_consent_denied``, ``sms_gateway_address`` (email to an email-to-SMS gateway).
3. Time, day, frequency (held, never dropped): the window rule from ``check_window`` (e.g.
   ``quiet_hours_FL``, ``no_sunday_AL``, ``holiday_UT``, ``louisiana_emergency``), then the
   caps (``cap_FL_24h``, ``cap_24h``, ``cap_7d``). ``until`` is the first whole minute at which
   every cap has released *and* every window is open; None when no such minute can be known
   (a declared emergency, a cap of 0).
4. Content (permanent for this rendering): ``missing_disclosure`` when the rendered text lacks
   the STOP line, NMLS, advertisement notice, Equal Housing legend or unsubscribe link, or any
   of the ``required`` lines (for email: the configured licensing line and support contact).
5. Refinance gating (§7: seasoning, net tangible benefit) happens upstream, when the rate-drop
   trigger picks its batch; a message that reaches here has already passed it.

Transactional messages (``marketing=False``: the HELP answer, the one opt-out confirmation)
go to someone who just wrote to us, maybe to opt out: they skip opt-out, suppression list,
pause, consent, windows, caps and content, but never go to a missing or bad number.

Call tasks (``channel='call_task'``) are the LO's to-do, not a message: only the suppression
checks and the pause apply. The LO calls within business hours.

Cost (budget: 1 ms per decision): a few cached lookups and comparisons. Measured about
14 µs for a send, 15 µs for a cap hold, 28 µs for a quiet-hours hold (one timeit run, 20,000
decisions each, a CA property with a FL phone). To re-check by hand, time
``decide(recipient=Recipient(1, "+13055550123", None, "ok", "granted", "unknown", "CA",
"90210"), channel="sms", at=<an instant>, recent_sends=RecentSends(), paused=False,
config=ComplianceConfig())`` with ``timeit``; there is deliberately no timed test.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from core.book.models import DENIED_CONSENT, GRANTED, OPTED_OUT, Contact
from core.compliance.caps import RecentSends, check_caps
from core.compliance.disclosures import missing_disclosures
from core.compliance.windows import NoSendingWindow, WindowPolicy, check_window, next_open_minute
from core.compliance.zones import Whereabouts, locate
from core.config import ComplianceConfig

SMS = "sms"
EMAIL = "email"
CALL_TASK = "call_task"
CHANNELS = (SMS, EMAIL, CALL_TASK)

# Email-to-SMS/MMS gateways of US and Canadian carriers: mail there lands as a text message.
SMS_GATEWAY_DOMAINS: frozenset[str] = frozenset(
    {
        "vtext.com",
        "vzwpix.com",
        "mypixmessages.com",
        "txt.att.net",
        "mms.att.net",
        "txt.bellmobility.ca",
        "tmomail.net",
        "messaging.sprintpcs.com",
        "pm.sprint.com",
        "messaging.nextel.com",
        "mymetropcs.com",
        "sms.myboostmobile.com",
        "myboostmobile.com",
        "sms.cricketwireless.net",
        "mms.cricketwireless.net",
        "email.uscc.net",
        "mms.uscc.net",
        "vmobl.com",
        "vmpix.com",
        "msg.fi.google.com",
        "text.republicwireless.com",
        "sms.rogers.com",
        "pcs.rogers.com",
        "txt.bell.ca",
        "msg.telus.com",
        "mmst5.tracfone.com",
        "mms.mycricket.com",
        "page.nextel.com",
    }
)


@dataclass(frozen=True)
class Recipient:
    """What the send-time rules need to know about one contact."""

    contact_id: int
    phone: str | None
    email: str | None
    phone_status: str  # 'ok' | 'bad'
    sms_consent: str  # granted | unknown | denied | opted_out
    email_consent: str
    property_state: str | None
    property_zip: str | None
    suppressed_phone: bool = False
    suppressed_email: bool = False

    @classmethod
    def from_contact(cls, contact: Contact, suppressed: Set[tuple[str, str]]) -> Recipient:
        """A recipient from a Contact and the suppression list as {(kind, value)}."""
        email = contact.email.strip().lower() if contact.email else None
        return cls(
            contact_id=contact.id,
            phone=contact.phone or None,
            email=email,
            phone_status=contact.phone_status,
            sms_consent=contact.sms_consent,
            email_consent=contact.email_consent,
            property_state=contact.property_state,
            property_zip=contact.property_zip,
            suppressed_phone=bool(contact.phone) and ("phone", contact.phone) in suppressed,
            suppressed_email=email is not None and ("email", email) in suppressed,
        )


@dataclass(frozen=True)
class Verdict:
    """The decision: send, hold (try again at `until`; None = until told) or suppress."""

    action: str  # 'send' | 'hold' | 'suppress'
    rule: str | None
    until: datetime | None  # for holds: when to try again


SEND = Verdict("send", None, None)


def decide(
    *,
    recipient: Recipient,
    channel: str,
    at: datetime,
    recent_sends: RecentSends,
    paused: bool,
    config: ComplianceConfig,
    rendered_text: str | None = None,
    marketing: bool = True,
    first_of_track: bool = False,
    company_name: str | None = None,
    required: tuple[str, ...] = (),
) -> Verdict:
    """Whether a message may go to `recipient` on `channel` at `at` (UTC), in §0 order."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if not marketing:
        return _transactional(recipient, channel)
    blocked = _suppression(recipient, channel) or _consent(recipient, channel)
    if blocked:
        return _suppress(blocked)
    if paused:
        return Verdict("hold", "paused", None)
    if channel == CALL_TASK:
        return SEND
    timing = _timing(recipient, channel, at, recent_sends, config)
    if timing is not None:
        return timing
    if rendered_text is not None and missing_disclosures(
        channel=channel,
        text=rendered_text,
        first_of_track=first_of_track,
        company_name=company_name,
        required=required,
    ):
        return _suppress("missing_disclosure")
    return SEND


@lru_cache(maxsize=64)
def _suppress(rule: str) -> Verdict:
    return Verdict("suppress", rule, None)


def _transactional(recipient: Recipient, channel: str) -> Verdict:
    """A reply the borrower asked for: only an unreachable address stops it."""
    if not _address(recipient, channel):
        return _suppress("no_address")
    if channel != EMAIL and recipient.phone_status == "bad":
        return _suppress("bad_number")
    return SEND


def _address(recipient: Recipient, channel: str) -> str | None:
    return recipient.email if channel == EMAIL else recipient.phone


def _suppression(recipient: Recipient, channel: str) -> str | None:
    """§0.1: the permanent stops, whatever the channel."""
    if OPTED_OUT in (recipient.sms_consent, recipient.email_consent):
        return "opted_out"
    listed = recipient.suppressed_email if channel == EMAIL else recipient.suppressed_phone
    if listed:
        return "suppression_list"
    if channel != EMAIL and recipient.phone_status == "bad":
        return "bad_number"
    if not _address(recipient, channel):
        return "no_address"
    return None


def _consent(recipient: Recipient, channel: str) -> str | None:
    """§0.2: prior express written consent for SMS; no refusal for email."""
    if channel == SMS and recipient.sms_consent != GRANTED:
        # Washington (property or area code) needs affirmative consent for any SMS: already
        # required for everyone here, so WA recipients get this same rule.
        return "no_sms_consent"
    if channel == EMAIL:
        if recipient.email_consent == DENIED_CONSENT:
            return "email_consent_denied"
        if is_sms_gateway(recipient.email or ""):
            return "sms_gateway_address"
    return None


def is_sms_gateway(email: str) -> bool:
    """Whether an address (or any subdomain of its domain) is a carrier email-to-SMS gateway."""
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    while domain:
        if domain in SMS_GATEWAY_DOMAINS:
            return True
        domain = domain.partition(".")[2]
    return False


def _timing(
    recipient: Recipient,
    channel: str,
    at: datetime,
    recent_sends: RecentSends,
    config: ComplianceConfig,
) -> Verdict | None:
    """§0.3: a hold when a window is closed or a cap is reached, else None."""
    where = _whereabouts(recipient.property_zip, recipient.property_state, recipient.phone)
    policy = _policy(
        config.universal_safe_schedule, config.louisiana_emergency, config.relax_states_for_email
    )
    window = check_window(at=at, where=where, channel=channel, policy=policy)
    # Relaxing states for email relaxes the state caps for email too; ours always apply.
    cap_states = () if channel == EMAIL and policy.relax_states_for_email else where.states
    cap = check_caps(
        sends=recent_sends,
        at=at,
        states=cap_states,
        max_per_24h=config.max_per_24h,
        max_per_7d=config.max_per_7d,
    )
    if window.open and cap is None:
        return None
    rule = cap.rule if window.open and cap is not None else window.rule
    if cap is None:
        return Verdict("hold", rule, window.next_open)
    if cap.until is None:
        return Verdict("hold", rule, None)
    return Verdict("hold", rule, _next_open(cap.until, where, channel, policy))


def _next_open(
    at: datetime, where: Whereabouts, channel: str, policy: WindowPolicy
) -> datetime | None:
    """The first open minute at or after `at`, or None when none can be found."""
    try:
        return next_open_minute(at=at, where=where, channel=channel, policy=policy)
    except NoSendingWindow:
        return None


@lru_cache(maxsize=65536)
def _whereabouts(zip_code: str | None, state: str | None, phone: str | None) -> Whereabouts:
    # Cached so the same Whereabouts object reaches the windows module's own caches.
    return locate(property_zip=zip_code, property_state=state, phone_e164=phone)


@lru_cache(maxsize=8)
def _policy(safe_schedule: bool, louisiana_emergency: bool, relax_email: bool) -> WindowPolicy:
    return WindowPolicy(
        universal_safe_schedule=safe_schedule,
        louisiana_emergency=louisiana_emergency,
        relax_states_for_email=relax_email,
    )
