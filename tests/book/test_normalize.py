"""Every normalization rule of the importer, cell by cell."""

from __future__ import annotations

import contextlib
from datetime import date
from decimal import Decimal

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from core.book.normalize import (
    CellError,
    normalize_email,
    normalize_phone,
    parse_date,
    parse_flag,
    parse_money_cents,
    parse_program,
    parse_purpose,
    parse_rate,
    parse_status,
    parse_term_months,
)


@pytest.mark.parametrize(
    "raw",
    ["(415) 867-5309", "415-867-5309", "415.867.5309", "4158675309", "+1 415 867 5309",
     "1-415-867-5309", "(415)867-5309 ext. 12"],
)  # fmt: skip
def test_us_phones_in_every_common_form_become_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+14158675309"


@pytest.mark.parametrize("raw", ["", "123", "555-1", "(000) 000-0000", "not a phone", "415-555"])
def test_invalid_phones_are_none(raw: str) -> None:
    assert normalize_phone(raw) is None


def test_emails_are_validated_and_lower_cased_without_dns() -> None:
    assert normalize_email("  Jane.Doe@GMAIL.com ") == "jane.doe@gmail.com"
    assert normalize_email("jane@") is None
    assert normalize_email("jane doe@gmail.com") is None
    assert normalize_email("") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-03-01", date(2021, 3, 1)),
        ("2021-3-1", date(2021, 3, 1)),
        ("3/1/2021", date(2021, 3, 1)),
        ("03/01/2021", date(2021, 3, 1)),
        ("3/1/21", date(2021, 3, 1)),
        ("3/1/99", date(1999, 3, 1)),
        ("03-01-2021", date(2021, 3, 1)),
        ("20210301", date(2021, 3, 1)),
        ("2021/03/01", date(2021, 3, 1)),
        ("8/14/2026 10:48:18 AM", date(2026, 8, 14)),
        ("2021-03-01T10:00:00Z", date(2021, 3, 1)),
        ("Mar 1, 2021", date(2021, 3, 1)),
        ("March 1st, 2021", date(2021, 3, 1)),
        ("01-Mar-2021", date(2021, 3, 1)),
        ("", None),
    ],
)
def test_dates_in_us_and_iso_forms(raw: str, expected: date | None) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["2021-02-30", "13/1/2021", "soon", "1/1", "2021"])
def test_unparseable_dates_raise(raw: str) -> None:
    with pytest.raises(CellError, match="is not a date"):
        parse_date(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("6.5", "6.5"), ("6.500%", "6.5"), ("6.5 %", "6.5"), ("0.065", "6.5"), ("6.875", "6.875"),
     ("7", "7"), ("0.0299", "2.99")],
)  # fmt: skip
def test_rates_in_percent_or_fraction(raw: str, expected: str) -> None:
    assert parse_rate(raw) == Decimal(expected)


@pytest.mark.parametrize(
    "raw", ["abc", "6.5.1", "30", "-1", "0", "$6", "0.5%", "22", "20.5", "6.5%%", "6 . 5"]
)
def test_bad_rates_raise(raw: str) -> None:
    with pytest.raises(CellError):
        parse_rate(raw)


@pytest.mark.parametrize(
    ("raw", "cents"),
    [("$350,000.00", 35_000_000), ("350000", 35_000_000), ("594211.0000", 59_421_100),
     ("350k", 35_000_000), ("$1,234.565", 123_457), ("", None)],
)  # fmt: skip
def test_money_to_cents(raw: str, cents: int | None) -> None:
    assert parse_money_cents(raw) == cents


@pytest.mark.parametrize("raw", ["lots", "-5", "$1,00x"])
def test_bad_money_raises(raw: str) -> None:
    with pytest.raises(CellError):
        parse_money_cents(raw)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("funded", "funded"), ("FUNDED", "funded"), ("Active", "active"),
        ("withdrawn", "withdrawn"), ("incomplete", "incomplete"), ("denied", "denied"),
        ("approved_not_accepted", "approved_not_accepted"),
        ("1", "funded"), ("2", "approved_not_accepted"), ("3", "denied"), ("4", "withdrawn"),
        ("5", "incomplete"), ("7", "denied"), ("8", "approved_not_accepted"),
        ("Loan Originated", "funded"), ("File Closed for incompleteness", "incomplete"),
        ("4. Application withdrawn by applicant", "withdrawn"),
        ("Preapproval request approved but not accepted", "approved_not_accepted"),
        ("Application denied by financial institution", "denied"),
        ("Canceled for Incompleteness", "incomplete"), ("Declined", "denied"),
    ],
)  # fmt: skip
def test_status_words_and_hmda_codes(raw: str, status: str) -> None:
    assert parse_status(raw) == status


