"""Send windows at their boundaries: quiet hours, closed days, holidays, zones, deferral."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.compliance.windows import (
    NoSendingWindow,
    WindowDecision,
    WindowPolicy,
    check_window,
    next_open_minute,
)
from core.compliance.zones import Whereabouts, locate
from tests.compliance import FIFTY_STATES_AND_DC

EASTERN = "America/New_York"
CENTRAL = "America/Chicago"
PACIFIC = "America/Los_Angeles"

NY_PHONE = locate(property_zip=None, property_state=None, phone_e164="+12125550123")
ALABAMA_PHONE = locate(property_zip=None, property_state=None, phone_e164="+12055550123")
FLORIDA_PHONE = locate(property_zip=None, property_state=None, phone_e164="+13055550123")
TEXAS_PHONE = locate(property_zip=None, property_state=None, phone_e164="+12145550123")
RHODE_ISLAND_PHONE = locate(property_zip=None, property_state=None, phone_e164="+14015550123")
LOUISIANA_PHONE = locate(property_zip=None, property_state=None, phone_e164="+15045550123")
NOWHERE_KNOWN = locate(property_zip=None, property_state=None, phone_e164=None)
SAFE = WindowPolicy(universal_safe_schedule=True)


def wall(zone: str, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """The UTC instant when a clock in `zone` shows this wall time."""
    local = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


def decide(
    at: datetime, where: Whereabouts, channel: str = "sms", policy: WindowPolicy = WindowPolicy()
) -> WindowDecision:
    return check_window(at=at, where=where, channel=channel, policy=policy)


# --- federal 08:00-21:00, half-open --------------------------------------------------------


def test_federal_window_closes_at_2100_local() -> None:
    friday = (2025, 7, 11)
    assert decide(wall(EASTERN, *friday, 20, 59), NY_PHONE).open
    assert decide(wall(EASTERN, *friday, 20, 59) + timedelta(seconds=59), NY_PHONE).open
    closed = decide(wall(EASTERN, *friday, 21, 0), NY_PHONE)
    assert not closed.open
    assert closed.rule == "quiet_hours_federal"


def test_federal_window_opens_at_0800_local() -> None:
    assert not decide(wall(EASTERN, 2025, 7, 11, 7, 59), NY_PHONE).open
    assert decide(wall(EASTERN, 2025, 7, 11, 8, 0), NY_PHONE).open


def test_friday_2100_eastern_defers_to_saturday_0800_eastern() -> None:
    decision = decide(wall(EASTERN, 2025, 7, 11, 21, 0), NY_PHONE)
    assert decision.next_open == wall(EASTERN, 2025, 7, 12, 8, 0)


def test_next_open_is_rounded_up_to_a_whole_minute() -> None:
    at = wall(EASTERN, 2025, 7, 11, 12, 0) + timedelta(seconds=1)
    assert next_open_minute(at=at, where=NY_PHONE) == wall(EASTERN, 2025, 7, 11, 12, 1)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_window(at=datetime(2025, 7, 11, 12), where=NY_PHONE)


# --- state hours -------------------------------------------------------------------------


def test_florida_closes_at_2000() -> None:
    assert decide(wall(EASTERN, 2025, 7, 11, 19, 59), FLORIDA_PHONE).open
    closed = decide(wall(EASTERN, 2025, 7, 11, 20, 0), FLORIDA_PHONE)
    assert (closed.open, closed.rule) == (False, "quiet_hours_FL")


def test_texas_sunday_opens_at_noon() -> None:
    sunday = (2025, 7, 13)
    closed = decide(wall(CENTRAL, *sunday, 11, 59), TEXAS_PHONE)
    assert (closed.open, closed.rule) == (False, "quiet_hours_TX")
    assert closed.next_open == wall(CENTRAL, *sunday, 12, 0)
    assert decide(wall(CENTRAL, *sunday, 12, 0), TEXAS_PHONE).open


def test_texas_weekday_opens_at_0900() -> None:
    assert not decide(wall(CENTRAL, 2025, 7, 14, 8, 59), TEXAS_PHONE).open
    assert decide(wall(CENTRAL, 2025, 7, 14, 9, 0), TEXAS_PHONE).open


def test_mississippi_is_judged_on_central_time_even_for_an_eastern_number() -> None:
    eastern_ms = Whereabouts(zones=frozenset({EASTERN}), states=frozenset({"MS"}))
    # 20:30 Eastern is 19:30 Central: inside Mississippi's 08-20 on its Central clock.
    assert decide(wall(EASTERN, 2025, 7, 11, 20, 30), eastern_ms).open
    # 08:30 Eastern is 07:30 Central: Mississippi has not opened yet.
    early = decide(wall(EASTERN, 2025, 7, 11, 8, 30), eastern_ms)
    assert (early.open, early.rule) == (False, "quiet_hours_MS")
    assert early.next_open == wall(CENTRAL, 2025, 7, 11, 8, 0)


def test_mississippi_sunday_closed() -> None:
    where = Whereabouts(zones=frozenset({CENTRAL}), states=frozenset({"MS"}))
    assert decide(wall(CENTRAL, 2025, 7, 13, 12, 0), where).rule == "no_sunday_MS"


def test_alabama_sunday_is_closed_all_day() -> None:
    decision = decide(wall(CENTRAL, 2025, 7, 13, 12, 0), ALABAMA_PHONE)
    assert (decision.open, decision.rule) == (False, "no_sunday_AL")


def test_alabama_state_holiday_is_closed_all_day() -> None:
    confederate_memorial_day = date(2025, 4, 28)
    assert "Confederate Memorial Day" in holidays.US(subdiv="AL", years=2025).get_list(
        confederate_memorial_day
    )
    for hour in (8, 12, 19):
        decision = decide(wall(CENTRAL, 2025, 4, 28, hour, 0), ALABAMA_PHONE)
        assert (decision.open, decision.rule) == (False, "holiday_AL")
    # Not a holiday next door in Florida (Eastern time), so the day itself is the cause.
    assert decide(wall(EASTERN, 2025, 4, 28, 12, 0), FLORIDA_PHONE).open


def test_saturday_night_alabama_defers_to_monday_0800_central() -> None:
    decision = decide(wall(CENTRAL, 2025, 7, 12, 20, 30), ALABAMA_PHONE)
    assert decision.rule == "quiet_hours_AL"
    assert decision.next_open == wall(CENTRAL, 2025, 7, 14, 8, 0)


def test_saturday_night_alabama_skips_a_monday_state_holiday() -> None:
    decision = decide(wall(CENTRAL, 2025, 4, 26, 20, 30), ALABAMA_PHONE)
    assert decision.next_open == wall(CENTRAL, 2025, 4, 29, 8, 0)


def test_rhode_island_saturday_closes_at_1700() -> None:
    saturday = (2025, 7, 12)
    assert not decide(wall(EASTERN, *saturday, 9, 59), RHODE_ISLAND_PHONE).open
    assert decide(wall(EASTERN, *saturday, 10, 0), RHODE_ISLAND_PHONE).open
    assert decide(wall(EASTERN, *saturday, 16, 59), RHODE_ISLAND_PHONE).open
    closed = decide(wall(EASTERN, *saturday, 17, 0), RHODE_ISLAND_PHONE)
    assert (closed.open, closed.rule) == (False, "quiet_hours_RI")
    assert closed.next_open == wall(EASTERN, 2025, 7, 14, 9, 0)  # Sunday closed


def test_rhode_island_weekday_closes_at_1800() -> None:
    assert decide(wall(EASTERN, 2025, 7, 14, 17, 59), RHODE_ISLAND_PHONE).open
    assert not decide(wall(EASTERN, 2025, 7, 14, 18, 0), RHODE_ISLAND_PHONE).open


# --- several zones and states at once ------------------------------------------------------


def test_california_property_with_florida_phone_needs_both_clocks_and_both_states() -> None:
    where = locate(property_zip="94105", property_state="CA", phone_e164="+13055550123")
    # 08:30 Eastern is 05:30 in San Francisco.
    assert decide(wall(EASTERN, 2025, 7, 11, 8, 30), where).rule == "quiet_hours_federal"
    assert decide(wall(PACIFIC, 2025, 7, 11, 8, 0), where).open
    # Florida's 20:00 cap on the Eastern clock, although it is only 17:00 in California.
    assert decide(wall(EASTERN, 2025, 7, 11, 19, 59), where).open
    assert decide(wall(EASTERN, 2025, 7, 11, 20, 0), where).rule == "quiet_hours_FL"


def test_unknown_zone_must_be_open_in_every_us_zone() -> None:
    early = decide(wall(EASTERN, 2025, 7, 11, 8, 30), NOWHERE_KNOWN)
    assert (early.open, early.rule) == (False, "quiet_hours_federal")
    # In July Honolulu is six hours behind New York: the first open minute is 14:00 Eastern.
    assert early.next_open == wall(EASTERN, 2025, 7, 11, 14, 0)
    assert not decide(wall(EASTERN, 2025, 7, 11, 13, 59), NOWHERE_KNOWN).open
    assert decide(wall(EASTERN, 2025, 7, 11, 20, 59), NOWHERE_KNOWN).open
    assert not decide(wall(EASTERN, 2025, 7, 11, 21, 0), NOWHERE_KNOWN).open


# --- operator policies ---------------------------------------------------------------------


def test_universal_safe_schedule_narrows_to_business_hours() -> None:
    assert not decide(wall(EASTERN, 2025, 7, 9, 9, 59), NY_PHONE, policy=SAFE).open
    assert decide(wall(EASTERN, 2025, 7, 9, 10, 0), NY_PHONE, policy=SAFE).open
    assert decide(wall(EASTERN, 2025, 7, 9, 17, 59), NY_PHONE, policy=SAFE).open
    evening = decide(wall(EASTERN, 2025, 7, 9, 18, 0), NY_PHONE, policy=SAFE)
    assert (evening.open, evening.rule) == (False, "safe_schedule")
    assert evening.next_open == wall(EASTERN, 2025, 7, 10, 10, 0)
    assert not decide(wall(EASTERN, 2025, 7, 12, 17, 0), NY_PHONE, policy=SAFE).open


def test_universal_safe_schedule_skips_sundays_and_federal_holidays() -> None:
    sunday_noon = wall(EASTERN, 2025, 7, 13, 12, 0)
    assert decide(sunday_noon, NY_PHONE).open
    assert decide(sunday_noon, NY_PHONE, policy=SAFE).rule == "safe_schedule"
    independence_day = wall(EASTERN, 2025, 7, 4, 12, 0)
    assert decide(independence_day, NY_PHONE).open
    decision = decide(independence_day, NY_PHONE, policy=SAFE)
    assert decision.rule == "safe_schedule"
    assert decision.next_open == wall(EASTERN, 2025, 7, 5, 10, 0)


def test_louisiana_emergency_holds_every_message_with_no_reopening() -> None:
    policy = WindowPolicy(louisiana_emergency=True)
    decision = decide(wall(CENTRAL, 2025, 7, 9, 12, 0), LOUISIANA_PHONE, policy=policy)
    assert decision == WindowDecision(open=False, rule="louisiana_emergency", next_open=None)
    with pytest.raises(NoSendingWindow):
        next_open_minute(at=wall(CENTRAL, 2025, 7, 9, 12, 0), where=LOUISIANA_PHONE, policy=policy)
    assert decide(wall(EASTERN, 2025, 7, 9, 12, 0), NY_PHONE, policy=policy).open


def test_email_keeps_state_rules_unless_the_operator_relaxes_them() -> None:
    at = wall(EASTERN, 2025, 7, 11, 20, 30)
    relaxed = WindowPolicy(relax_states_for_email=True)
    assert not decide(at, FLORIDA_PHONE, channel="email").open
    assert not decide(at, FLORIDA_PHONE, channel="sms", policy=relaxed).open
    assert decide(at, FLORIDA_PHONE, channel="email", policy=relaxed).open
    federal_close = wall(EASTERN, 2025, 7, 11, 21, 0)
    assert not decide(federal_close, FLORIDA_PHONE, channel="email", policy=relaxed).open


# --- property: agree with an independent reading of the table ------------------------------

ALL_DAYS = range(7)
MON_SAT = range(6)
# state -> [(weekdays, start hour, end hour)], closed on holidays?, clock override
RAW_TABLE: dict[str, tuple[list[tuple[range | list[int], int, int]], bool, str | None]] = {
    "FL": ([(ALL_DAYS, 8, 20)], False, None),
    "OK": ([(ALL_DAYS, 8, 20)], False, None),
    "MD": ([(ALL_DAYS, 8, 20)], False, None),
    "WA": ([(ALL_DAYS, 8, 20)], False, None),
    "MA": ([(ALL_DAYS, 8, 20)], False, None),
    "CT": ([(ALL_DAYS, 9, 20)], False, None),
    "TX": ([(MON_SAT, 9, 21), ([6], 12, 21)], False, None),
    "AL": ([(MON_SAT, 8, 20)], True, None),
    "LA": ([(MON_SAT, 8, 20)], True, None),
    "MS": ([(MON_SAT, 8, 20)], False, CENTRAL),
    "UT": ([(MON_SAT, 8, 21)], True, None),
    "RI": ([(range(5), 9, 18), ([5], 10, 17)], True, None),
    "KY": ([(ALL_DAYS, 10, 21)], False, None),
    "MN": ([(ALL_DAYS, 9, 21)], False, None),
    "MI": ([(ALL_DAYS, 9, 21)], False, None),
    "NV": ([(ALL_DAYS, 9, 20)], False, None),
    "NM": ([(ALL_DAYS, 9, 21)], False, None),
}
SAFE_DAYS = [(range(5), 10, 18), ([5], 10, 17)]
STATES = FIFTY_STATES_AND_DC
ZIPS = [
    "94105",
    "10001",
    "33101",
    "32501",
    "75201",
    "79901",
    "35203",
    "70112",
    "39201",
    "84101",
    "02903",
    "06103",
    "98101",
    "89101",
    "87101",
    "55401",
    "48201",
    "40202",
    "96813",
    "99501",
    "85001",
    "00000",
]
PHONES = [
    "+12125550123",
    "+13055550123",
    "+18505550123",
    "+12055550123",
    "+15045550123",
    "+16015550123",
    "+18015550123",
    "+14015550123",
    "+19155550123",
    "+12705550123",
    "+18005550123",
    "+19075550123",
    "+18085550123",
    "garbage",
]


@cache
def _holidays(subdiv: str | None, year: int) -> set[date]:
    return set(holidays.US(subdiv=subdiv, years=year))


def _inside(local: datetime, spans: list[tuple[range | list[int], int, int]]) -> bool:
    return any(local.weekday() in days and start <= local.hour < end for days, start, end in spans)


def oracle_open(at: datetime, where: Whereabouts, channel: str, policy: WindowPolicy) -> bool:
    """Recompute openness straight from RAW_TABLE, one clock at a time."""
    relaxed = channel == "email" and policy.relax_states_for_email
    if policy.louisiana_emergency and "LA" in where.states and not relaxed:
        return False
    for zone in where.zones:
        local = at.astimezone(ZoneInfo(zone))
        if not 8 <= local.hour < 21:
            return False
        if policy.universal_safe_schedule:
            calendars = [None, *where.states]
            if not _inside(local, SAFE_DAYS) or any(
                local.date() in _holidays(c, local.year) for c in calendars
            ):
                return False
    for state in [] if relaxed else where.states & RAW_TABLE.keys():
        spans, closed_on_holidays, clock = RAW_TABLE[state]
        for zone in [clock] if clock else where.zones:
            local = at.astimezone(ZoneInfo(zone))
            if not _inside(local, spans):
                return False
            if closed_on_holidays and local.date() in _holidays(state, local.year):
                return False
    return True


ZONE_POOL = [
    EASTERN, CENTRAL, "America/Denver", "America/Phoenix", PACIFIC, "America/Anchorage",
    "America/Adak", "Pacific/Honolulu", "America/Puerto_Rico", "America/Boise",
    "America/Indiana/Indianapolis", "America/Detroit", "America/Menominee",
]  # fmt: skip
# Days where mistakes hide: state holidays and the day before them, and DST changes.
INTERESTING_DAYS = sorted(
    {day - timedelta(days=back) for state in ("AL", "LA", "UT", "RI", None)
     for day in holidays.US(subdiv=state, years=[2025, 2026]) for back in (0, 1)}
    | {date(2025, 3, 9), date(2025, 11, 2), date(2026, 3, 8), date(2026, 11, 1)}
)  # fmt: skip

located = st.builds(
    lambda zip_code, state, phone: locate(
        property_zip=zip_code, property_state=state, phone_e164=phone
    ),
    st.none() | st.sampled_from(ZIPS),
    st.none() | st.sampled_from(STATES),
    st.none() | st.sampled_from(PHONES),
)
# Hand-built whereabouts reach state and zone mixes the small pool above never produces.
mixed = st.builds(
    Whereabouts,
    zones=st.frozensets(st.sampled_from(ZONE_POOL), min_size=1, max_size=3),
    states=st.frozensets(st.sampled_from(STATES), max_size=3),
)
policies = st.builds(WindowPolicy, st.booleans(), st.booleans(), st.booleans())
channels = st.sampled_from(["sms", "email"])


@st.composite
def send_times(draw: st.DrawFn, where: Whereabouts) -> datetime:
    """Instants near a local hour boundary on one of the recipient's clocks, often on a
    holiday or DST day, otherwise anywhere in 2024-2027."""
    if draw(st.booleans()):
        day = draw(st.sampled_from(INTERESTING_DAYS))
    else:
        day = draw(st.dates(date(2024, 1, 1), date(2027, 12, 31)))
    zone = draw(st.sampled_from(sorted(where.zones | {CENTRAL})))
    hour = draw(st.integers(7, 22) | st.integers(0, 23))
    minute = draw(st.sampled_from([0, 1, 59]) | st.integers(0, 59))
    second = draw(st.just(0) | st.integers(0, 59))
    local = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=located | mixed, channel=channels, policy=policies, data=st.data())
def test_window_agrees_with_the_raw_table_and_next_open_is_the_first_open_minute(
    where: Whereabouts, channel: str, policy: WindowPolicy, data: st.DataObject
) -> None:
    at = data.draw(send_times(where))
    decision = check_window(at=at, where=where, channel=channel, policy=policy)
    assert decision.open == oracle_open(at, where, channel, policy)
    try:
        found = next_open_minute(at=at, where=where, channel=channel, policy=policy)
    except NoSendingWindow:
        assert policy.louisiana_emergency and "LA" in where.states
        assert decision.next_open is None
        return
    if not decision.open:
        assert decision.next_open == found
    start = at.replace(second=0, microsecond=0)
    start = start if start == at else start + timedelta(minutes=1)
    assert start <= found <= start + timedelta(days=14)
    assert found.second == 0 and found.microsecond == 0
    assert oracle_open(found, where, channel, policy)
    assert check_window(at=found, where=where, channel=channel, policy=policy).open
    # Every rule changes on a whole local hour, and every zone in the pool is a whole
    # number of hours from UTC, so checking each UTC hour start (plus a sample of other
    # minutes) between the two covers every point where an earlier opening could hide.
    hour = start.replace(minute=0) + timedelta(hours=1)
    between = [start] if start < found else []
    while hour < found:
        between.append(hour)
        hour += timedelta(hours=1)
    gap_minutes = int((found - start).total_seconds() // 60)
    if gap_minutes > 1:
        offsets = data.draw(st.lists(st.integers(1, gap_minutes - 1), max_size=20))
        between += [start + timedelta(minutes=m) for m in offsets]
    for moment in between:
        assert not oracle_open(moment, where, channel, policy), moment
