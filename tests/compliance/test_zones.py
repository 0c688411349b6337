"""Where a borrower may be: zones and states from the property ZIP/state and the phone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.compliance.zones import (
    ALL_US_ZONES,
    AREA_CODES_ACROSS_ZONES,
    STATE_ZONES,
    Whereabouts,
    locate,
)
from tests.compliance import FIFTY_STATES_AND_DC

EASTERN = "America/New_York"
CENTRAL = "America/Chicago"
MOUNTAIN = "America/Denver"
PACIFIC = "America/Los_Angeles"


def test_san_francisco_zip_is_pacific_california() -> None:
    where = locate(property_zip="94105", property_state=None, phone_e164=None)
    assert where == Whereabouts(zones=frozenset({PACIFIC}), states=frozenset({"CA"}))


def test_zip_plus_four_is_read_by_its_first_five_digits() -> None:
    where = locate(property_zip="94105-1234", property_state="CA", phone_e164=None)
    assert where.zones == {PACIFIC}


def test_miami_area_code_is_eastern_florida() -> None:
    where = locate(property_zip=None, property_state=None, phone_e164="+13055550123")
    assert where == Whereabouts(zones=frozenset({EASTERN}), states=frozenset({"FL"}))


def test_california_property_with_florida_phone_keeps_both() -> None:
    where = locate(property_zip="94105", property_state="CA", phone_e164="+13055550123")
    assert where.zones == {PACIFIC, EASTERN}
    assert where.states == {"CA", "FL"}


def test_nothing_known_means_every_us_zone() -> None:
    where = locate(property_zip=None, property_state=None, phone_e164=None)
    assert where.zones == ALL_US_ZONES
    assert {EASTERN, CENTRAL, MOUNTAIN, PACIFIC, "Pacific/Honolulu"} <= where.zones
    assert where.states == frozenset()


@pytest.mark.parametrize("phone", ["not a phone", "+1555", "+18005550123", "+18885550123"])
def test_phone_that_cannot_be_placed_means_every_us_zone(phone: str) -> None:
    where = locate(property_zip=None, property_state=None, phone_e164=phone)
    assert where.zones == ALL_US_ZONES


def test_unplaceable_phone_still_widens_a_known_address() -> None:
    where = locate(property_zip="94105", property_state="CA", phone_e164="+18005550123")
    assert where.zones == ALL_US_ZONES | {PACIFIC}
    assert where.states == {"CA"}


def test_unknown_zip_falls_back_to_the_state_zones() -> None:
    where = locate(property_zip="00000", property_state="tx", phone_e164=None)
    assert where == Whereabouts(zones=frozenset({CENTRAL, MOUNTAIN}), states=frozenset({"TX"}))


def test_unknown_zip_and_no_state_means_every_us_zone() -> None:
    where = locate(property_zip="00000", property_state=None, phone_e164="+13055550123")
    assert where.zones == ALL_US_ZONES
    assert where.states == {"FL"}


def test_state_only_uses_every_zone_of_that_state() -> None:
    assert locate(property_zip=None, property_state="FL", phone_e164=None).zones == {
        EASTERN,
        CENTRAL,
    }


def test_zip_and_state_that_disagree_keep_both() -> None:
    where = locate(property_zip="94105", property_state="NY", phone_e164=None)
    assert where.zones == {PACIFIC, EASTERN}
    assert where.states == {"CA", "NY"}


@pytest.mark.parametrize(
    ("phone", "state"),
    [
        ("+12125550123", "NY"),  # "New York, NY"
        ("+12025550123", "DC"),  # "Washington D.C."
        ("+12065550123", "WA"),  # "Washington State"
        ("+12105550123", "TX"),  # "San Antonio, TX"
        ("+18015550123", "UT"),
        ("+17875550123", "PR"),
        ("+12055550123", "AL"),
    ],
)
def test_area_code_state(phone: str, state: str) -> None:
    assert locate(property_zip=None, property_state=None, phone_e164=phone).states == {state}


def test_pensacola_area_code_spans_eastern_and_central() -> None:
    where = locate(property_zip=None, property_state=None, phone_e164="+18505550123")
    assert where.zones == {EASTERN, CENTRAL}


def test_el_paso_area_code_is_mountain_texas() -> None:
    where = locate(property_zip=None, property_state=None, phone_e164="+19155550123")
    assert where == Whereabouts(zones=frozenset({MOUNTAIN}), states=frozenset({"TX"}))


def test_canadian_number_has_its_zone_and_no_us_state() -> None:
    where = locate(property_zip=None, property_state=None, phone_e164="+14165550123")
    assert where.zones == {"America/Toronto"}
    assert where.states == frozenset()


def test_every_state_and_dc_has_valid_zones() -> None:
    assert set(FIFTY_STATES_AND_DC) <= set(STATE_ZONES)
    names = set(ALL_US_ZONES).union(*STATE_ZONES.values(), *AREA_CODES_ACROSS_ZONES.values())
    for name in names:
        ZoneInfo(name)


@pytest.mark.parametrize(
    "state", ["FL", "TX", "TN", "KY", "IN", "MI", "ND", "SD", "NE", "KS", "ID", "OR", "NV", "AK"]
)
def test_states_split_by_a_zone_line_list_more_than_one_clock(state: str) -> None:
    january = datetime(2025, 1, 15, 12, tzinfo=UTC)
    offsets = {january.astimezone(ZoneInfo(z)).utcoffset() for z in STATE_ZONES[state]}
    assert len(offsets) >= 2, STATE_ZONES[state]
