"""The send-time decision, rule by rule at its boundary, and in the §0 order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.book.models import Contact
from core.compliance.caps import RecentSends, check_caps
from core.compliance.engine import Recipient, Verdict, decide, is_sms_gateway
from core.compliance.windows import WindowPolicy, check_window
from core.compliance.zones import STATE_ZONES, locate
from core.config import ComplianceConfig

EASTERN = "America/New_York"
PACIFIC = "America/Los_Angeles"
DEFAULTS = ComplianceConfig()

NEW_YORKER = Recipient(
    contact_id=1,
    phone="+12125550123",
    email="pat@example.com",
    phone_status="ok",
    sms_consent="granted",
    email_consent="granted",
    property_state="NY",
    property_zip="10001",
)
FLORIDIAN = replace(NEW_YORKER, phone="+13055550123", property_state="FL", property_zip="33101")
GOOD_SMS = (
    "Hi Pat, rates moved: https://x.co/s/abc - Jo Lee, Acme Lending, NMLS 12345. "
    "Reply STOP to opt out"
)
GOOD_EMAIL = (
    "Hi Pat,\n--\nThis is an advertisement.\nAcme Lending, NMLS 999, 1 Main St\n"
    "Jo Lee, NMLS 12345\nEqual Housing Opportunity.\nUnsubscribe: https://go.acme.com/u/tok123"
)


def wall(zone: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """The UTC instant when a clock in `zone` shows this wall time."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# A Friday in July, mid-afternoon everywhere in the mainland.
FRIDAY_NOON_EASTERN = wall(EASTERN, 2025, 7, 11, 14)


def check(
    recipient: Recipient = NEW_YORKER,
    *,
    channel: str = "sms",
    at: datetime = FRIDAY_NOON_EASTERN,
    sends: list[datetime] | None = None,
    paused: bool = False,
    config: ComplianceConfig = DEFAULTS,
    **options: object,
) -> Verdict:
    return decide(
        recipient=recipient,
        channel=channel,
        at=at,
        recent_sends=RecentSends(list(sends or [])),
        paused=paused,
        config=config,
        **options,  # type: ignore[arg-type]
    )


def held(rule: str, until: datetime | None) -> Verdict:
    return Verdict("hold", rule, until)


def suppressed(rule: str) -> Verdict:
    return Verdict("suppress", rule, None)


SEND = Verdict("send", None, None)


# --- 1. suppression ---------------------------------------------------------------------


def test_a_clean_recipient_in_the_window_is_sent_to_on_both_channels() -> None:
    assert check(channel="sms") == SEND
    assert check(channel="email") == SEND


@pytest.mark.parametrize("channel", ["sms", "email", "call_task"])
def test_an_opt_out_on_either_channel_stops_every_channel(channel: str) -> None:
    email_opt_out = replace(NEW_YORKER, email_consent="opted_out")
    sms_opt_out = replace(NEW_YORKER, sms_consent="opted_out")
    assert check(email_opt_out, channel=channel) == suppressed("opted_out")
    assert check(sms_opt_out, channel=channel) == suppressed("opted_out")


def test_the_suppression_list_blocks_only_the_listed_address() -> None:
    phone_listed = replace(NEW_YORKER, suppressed_phone=True)
    email_listed = replace(NEW_YORKER, suppressed_email=True)
    assert check(phone_listed, channel="sms") == suppressed("suppression_list")
    assert check(phone_listed, channel="email") == SEND
    assert check(email_listed, channel="email") == suppressed("suppression_list")
    assert check(email_listed, channel="sms") == SEND


def test_a_bad_number_blocks_sms_but_not_email() -> None:
    bad = replace(NEW_YORKER, phone_status="bad")
    assert check(bad, channel="sms") == suppressed("bad_number")
    assert check(bad, channel="email") == SEND


def test_a_missing_address_is_suppressed_per_channel() -> None:
    assert check(replace(NEW_YORKER, phone=None), channel="sms") == suppressed("no_address")
    assert check(replace(NEW_YORKER, email=None), channel="email") == suppressed("no_address")
    assert check(replace(NEW_YORKER, email=""), channel="email") == suppressed("no_address")


def test_the_global_pause_holds_until_resumed() -> None:
    assert check(paused=True) == held("paused", None)
    assert check(paused=True, channel="email") == held("paused", None)


def test_a_paused_and_opted_out_contact_is_suppressed_as_opted_out_first() -> None:
    assert check(replace(NEW_YORKER, sms_consent="opted_out"), paused=True) == suppressed(
        "opted_out"
    )