def test_purchased_loans_and_unknown_words_are_refused() -> None:
    with pytest.raises(CellError, match="purchased loan"):
        parse_status("6")
    with pytest.raises(CellError, match="purchased loan"):
        parse_status("Loan purchased by your institution")
    with pytest.raises(CellError, match="unknown loan_status 'maybe'"):
        parse_status("maybe")
    with pytest.raises(CellError, match="empty"):
        parse_status("")
    assert parse_status("", blank="active") == "active"


@pytest.mark.parametrize(("raw", "flag"), [("yes", True), ("Y", True), ("TRUE", True), ("1", True),
                                           ("x", True), ("no", False), ("N", False), ("0", False),
                                           ("false", False), ("", None)])  # fmt: skip
def test_consent_cells(raw: str, flag: bool | None) -> None:
    assert parse_flag(raw) is flag


def test_programs_purposes_and_terms() -> None:
    assert parse_program("FHA 30yr") == ("fha", False)
    assert parse_program("Conv 5/1 ARM") == ("conventional", True)
    assert parse_program("VA") == ("va", False)
    assert parse_program("FarmersHomeAdministration") == ("usda", False)
    assert parse_program("Conventional") == ("conventional", False)
    assert parse_purpose("NoCash-Out Refinance") == "refinance"
    assert parse_purpose("Cash-Out Refinance") == "cash_out_refinance"
    assert parse_purpose("Purchase") == "purchase"
    assert parse_term_months("360") == 360
    assert parse_term_months("30 years") == 360
    assert parse_term_months("15") == 180
    assert parse_term_months("180 mos") == 180


@given(st.text(max_size=40))
def test_cell_parsers_never_fail_with_anything_but_cell_error(text: str) -> None:
    for parser in (parse_date, parse_rate, parse_money_cents, parse_term_months, parse_flag,
                   parse_status):  # fmt: skip
        with contextlib.suppress(CellError):
            parser(text)
    normalize_phone(text)
    normalize_email(text)


_LOCAL = st.from_regex(r"[a-z0-9]{1,10}([._+-][a-z0-9]{1,8}){0,2}", fullmatch=True)
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_TLD = st.sampled_from(["com", "net", "org", "io", "co", "us", "test", "local", "xn", "museum"])


@given(local=_LOCAL, labels=st.lists(_LABEL, min_size=1, max_size=3), tld=_TLD,
       upper=st.booleans())  # fmt: skip
def test_the_email_fast_path_agrees_with_email_validator(
    local: str, labels: list[str], tld: str, upper: bool
) -> None:
    address = f"{local}@{'.'.join(labels)}.{tld}"
    if upper:
        address = address.upper()
    try:
        expected = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    normalize_email.cache_clear()
    assert normalize_email(address) == expected


@given(area=st.integers(200, 999), exchange=st.integers(200, 999), line=st.integers(0, 9999),
       style=st.sampled_from(["({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "+1 {a} {e} {l}",
                              "1{a}{e}{l}", "{a}{e}{l}"]))  # fmt: skip
def test_the_phone_fast_path_agrees_with_phonenumbers(
    area: int, exchange: int, line: int, style: str
) -> None:
    raw = style.format(a=area, e=exchange, l=f"{line:04d}")
    parsed = phonenumbers.parse(raw, "US")
    expected = (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(parsed)
        else None
    )
    normalize_phone.cache_clear()
    assert normalize_phone(raw) == expected


def test_an_amount_no_loan_could_have_is_refused_by_name() -> None:
    with pytest.raises(CellError, match="larger than any loan or home value"):
        parse_money_cents("100000000000000000000000000")
    assert parse_money_cents("$1,000,000,000") == 100_000_000_000
