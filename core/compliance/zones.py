"""Where a recipient may be: the time zones and states whose sending rules apply to them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as phone_timezone

from core.book.states import usps_code

EASTERN = "America/New_York"
CENTRAL = "America/Chicago"
MOUNTAIN = "America/Denver"
ARIZONA = "America/Phoenix"
PACIFIC = "America/Los_Angeles"
ALASKA = "America/Anchorage"
ALEUTIAN = "America/Adak"
HAWAII = "Pacific/Honolulu"
PUERTO_RICO = "America/Puerto_Rico"
IDAHO_MOUNTAIN = "America/Boise"
INDIANA_EASTERN = "America/Indiana/Indianapolis"
MICHIGAN_EASTERN = "America/Detroit"
MICHIGAN_CENTRAL = "America/Menominee"

# Used when we cannot tell where someone is. Puerto Rico is included (it is a US
# jurisdiction with many borrowers); the Pacific territories are not, because their
# window barely overlaps the mainland's. Adak is covered: it always sits between
# Anchorage and Honolulu, so it is open whenever both of them are.
ALL_US_ZONES: frozenset[str] = frozenset(
    {EASTERN, CENTRAL, MOUNTAIN, ARIZONA, PACIFIC, ALASKA, HAWAII, PUERTO_RICO}
)


def _zones(*names: str) -> frozenset[str]:
    return frozenset(names)


# Every zone in official use somewhere in the state (Navajo Nation in AZ keeps daylight
# time, West Wendover NV is on Mountain time, Malheur County OR on Mountain, northern ID
# on Pacific, Michigan's four western Upper Peninsula counties on Central).
STATE_ZONES: dict[str, frozenset[str]] = {
    "AL": _zones(CENTRAL),
    "AK": _zones(ALASKA, ALEUTIAN),
    "AZ": _zones(ARIZONA, MOUNTAIN),
    "AR": _zones(CENTRAL),
    "CA": _zones(PACIFIC),
    "CO": _zones(MOUNTAIN),
    "CT": _zones(EASTERN),
    "DE": _zones(EASTERN),
    "DC": _zones(EASTERN),
    "FL": _zones(EASTERN, CENTRAL),
    "GA": _zones(EASTERN),
    "HI": _zones(HAWAII),
    "ID": _zones(IDAHO_MOUNTAIN, PACIFIC),
    "IL": _zones(CENTRAL),
    "IN": _zones(INDIANA_EASTERN, CENTRAL),
    "IA": _zones(CENTRAL),
    "KS": _zones(CENTRAL, MOUNTAIN),
    "KY": _zones(EASTERN, CENTRAL),
    "LA": _zones(CENTRAL),
    "ME": _zones(EASTERN),
    "MD": _zones(EASTERN),
    "MA": _zones(EASTERN),
    "MI": _zones(MICHIGAN_EASTERN, MICHIGAN_CENTRAL),
    "MN": _zones(CENTRAL),
    "MS": _zones(CENTRAL),
    "MO": _zones(CENTRAL),
    "MT": _zones(MOUNTAIN),
    "NE": _zones(CENTRAL, MOUNTAIN),
    "NV": _zones(PACIFIC, MOUNTAIN),
    "NH": _zones(EASTERN),
    "NJ": _zones(EASTERN),
    "NM": _zones(MOUNTAIN),
    "NY": _zones(EASTERN),
    "NC": _zones(EASTERN),
    "ND": _zones(CENTRAL, MOUNTAIN),
    "OH": _zones(EASTERN),
    "OK": _zones(CENTRAL),
    "OR": _zones(PACIFIC, IDAHO_MOUNTAIN),
    "PA": _zones(EASTERN),
    "RI": _zones(EASTERN),
    "SC": _zones(EASTERN),
    "SD": _zones(CENTRAL, MOUNTAIN),
    "TN": _zones(CENTRAL, EASTERN),
    "TX": _zones(CENTRAL, MOUNTAIN),
    "UT": _zones(MOUNTAIN),
    "VT": _zones(EASTERN),
    "VA": _zones(EASTERN),
    "WA": _zones(PACIFIC),
    "WV": _zones(EASTERN),
    "WI": _zones(CENTRAL),
    "WY": _zones(MOUNTAIN),
    "PR": _zones(PUERTO_RICO),
    "VI": _zones("America/St_Thomas"),
    "GU": _zones("Pacific/Guam"),
    "AS": _zones("Pacific/Pago_Pago"),
    "MP": _zones("Pacific/Saipan"),
}

# Area codes that cross a time-zone line although phonenumbers gives them one zone
# (e.g. 850 covers Tallahassee on Eastern and Pensacola on Central).
AREA_CODES_ACROSS_ZONES: dict[str, frozenset[str]] = {
    "219": _zones(CENTRAL, EASTERN),
    "270": _zones(CENTRAL, EASTERN),
    "308": _zones(CENTRAL, MOUNTAIN),
    "364": _zones(CENTRAL, EASTERN),
    "423": _zones(EASTERN, CENTRAL),
    "432": _zones(CENTRAL, MOUNTAIN),
    "458": _zones(PACIFIC, IDAHO_MOUNTAIN),
    "541": _zones(PACIFIC, IDAHO_MOUNTAIN),
    "574": _zones(EASTERN, CENTRAL),
    "606": _zones(EASTERN, CENTRAL),
    "620": _zones(CENTRAL, MOUNTAIN),
    "785": _zones(CENTRAL, MOUNTAIN),
    "812": _zones(EASTERN, CENTRAL),
    "850": _zones(EASTERN, CENTRAL),
    "906": _zones(MICHIGAN_EASTERN, MICHIGAN_CENTRAL),
    "928": _zones(ARIZONA, MOUNTAIN),
    "930": _zones(EASTERN, CENTRAL),
    "931": _zones(CENTRAL, EASTERN),
}

_US_TERRITORY_REGIONS = frozenset({"PR", "VI", "GU", "AS", "MP"})
_CITY_STATE = re.compile(r", ([A-Z]{2})$")
# phonenumbers lists dozens of zones for toll-free and other non-geographic numbers.
_MOST_ZONES_FOR_A_PLACE = 3


@dataclass(frozen=True)
class Whereabouts:
    """The time zones (IANA names) and states (2-letter codes) a recipient may be in."""

    zones: frozenset[str]
    states: frozenset[str]


UNKNOWN = Whereabouts(zones=ALL_US_ZONES, states=frozenset())


def locate(
    *, property_zip: str | None, property_state: str | None, phone_e164: str | None
) -> Whereabouts:
    """Every zone and state that may apply to a borrower, from the property and the phone."""
    address = _address_whereabouts((property_zip or "").strip(), (property_state or "").strip())
    phone = _phone_whereabouts(phone_e164.strip()) if phone_e164 and phone_e164.strip() else None
    if address is None and phone is None:
        return UNKNOWN
    if address is None or phone is None:
        return address or phone or UNKNOWN
    return Whereabouts(zones=address.zones | phone.zones, states=address.states | phone.states)


@lru_cache(maxsize=65536)
def _address_whereabouts(raw_zip: str, raw_state: str) -> Whereabouts | None:
    """Zones and states of a property; None when no address was given at all."""
    if not raw_zip and not raw_state:
        return None
    state = raw_state.upper() if raw_state.upper() in STATE_ZONES else None
    zip_zone, zip_state = _zip_facts(raw_zip[:5]) if raw_zip else (None, None)
    states = frozenset(s for s in (state, zip_state) if s)
    zones: set[str] = set()
    if zip_zone:
        zones.add(zip_zone)
    # When the ZIP's own zone is missing, or the ZIP and the recorded state disagree,
    # fall back to every zone of each state named.
    for named in states:
        if not zip_zone or named != zip_state:
            zones |= STATE_ZONES[named]
    if not zones:
        return UNKNOWN
    return Whereabouts(zones=frozenset(zones), states=states)


@lru_cache(maxsize=65536)
def _zip_facts(zip5: str) -> tuple[str | None, str | None]:
    """The time zone and state the `zipcodes` data gives a five-digit ZIP."""
    import zipcodes  # loads the whole ZIP table; only pay for it when a ZIP is looked up

    try:
        matches = zipcodes.matching(zip5)
    except (TypeError, ValueError):
        return None, None
    if not matches:
        return None, None
    record = matches[0]
    state = record.get("state") if record.get("state") in STATE_ZONES else None
    zone = record.get("timezone") or None
    return (zone if zone and is_zone(zone) else None), state


@lru_cache(maxsize=65536)
def _phone_whereabouts(phone: str) -> Whereabouts:
    """Zones and state of a phone's area code; every US zone when it cannot be placed."""
    try:
        number = phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return UNKNOWN
    if not phonenumbers.is_valid_number(number):
        return UNKNOWN
    zones = {z for z in phone_timezone.time_zones_for_number(number) if is_zone(z)}
    if not zones or len(zones) > _MOST_ZONES_FOR_A_PLACE:
        return UNKNOWN
    if number.country_code == 1:
        area_code = str(number.national_number)[:3]
        zones |= AREA_CODES_ACROSS_ZONES.get(area_code, frozenset())
    state = _phone_state(number)
    return Whereabouts(zones=frozenset(zones), states=frozenset({state} if state else ()))


def _phone_state(number: phonenumbers.PhoneNumber) -> str | None:
    """The US state or territory of a number's area code, if it is a US number."""
    region = phonenumbers.region_code_for_number(number)
    if region in _US_TERRITORY_REGIONS:
        return region
    if region != "US":
        return None
    description = geocoder.description_for_number(number, "en")
    state = usps_code(description)  # "Texas", "Washington State", "Washington D.C."
    if state is not None:
        return state
    city_state = _CITY_STATE.search(description)
    if city_state and city_state.group(1) in STATE_ZONES:
        return city_state.group(1)
    return None


@lru_cache(maxsize=1024)
def is_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