def test_the_recipient_is_built_from_a_contact_and_the_suppression_list() -> None:
    contact = Contact(
        id=7,
        phone="+12125550123",
        email="pat@example.com",
        phone_status="ok",
        sms_consent="granted",
        email_consent="unknown",
        property_state="NY",
        property_zip="10001",
    )
    listed = Recipient.from_contact(contact, {("phone", "+12125550123")})
    assert listed.contact_id == 7
    assert listed.suppressed_phone and not listed.suppressed_email
    assert check(listed) == suppressed("suppression_list")
    other = Recipient.from_contact(contact, {("email", "PAT@example.com".lower())})
    assert other.suppressed_email and not other.suppressed_phone


# --- 2. consent -------------------------------------------------------------------------


@pytest.mark.parametrize("consent", ["unknown", "denied"])
def test_marketing_sms_needs_granted_consent(consent: str) -> None:
    assert check(replace(NEW_YORKER, sms_consent=consent)) == suppressed("no_sms_consent")


def test_washington_without_consent_gets_no_sms_by_property_or_area_code() -> None:
    wa_property = replace(NEW_YORKER, phone="+14155550123", property_state="WA", property_zip=None)
    wa_phone = replace(NEW_YORKER, phone="+12065550123", property_state="CA", property_zip=None)
    for person in (wa_property, wa_phone):
        assert check(replace(person, sms_consent="unknown")) == suppressed("no_sms_consent")
        assert check(person) == SEND


def test_email_is_allowed_unless_refused() -> None:
    assert check(replace(NEW_YORKER, email_consent="unknown"), channel="email") == SEND
    denied = replace(NEW_YORKER, email_consent="denied")
    assert check(denied, channel="email") == suppressed("email_consent_denied")


@pytest.mark.parametrize(
    "address",
    ["2125550123@vtext.com", "2125550123@TXT.ATT.NET", "2125550123@tmomail.net", "x@mms.att.net"],
)
def test_email_to_an_sms_gateway_is_suppressed(address: str) -> None:
    gateway = replace(NEW_YORKER, email=address)
    assert check(gateway, channel="email") == suppressed("sms_gateway_address")


def test_gateway_domains_match_whole_domain_labels_only() -> None:
    assert is_sms_gateway("a@messaging.sprintpcs.com")
    assert not is_sms_gateway("a@notvtext.com")
    assert not is_sms_gateway("a@vtext.com.example.org")
    assert not is_sms_gateway("")


# --- 3. time and day --------------------------------------------------------------------


def test_2059_local_sends_and_2100_holds_until_0800_next_morning() -> None:
    assert check(at=wall(EASTERN, 2025, 7, 11, 20, 59)) == SEND
    assert check(at=wall(EASTERN, 2025, 7, 11, 21, 0)) == held(
        "quiet_hours_federal", wall(EASTERN, 2025, 7, 12, 8, 0)
    )


def test_florida_closes_at_2000() -> None:
    assert check(FLORIDIAN, at=wall(EASTERN, 2025, 7, 11, 19, 59)) == SEND
    assert check(FLORIDIAN, at=wall(EASTERN, 2025, 7, 11, 20, 0)) == held(
        "quiet_hours_FL", wall(EASTERN, 2025, 7, 12, 8, 0)
    )


def test_a_california_property_with_a_florida_phone_obeys_both() -> None:
    both = replace(FLORIDIAN, property_state="CA", property_zip="90210")
    # 08:00 Eastern is 05:00 in California: the federal window is shut there.
    assert check(both, at=wall(PACIFIC, 2025, 7, 11, 7, 59)) == held(
        "quiet_hours_federal", wall(PACIFIC, 2025, 7, 11, 8, 0)
    )
    assert check(both, at=wall(PACIFIC, 2025, 7, 11, 16, 59)) == SEND
    # 17:00 Pacific is 20:00 Eastern: Florida's rule, on the phone's clock.
    assert check(both, at=wall(PACIFIC, 2025, 7, 11, 17, 0)) == held(
        "quiet_hours_FL", wall(PACIFIC, 2025, 7, 12, 8, 0)
    )


def test_an_unknown_zone_needs_every_us_zone_open() -> None:
    nowhere = replace(NEW_YORKER, phone=None, property_state=None, property_zip=None)
    # Honolulu is six hours behind New York in July: 14:00 Eastern is 08:00 there.
    assert check(nowhere, channel="email", at=wall(EASTERN, 2025, 7, 11, 13, 59)).action == "hold"
    assert check(nowhere, channel="email", at=wall(EASTERN, 2025, 7, 11, 14, 0)) == SEND
    assert check(nowhere, channel="email", at=wall(EASTERN, 2025, 7, 11, 21, 0)) == held(
        "quiet_hours_federal", wall(EASTERN, 2025, 7, 12, 14, 0)
    )


