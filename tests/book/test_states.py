"""property_state cells: any spelling of a state lands as its USPS code, anything else blank."""

from __future__ import annotations

from datetime import date

import pytest
from holidays.countries.united_states import US
from hypothesis import given
from hypothesis import strategies as st

from core.book.headers import GENERIC_COLUMNS as COLUMNS
from core.book.headers import choose_preset
from core.book.rows import BookRow, parse_row
from core.book.states import STATE_NAMES, USPS_CODES, usps_code
from core.compliance import zones
from tests.book.helpers import book_row
from tests.compliance import FIFTY_STATES_AND_DC

TERRITORIES = ["PR", "VI", "GU", "AS", "MP"]
ALL_CODES = [*FIFTY_STATES_AND_DC, *TERRITORIES]
# Ground truth from a maintained package (territories and DC included, the uninhabited
# Minor Outlying Islands left out), so a typo in our table cannot hide behind its own test.
HOLIDAYS_NAMES = {name: code for name, code in US.subdivisions_aliases.items() if code != "UM"}

UNKNOWN_STATE = (
    "is not a US state or territory: left blank, quiet hours follow the ZIP and the phone's "
    "area code"
)


def parse(**cells: str) -> BookRow:
    """One generic row, parsed as the importer parses it."""
    row = book_row(**cells)
    headers = list(COLUMNS)
    return parse_row([row[column] for column in headers], line=2, headers=headers,
                     header_map=choose_preset(headers, "generic"), today=date(2026, 9, 24),
                     source="import:export.csv")  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "code"),
    [("Connecticut", "CT"), ("Mississippi", "MS"), ("Nevada", "NV"), ("Maryland", "MD"),
     ("Texas", "TX"), ("new york", "NY"), ("New-York", "NY"), ("NEW YORK", "NY"),
     ("  new   york ", "NY"), ("N. Carolina", "NC"), ("S Dakota", "SD"), ("W. Virginia", "WV"),
     ("District of Columbia", "DC"), ("Washington DC", "DC"), ("Washington, D.C.", "DC"),
     ("D.C.", "DC"), ("Washington", "WA"), ("Washington State", "WA"), ("Puerto Rico", "PR"),
     ("U.S. Virgin Islands", "VI"), ("Virgin Islands", "VI"), ("Guam", "GU"),
     ("American Samoa", "AS"), ("Northern Mariana Islands", "MP"), ("ct", "CT"), (" Tx ", "TX")],
)  # fmt: skip
def test_names_and_codes_in_any_spelling_map_to_the_usps_code(raw: str, code: str) -> None:
    assert usps_code(raw) == code


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_usps_code_maps_to_itself(code: str) -> None:
    assert (usps_code(code), usps_code(code.lower())) == (code, code)


@pytest.mark.parametrize(
    "raw", ["Texass", "ZZ", "12", "", "   ", "T", "UM", "Conn", "New", "North", "N/A", "CAL"]
)
def test_anything_else_is_not_a_state(raw: str) -> None:
    assert usps_code(raw) is None


def test_the_table_agrees_with_the_holidays_package_and_the_send_time_rules() -> None:
    assert {usps_code(name) for name in HOLIDAYS_NAMES} == set(ALL_CODES)
    assert {name: usps_code(name) for name in HOLIDAYS_NAMES} == HOLIDAYS_NAMES
    # A code compliance has no zones for would be ignored at send time without a word.
    assert USPS_CODES == set(zones.STATE_ZONES) == set(ALL_CODES)
    assert len(STATE_NAMES) == len(ALL_CODES) == 56


@pytest.mark.parametrize(
    ("raw", "code"), [("Connecticut", "CT"), ("Texas", "TX"), ("nevada", "NV"), ("MD", "MD")]
)
def test_a_row_stores_the_code_without_a_warning(raw: str, code: str) -> None:
    row = parse(property_state=raw)
    assert (row.property_state, row.loan["property_state"], row.warnings) == (code, code, [])


def test_an_unknown_state_keeps_the_row_blank_with_a_warning() -> None:
    row = parse(property_state="Texass", property_zip="75201")
    assert (row.property_state, row.loan["property_state"]) == (None, None)
    assert row.property_zip == "75201"  # compliance places the borrower by the ZIP instead
    assert row.warnings == [f"property_state 'Texass' {UNKNOWN_STATE}"]


@pytest.mark.parametrize("raw", ["12", "(415) 867-5309", "jane.doe@gmail.com", "4158675309"])
def test_a_state_cell_holding_contact_data_is_never_quoted(raw: str) -> None:
    # A shifted column can put a phone or an email in the state cell; warnings are audited.
    row = parse(property_state=raw)
    assert row.property_state is None
    assert row.warnings == [f"property_state {UNKNOWN_STATE}"]


@st.composite
def respelled(draw: st.DrawFn) -> tuple[str, str]:
    """A full name from the ground truth in random case, spacing and punctuation."""
    name, code = draw(st.sampled_from(sorted(HOLIDAYS_NAMES.items())))
    cased = "".join(letter.upper() if draw(st.booleans()) else letter.lower() for letter in name)
    separator = st.text(alphabet=" -_.\t", min_size=1, max_size=3)
    words = cased.replace(",", " ").split()
    spelled = words[0] + "".join(draw(separator) + word for word in words[1:])
    edge = st.text(alphabet=" \t", max_size=2)
    return draw(edge) + spelled + draw(edge), code


@given(spelled=respelled())
def test_any_full_name_in_any_case_and_spacing_maps_to_its_code(spelled: tuple[str, str]) -> None:
    raw, code = spelled
    assert usps_code(raw) == code


@given(raw=st.text(max_size=40))
def test_no_state_cell_crashes_or_invents_a_state(raw: str) -> None:
    code = usps_code(raw)
    assert code is None or code in USPS_CODES
    row = parse(property_state=raw.strip())
    assert row.property_state == code
    for warning in row.warnings:
        assert "@" not in warning and not any(char.isdigit() for char in warning)


@pytest.mark.parametrize(
    ("number", "state"),
    [("+12025550123", "DC"), ("+12065550123", "WA"), ("+12145550123", "TX"),
     ("+18605550123", "CT"), ("+16015550123", "MS"), ("+17875550123", "PR")],
)  # fmt: skip
def test_compliance_reads_an_area_codes_state_through_the_same_table(
    number: str, state: str
) -> None:
    # The phone's area-code state decides quiet hours too (COMPLIANCE §3); phonenumbers'
    # geocoder names it "Washington D.C.", "Washington State", "Texas"...
    assert zones.locate(property_zip=None, property_state=None, phone_e164=number).states == {state}
