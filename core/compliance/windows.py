"""When a message may reach a recipient: federal and state quiet hours, closed days, holidays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from core.compliance.zones import ALL_US_ZONES, Whereabouts

LocalHours = tuple[int, int]  # [start hour, end hour) on the recipient's wall clock
SEARCH_HORIZON = timedelta(days=14)


@dataclass(frozen=True)
class SendingHours:
    """One jurisdiction's sending hours for each weekday, in the recipient's local time."""

    label: str  # "federal", a state code, or "safe_schedule"
    weekly: tuple[LocalHours | None, ...]  # Monday first; None = no messages that day
    closed_on_holidays: bool = False
    fixed_zone: str | None = None  # judged on this clock whatever the recipient's zone


def _every_day(start: int, end: int) -> tuple[LocalHours | None, ...]:
    return ((start, end),) * 7


def _except_sunday(start: int, end: int) -> tuple[LocalHours | None, ...]:
    return ((start, end),) * 6 + (None,)


FEDERAL_HOURS = SendingHours("federal", _every_day(8, 21))

STATE_HOURS: dict[str, SendingHours] = {
    "FL": SendingHours("FL", _every_day(8, 20)),
    "OK": SendingHours("OK", _every_day(8, 20)),
    "MD": SendingHours("MD", _every_day(8, 20)),
    "WA": SendingHours("WA", _every_day(8, 20)),
    "MA": SendingHours("MA", _every_day(8, 20)),
    "CT": SendingHours("CT", _every_day(9, 20)),
    "TX": SendingHours("TX", ((9, 21),) * 6 + ((12, 21),)),
    "AL": SendingHours("AL", _except_sunday(8, 20), closed_on_holidays=True),
    "LA": SendingHours("LA", _except_sunday(8, 20), closed_on_holidays=True),
    "MS": SendingHours("MS", _except_sunday(8, 20), fixed_zone="America/Chicago"),
    "UT": SendingHours("UT", _except_sunday(8, 21), closed_on_holidays=True),
    "RI": SendingHours("RI", ((9, 18),) * 5 + ((10, 17), None), closed_on_holidays=True),
    "KY": SendingHours("KY", _every_day(10, 21)),
    "MN": SendingHours("MN", _every_day(9, 21)),
    "MI": SendingHours("MI", _every_day(9, 21)),
    "NV": SendingHours("NV", _every_day(9, 20)),
    "NM": SendingHours("NM", _every_day(9, 21)),
}

# The operator's "universal safe schedule": federal and every applicable state's holidays.
SAFE_SCHEDULE_HOURS = SendingHours(
    "safe_schedule", ((10, 18),) * 5 + ((10, 17), None), closed_on_holidays=True
)


@dataclass(frozen=True)
class WindowPolicy:
    """Operator choices that narrow (never widen beyond the law) when messages may go out."""

    universal_safe_schedule: bool = False
    louisiana_emergency: bool = False
    relax_states_for_email: bool = False  # email then keeps only the federal window


@dataclass(frozen=True)
class WindowDecision:
    """Whether a message may go now; if not, the rule that holds it and when it may go (UTC)."""

    open: bool
    rule: str | None
    next_open: datetime | None


class NoSendingWindow(ValueError):
    """No open minute exists within the search horizon (e.g. a declared emergency)."""


@dataclass(frozen=True)
class _Check:
    """One set of sending hours judged on each of some clocks."""

    hours: SendingHours
    zones: tuple[ZoneInfo, ...]
    holiday_calendars: tuple[str | None, ...]  # holiday subdivisions; None = federal


def check_window(
    *,
    at: datetime,
    where: Whereabouts,
    channel: str = "sms",
    policy: WindowPolicy = WindowPolicy(),
) -> WindowDecision:
    """Whether every applicable federal and state rule is open at `at` in every zone."""
    moment = _as_utc(at)
    if _in_louisiana_emergency(where, channel, policy):
        return WindowDecision(open=False, rule="louisiana_emergency", next_open=None)
    rule = _closing_rule(moment, _checks_for(where, channel, policy))
    if rule is None:
        return WindowDecision(open=True, rule=None, next_open=None)
    try:
        next_open = next_open_minute(at=moment, where=where, channel=channel, policy=policy)
    except NoSendingWindow:
        next_open = None
    return WindowDecision(open=False, rule=rule, next_open=next_open)


def next_open_minute(
    *,
    at: datetime,
    where: Whereabouts,
    channel: str = "sms",
    policy: WindowPolicy = WindowPolicy(),
) -> datetime:
    """The earliest whole minute at or after `at` (UTC) when the window is open."""
    moment = _ceil_minute(_as_utc(at))
    if _in_louisiana_emergency(where, channel, policy):
        raise NoSendingWindow("Louisiana declared emergency: no solicitation until lifted")
    checks = _checks_for(where, channel, policy)
    give_up_after = moment + SEARCH_HORIZON
    while moment <= give_up_after:
        closed = _first_closed(moment, checks)
        if closed is None:
            return moment
        reopens_at = _ceil_minute(closed[1])
        moment = reopens_at if reopens_at > moment else moment + timedelta(minutes=1)
    raise NoSendingWindow(f"nothing open within {SEARCH_HORIZON.days} days of {at.isoformat()}")


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("send times must be timezone-aware (UTC)")
    return at.astimezone(UTC)


def _ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _relaxed(channel: str, policy: WindowPolicy) -> bool:
    return channel == "email" and policy.relax_states_for_email


def _in_louisiana_emergency(where: Whereabouts, channel: str, policy: WindowPolicy) -> bool:
    return policy.louisiana_emergency and "LA" in where.states and not _relaxed(channel, policy)


@lru_cache(maxsize=4096)
def _checks_for(where: Whereabouts, channel: str, policy: WindowPolicy) -> tuple[_Check, ...]:
    """The rules that apply to this recipient, federal first, each with the clocks it uses."""
    zones = tuple(ZoneInfo(name) for name in sorted(where.zones or ALL_US_ZONES))
    checks = [_Check(FEDERAL_HOURS, zones, ())]
    if not _relaxed(channel, policy):
        for state in sorted(where.states):
            hours = STATE_HOURS.get(state)
            if hours is None:
                continue
            clocks = (ZoneInfo(hours.fixed_zone),) if hours.fixed_zone else zones
            calendars = (state,) if hours.closed_on_holidays else ()
            checks.append(_Check(hours, clocks, calendars))
    if policy.universal_safe_schedule:
        checks.append(_Check(SAFE_SCHEDULE_HOURS, zones, (None, *sorted(where.states))))
    return tuple(checks)


def _closing_rule(moment: datetime, checks: tuple[_Check, ...]) -> str | None:
    """The first rule closed at `moment` on any of its clocks, or None when all are open."""
    closed = _first_closed(moment, checks)
    return None if closed is None else closed[0]


def _first_closed(moment: datetime, checks: tuple[_Check, ...]) -> tuple[str, datetime] | None:
    """The first closed rule and the earliest instant it could reopen, or None if all open."""
    local_times: dict[ZoneInfo, datetime] = {}
    for check in checks:
        for zone in check.zones:
            local = local_times.get(zone)
            if local is None:
                local = local_times[zone] = moment.astimezone(zone)
            reason = _closed_reason(check, local)
            if reason is not None:
                return _rule_name(reason, check.hours), _earliest_reopening(check, local)
    return None


def _closed_reason(check: _Check, local: datetime) -> str | None:
    today = check.hours.weekly[local.weekday()]
    if today is None:
        return "no_sunday"
    if any(local.date() in holiday_dates(c, local.year) for c in check.holiday_calendars):
        return "holiday"
    if not today[0] <= local.hour < today[1]:
        return "quiet_hours"
    return None


def _rule_name(reason: str, hours: SendingHours) -> str:
    return hours.label if hours is SAFE_SCHEDULE_HOURS else f"{reason}_{hours.label}"


def _earliest_reopening(check: _Check, local: datetime) -> datetime:
    """A lower bound on when this closed rule opens again on this clock (UTC)."""
    # Rules change only on whole local hours: the rule stays shut until today's opening
    # hour if that is still ahead, otherwise at least until the next local midnight.
    # A wall time that a DST jump skips resolves to the jump itself, never later.
    today = check.hours.weekly[local.weekday()]
    zone = local.tzinfo
    if today is not None and local.hour < today[0]:
        target = datetime.combine(local.date(), time(today[0]), tzinfo=zone)
    else:
        target = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return target.astimezone(UTC)


@lru_cache(maxsize=1024)
def holiday_dates(subdivision: str | None, year: int) -> frozenset[date]:
    """Legal holidays (observed dates included) for a state, or federal ones for None."""
    if subdivision not in holidays.US.subdivisions:
        subdivision = None
    return frozenset(holidays.US(subdiv=subdivision, years=year).keys())
