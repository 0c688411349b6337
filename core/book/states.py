"""US states and territories: a property_state cell in any common spelling to its USPS code."""

from __future__ import annotations

import re

# The 50 states, DC and the five inhabited territories, by the names the `holidays` package
# gives them (tests/book/test_states.py checks this table against it). Written out rather
# than read from `holidays` at import time because importing it costs ~0.3 s in the parent
# and in every spawned parse worker, for a table that has not changed since 1959.
STATE_NAMES: dict[str, str] = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
    "PR": "Puerto Rico",
    "VI": "Virgin Islands, U.S.",
    "GU": "Guam",
    "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
}

USPS_CODES: frozenset[str] = frozenset(STATE_NAMES)

# Other spellings seen in loan-origination exports.
_ALIASES: dict[str, str] = {
    "Washington DC": "DC",
    "Washington State": "WA",
    "US Virgin Islands": "VI",
    "United States Virgin Islands": "VI",
    "Virgin Islands": "VI",
    "USVI": "VI",
    "Northern Marianas": "MP",
    "CNMI": "MP",
}

_NOT_LETTERS_OR_DIGITS = re.compile(r"[^a-z0-9]")
# "N. Carolina", "S Dakota", "W. Virginia": the compass word shortened to its initial.
_COMPASS = re.compile(r"^(North|South|West) (\w+)$")


def _key(text: str) -> str:
    """The spelling-independent form of a name: lower case, letters and digits only."""
    return _NOT_LETTERS_OR_DIGITS.sub("", text.casefold())


def _lookup_table() -> dict[str, str]:
    table = {_key(code): code for code in STATE_NAMES}
    for code, name in STATE_NAMES.items():
        table[_key(name)] = code
        if compass := _COMPASS.match(name):
            table[_key(compass.group(1)[0] + compass.group(2))] = code
    for alias, code in _ALIASES.items():
        table[_key(alias)] = code
    return table


_LOOKUP = _lookup_table()


def usps_code(raw: str) -> str | None:
    """The USPS code of a state or territory written as a code or a name; None if it is neither."""
    return _LOOKUP.get(_key(raw))