def test_email_follows_state_windows_unless_the_operator_relaxes_them() -> None:
    at = wall(EASTERN, 2025, 7, 11, 20, 30)
    assert check(FLORIDIAN, channel="email", at=at).rule == "quiet_hours_FL"
    relaxed = ComplianceConfig(relax_states_for_email=True)
    assert check(FLORIDIAN, channel="email", at=at, config=relaxed) == SEND
    assert check(FLORIDIAN, channel="sms", at=at, config=relaxed).rule == "quiet_hours_FL"


def test_a_louisiana_emergency_holds_with_no_known_end() -> None:
    louisianan = replace(NEW_YORKER, phone="+15045550123", property_state="LA", property_zip=None)
    emergency = ComplianceConfig(louisiana_emergency=True)
    assert check(louisianan, config=emergency) == held("louisiana_emergency", None)


# --- 3. frequency -----------------------------------------------------------------------


def test_a_message_exactly_24h_after_the_last_is_allowed() -> None:
    last = wall(EASTERN, 2025, 7, 10, 14)
    assert check(sends=[last], at=last + timedelta(hours=24)) == SEND


def test_a_message_1_minute_early_is_held_until_exactly_24h() -> None:
    last = wall(EASTERN, 2025, 7, 10, 14)
    at = last + timedelta(hours=23, minutes=59)
    assert check(sends=[last], at=at) == held("cap_24h", last + timedelta(hours=24))


def test_a_cap_hold_ends_in_an_open_window() -> None:
    safe = ComplianceConfig(universal_safe_schedule=True)
    friday_evening = wall(EASTERN, 2025, 7, 11, 17, 30)
    saturday = wall(EASTERN, 2025, 7, 12, 10, 0)
    # Free from Saturday 17:30, but the safe schedule closes Saturdays at 17:00 and all Sunday.
    assert check(sends=[friday_evening], at=saturday, config=safe) == held(
        "cap_24h", wall(EASTERN, 2025, 7, 14, 10, 0)
    )


def test_the_window_rule_is_named_before_the_cap_and_until_satisfies_both() -> None:
    last = wall(EASTERN, 2025, 7, 11, 20, 30)
    night = wall(EASTERN, 2025, 7, 11, 22, 0)
    assert check(sends=[last], at=night) == held("quiet_hours_federal", last + timedelta(hours=24))


def test_three_messages_in_seven_days_hold_until_the_oldest_leaves() -> None:
    now = wall(EASTERN, 2025, 7, 11, 14)
    sends = [now - timedelta(days=6), now - timedelta(days=4), now - timedelta(days=2)]
    assert check(sends=sends, at=now) == held("cap_7d", now + timedelta(days=1))
    assert check(sends=sends, at=now + timedelta(days=1)) == SEND


def test_sends_on_another_channel_count_for_the_cap() -> None:
    last_email = wall(EASTERN, 2025, 7, 11, 9)
    assert check(channel="sms", sends=[last_email]).rule == "cap_24h"


def test_a_florida_state_cap_sits_under_the_stricter_default() -> None:
    now = wall(EASTERN, 2025, 7, 11, 14)
    one = [now - timedelta(hours=3)]
    assert check(FLORIDIAN, sends=one, at=now) == held("cap_24h", one[0] + timedelta(hours=24))
    # The law's 3 per 24 h only shows when the operator's cap would allow more than 3.
    three = [now - timedelta(hours=h) for h in (20, 10, 3)]
    hold = check_caps(sends=RecentSends(three), at=now, states={"FL"}, max_per_24h=5, max_per_7d=9)
    assert hold is not None
    assert (hold.rule, hold.until) == ("cap_FL_24h", now + timedelta(hours=4))


# --- 4. content -------------------------------------------------------------------------


def test_the_first_sms_of_a_track_needs_the_stop_line() -> None:
    no_stop = GOOD_SMS.replace(" Reply STOP to opt out", "")
    assert check(rendered_text=GOOD_SMS, first_of_track=True) == SEND
    assert check(rendered_text=no_stop, first_of_track=True) == suppressed("missing_disclosure")
    assert check(rendered_text=no_stop, first_of_track=False) == SEND


def test_an_sms_needs_the_company_name_when_it_is_given() -> None:
    assert check(rendered_text=GOOD_SMS, company_name="acme lending") == SEND
    other = check(rendered_text=GOOD_SMS, company_name="Evergreen Mountain Lending")
    assert other == suppressed("missing_disclosure")


@pytest.mark.parametrize(
    "drop", ["This is an advertisement.", "NMLS", "Equal Housing Opportunity.", "/u/tok123"]
)
def test_an_email_needs_every_footer_disclosure(drop: str) -> None:
    assert check(channel="email", rendered_text=GOOD_EMAIL.upper()) == SEND
    lacking = GOOD_EMAIL.replace(drop, "")
    assert check(channel="email", rendered_text=lacking) == suppressed("missing_disclosure")


LICENSING = "Licensed by the NY Department of Financial Services, license LMB-10987."
SUPPORT = "(212) 555-0142"
FOOTER_LINES = f"\n{LICENSING}\nQuestions? {SUPPORT}"


def test_an_email_without_the_configured_licensing_line_is_suppressed() -> None:
    # Every other disclosure is there; only the operator's licensing line is missing.
    with_support = GOOD_EMAIL + f"\nQuestions? {SUPPORT}"
    verdict = check(channel="email", rendered_text=with_support, required=(LICENSING, SUPPORT))
    assert verdict == suppressed("missing_disclosure")


def test_an_email_without_the_configured_support_contact_is_suppressed() -> None:
    with_licensing = GOOD_EMAIL + f"\n{LICENSING}"
    verdict = check(channel="email", rendered_text=with_licensing, required=(LICENSING, SUPPORT))
    assert verdict == suppressed("missing_disclosure")


def test_an_email_carrying_the_configured_lines_goes_even_when_wrapped() -> None:
    complete = GOOD_EMAIL + FOOTER_LINES
    wrapped = GOOD_EMAIL + FOOTER_LINES.replace(" license ", "\nlicense ").upper()
    assert check(channel="email", rendered_text=complete, required=(LICENSING, SUPPORT)) == SEND
    assert check(channel="email", rendered_text=wrapped, required=(LICENSING, SUPPORT)) == SEND


# --- transactional and order ------------------------------------------------------------


def test_a_transactional_reply_skips_windows_consent_caps_and_pause() -> None:
    night = wall(EASTERN, 2025, 7, 11, 23, 30)
    just_opted_out = replace(NEW_YORKER, sms_consent="opted_out", suppressed_phone=True)
    verdict = check(
        just_opted_out,
        at=night,
        sends=[night - timedelta(minutes=5)],
        paused=True,
        marketing=False,
        rendered_text="Acme: you are unsubscribed.",
        first_of_track=True,
    )
    assert verdict == SEND


def test_a_transactional_reply_never_goes_to_a_bad_number() -> None:
    bad = replace(NEW_YORKER, phone_status="bad")
    assert check(bad, marketing=False) == suppressed("bad_number")


def test_consent_is_judged_before_the_clock_and_the_clock_before_content() -> None:
    night = wall(EASTERN, 2025, 7, 11, 23, 30)
    no_consent = replace(NEW_YORKER, sms_consent="unknown")
    assert check(no_consent, at=night) == suppressed("no_sms_consent")
    assert check(at=night, rendered_text="no disclosures").rule == "quiet_hours_federal"


def test_an_unknown_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="channel"):
        check(channel="fax")


# --- property: 'send' only inside the window; holds end inside it -----------------------

_PHONES = [
    "+12125550123",  # NY
    "+13055550123",  # FL
    "+14155550123",  # CA
    "+12065550123",  # WA
    "+12055550123",  # AL
    "+12145550123",  # TX
    "+14015550123",  # RI
    "+18085550123",  # HI
    "+16015550123",  # MS
    "+18505550123",  # FL panhandle, two zones
    "+18005550123",  # toll-free: anywhere
]


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    state=st.none() | st.sampled_from(sorted(STATE_ZONES)),
    phone=st.sampled_from(_PHONES),
    ages=st.lists(st.integers(min_value=1, max_value=8 * 24 * 60), max_size=4),
    safe=st.booleans(),
)
def test_send_only_in_an_open_window_and_holds_end_in_one(
    at: datetime, state: str | None, phone: str, ages: list[int], safe: bool
) -> None:
    person = replace(NEW_YORKER, phone=phone, property_state=state, property_zip=None)
    config = ComplianceConfig(universal_safe_schedule=safe)
    sends = RecentSends([at - timedelta(minutes=age) for age in ages])
    verdict = decide(
        recipient=person, channel="sms", at=at, recent_sends=sends, paused=False, config=config
    )
    where = locate(property_zip=None, property_state=state, phone_e164=phone)
    policy = WindowPolicy(universal_safe_schedule=safe)
    window_open = check_window(at=at, where=where, policy=policy).open
    if verdict.action == "send":
        assert window_open
    elif not ages:
        assert not window_open
    if verdict.action == "hold" and verdict.until is not None:
        assert verdict.until >= at
        assert check_window(at=verdict.until, where=where, policy=policy).open
        caps = check_caps(
            sends=sends, at=verdict.until, states=where.states, max_per_24h=1, max_per_7d=3
        )
        assert caps is None
