"""The seeded sample-book generator: realistic, deterministic, streaming, dirty on demand."""

from __future__ import annotations

import csv
import inspect
import itertools
import re
import statistics
import tracemalloc
from bisect import bisect_right
from collections import Counter
from datetime import date
from pathlib import Path

import phonenumbers
import pytest
import zipcodes
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.samplebook import (
    COLUMNS,
    DEMO_BOOK_SETTINGS,
    DIRTY_KINDS,
    ENCOMPASS_HEADERS,
    demo_book_path,
    generate_book,
    write_book_csv,
)

AS_OF = date(2026, 9, 24)
STATUSES = {"funded", "active", "withdrawn", "incomplete", "denied", "approved_not_accepted"}
FALLOUTS = {"withdrawn", "incomplete", "denied", "approved_not_accepted"}
DATE_FIELDS = (
    "consent_date",
    "application_date",
    "funded_date",
    "fallout_date",
    "first_payment_date",
    "arm_first_adjustment_date",
)
PMMS_CSV = Path(__file__).resolve().parents[1] / "core" / "data" / "pmms_weekly.csv"


def _load_pmms() -> tuple[list[date], list[float], list[float | None]]:
    with PMMS_CSV.open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    return (
        [date.fromisoformat(r["date"]) for r in records],
        [float(r["rate_30y"]) for r in records],
        [float(r["rate_15y"]) if r["rate_15y"] else None for r in records],
    )


PMMS_DAYS, PMMS_30Y, PMMS_15Y = _load_pmms()


def pmms_rate(day: date, term_months: int) -> float:
    """The PMMS average of the week on or before `day`, as a broker would look it up."""
    index = bisect_right(PMMS_DAYS, day) - 1
    if term_months <= 240 and PMMS_15Y[index] is not None:
        return PMMS_15Y[index]
    return PMMS_30Y[index]


def phone_ok(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, "US"))
    except phonenumbers.NumberParseException:
        return False


def email_ok(text: str) -> bool:
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def number_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def problems(row: dict[str, str], as_of: date) -> set[str]:
    """What an importer following SPEC §4 would reject or warn on, named like DIRTY_KINDS."""
    found: set[str] = set()
    phone_valid = bool(row["phone"]) and phone_ok(row["phone"])
    email_valid = bool(row["email"]) and email_ok(row["email"])
    if not phone_valid and not email_valid:
        found.add("no_contact")
    elif row["phone"] and not phone_valid:
        found.add("bad_phone")
    status = row["loan_status"].lower()
    if status not in STATUSES:
        found.add("unknown_status")
    if status == "funded":
        if not row["note_rate"]:
            found.add("funded_without_rate")
        elif number_or_none(row["note_rate"]) is None:
            found.add("bad_rate")
        if number_or_none(row["loan_amount"]) is None:
            found.add("funded_without_amount")
    if any(row[f] and parse_day(row[f]) is None for f in DATE_FIELDS):
        found.add("bad_date")
    funded = parse_day(row["funded_date"])
    if funded and funded > as_of:
        found.add("future_funded_date")
    return found


def identity_keys(row: dict[str, str]) -> list[str]:
    """How the importer recognises a person: lower-cased email, the phone's ten digits."""
    keys = []
    if row["email"]:
        keys.append("email:" + row["email"].lower())
    if row["phone"]:
        keys.append("phone:" + re.sub(r"\D", "", row["phone"])[-10:])
    return keys


@pytest.fixture(scope="module")
def book() -> list[dict[str, str]]:
    return list(generate_book(rows=6000, seed=11, duplicate_share=0.1))


def test_same_seed_gives_the_same_book_and_another_seed_a_different_one() -> None:
    first = list(generate_book(rows=400, seed=3, dirty_share=0.1))
    again = list(generate_book(rows=400, seed=3, dirty_share=0.1))
    other = list(generate_book(rows=400, seed=4, dirty_share=0.1))
    assert first == again
    assert [r["email"] for r in first] != [r["email"] for r in other]


def test_every_row_has_every_column_in_order_as_text(book: list[dict[str, str]]) -> None:
    for row in book:
        assert tuple(row) == COLUMNS
        assert all(isinstance(value, str) for value in row.values())
    numbers = [row["loan_number"] for row in book]
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"WB\d{7}", number) for number in numbers)


def test_clean_book_has_nothing_an_importer_would_reject(book: list[dict[str, str]]) -> None:
    flagged = [(row["loan_number"], problems(row, AS_OF)) for row in book if problems(row, AS_OF)]
    assert flagged == []


def test_note_rates_track_the_pmms_history(book: list[dict[str, str]]) -> None:
    funded = [row for row in book if row["loan_status"] == "funded"]
    by_year: dict[str, list[float]] = {}
    for row in funded:
        rate = float(row["note_rate"])
        assert rate * 8 == int(rate * 8), "note rates are quoted in eighths"
        market = pmms_rate(date.fromisoformat(row["application_date"]), int(row["term_months"]))
        assert -1.5 <= rate - market <= 1.5, row
        by_year.setdefault(row["funded_date"][:4], []).append(rate)
    assert statistics.mean(by_year["2021"]) < statistics.mean(by_year["2023"]) - 2
    since_2012 = sum(len(rates) for year, rates in by_year.items() if year >= "2012")
    boom = sum(len(rates) for year, rates in by_year.items() if "2019" <= year <= "2023")
    assert since_2012 > 0.85 * len(funded)
    assert boom > 0.45 * len(funded)
    spreads = [
        float(r["note_rate"])
        - pmms_rate(date.fromisoformat(r["application_date"]), int(r["term_months"]))
        for r in funded
        if not r["arm_first_adjustment_date"]
    ]
    assert 0.0 < statistics.mean(spreads) < 0.3


def test_funded_dates_never_pass_as_of_and_payment_dates_follow_funding() -> None:
    as_of = date(2019, 6, 30)
    rows = list(generate_book(rows=3000, seed=5, as_of=as_of))
    funded = [row for row in rows if row["loan_status"] == "funded"]
    for row in funded:
        funded_day = date.fromisoformat(row["funded_date"])
        first_payment = date.fromisoformat(row["first_payment_date"])
        assert funded_day <= as_of
        assert date.fromisoformat(row["application_date"]) < funded_day
        months_after = (first_payment.year - funded_day.year) * 12 + first_payment.month
        assert (first_payment.day, months_after - funded_day.month) == (1, 2)
        if row["arm_first_adjustment_date"]:
            adjusts = date.fromisoformat(row["arm_first_adjustment_date"])
            assert adjusts.replace(year=first_payment.year) == first_payment
            assert adjusts.year - first_payment.year in (5, 7)


def test_stalled_applications_have_fallout_dates_and_no_funding(
    book: list[dict[str, str]],
) -> None:
    stalled = [row for row in book if row["loan_status"] != "funded"]
    assert 0.14 < len(stalled) / len(book) < 0.26
    assert {row["loan_status"] for row in stalled} == FALLOUTS | {"active"}
    for row in stalled:
        assert row["funded_date"] == row["first_payment_date"] == ""
        assert row["application_date"]
        assert bool(row["fallout_date"]) == (row["loan_status"] != "active")
        if row["fallout_date"]:
            assert row["application_date"] <= row["fallout_date"] <= AS_OF.isoformat()
    assert any(row["note_rate"] == "" for row in stalled)


def test_mix_of_programs_terms_purposes_and_amounts_looks_like_a_real_book(
    book: list[dict[str, str]],
) -> None:
    programs = Counter(row["loan_program"] for row in book)
    assert 0.58 < programs["conventional"] / len(book) < 0.72
    assert 0.15 < programs["fha"] / len(book) < 0.25
    assert 0.06 < programs["va"] / len(book) < 0.14
    assert 0.01 < programs["usda"] / len(book) < 0.05
    arms = sum(1 for row in book if row["arm_first_adjustment_date"])
    assert 0.03 < arms / len(book) < 0.08
    assert Counter(row["term_months"] for row in book).most_common(1)[0][0] == "360"
    assert {row["term_months"] for row in book} == {"180", "240", "300", "360"}
    assert {row["loan_purpose"] for row in book} == {
        "purchase",
        "refinance",
        "cash_out_refinance",
    }
    for row in book:
        if row["loan_amount"]:
            amount, value = int(row["loan_amount"]), int(row["property_value"])
            assert 150_000 <= amount <= 900_000
            assert 0.58 < amount / value < 0.99
    california = [
        int(r["loan_amount"]) for r in book if r["property_state"] == "CA" and r["loan_amount"]
    ]
    ohio = [int(r["loan_amount"]) for r in book if r["property_state"] == "OH" and r["loan_amount"]]
    assert statistics.median(california) > 1.5 * statistics.median(ohio)


def test_places_are_real_zips_and_phones_mostly_local(book: list[dict[str, str]]) -> None:
    states = Counter(row["property_state"] for row in book)
    assert states.most_common(1)[0][0] == "CA"
    local = with_phone = 0
    for row in book[:600]:
        (place,) = zipcodes.matching(row["property_zip"])
        assert place["state"] == row["property_state"]
        if row["phone"]:
            with_phone += 1
            local += re.sub(r"\D", "", row["phone"])[-10:-7] in place["area_codes"]
    assert local / with_phone > 0.75


def test_contacts_validate_and_formats_vary(book: list[dict[str, str]]) -> None:
    phones = [row["phone"] for row in book if row["phone"]]
    emails = [row["email"] for row in book if row["email"]]
    assert all(row["phone"] or row["email"] for row in book)
    assert all(phone_ok(phone) for phone in phones)
    assert all(email_ok(email) for email in emails)
    assert not any(re.sub(r"\D", "", p)[-7:-4] == "555" for p in phones)
    shapes = {re.sub(r"\d", "9", phone) for phone in phones}
    assert {"(999) 999-9999", "999-999-9999", "9999999999"} <= shapes
    assert sum(email == email.lower() for email in emails) > 0.9 * len(emails)
    assert Counter(e.lower().split("@")[1] for e in emails).most_common(1)[0][0] == "gmail.com"


def test_consent_is_mostly_given_for_sms_with_a_date(book: list[dict[str, str]]) -> None:
    with_phone = [row for row in book if row["phone"]]
    granted = [row for row in with_phone if row["sms_consent"].lower() in ("yes", "y")]
    assert 0.65 < len(granted) / len(with_phone) < 0.9
    assert any(row["sms_consent"] in ("", "no") for row in with_phone)
    assert all(row["consent_date"] for row in granted)
    assert 0 < sum(row["sms_opt_out"] == "yes" for row in book) < 0.05 * len(book)


def test_repeat_borrowers_match_an_earlier_row_at_the_requested_share(
    book: list[dict[str, str]],
) -> None:
    first_seen: dict[str, dict[str, str]] = {}
    repeats = []
    for row in book:
        keys = identity_keys(row)
        earlier = next((first_seen[k] for k in keys if k in first_seen), None)
        if earlier is not None:
            repeats.append((earlier, row))
        for key in keys:
            first_seen.setdefault(key, row)
    assert 0.08 < len(repeats) / len(book) < 0.12
    for earlier, row in repeats:
        assert row["first_name"].lower() == earlier["first_name"].lower()
        assert (row["last_name"].lower(), row["property_zip"]) == (
            earlier["last_name"].lower(),
            earlier["property_zip"],
        )
    assert any(row["email"] and row["email"] != row["email"].lower() for _, row in repeats)
    assert any(row["phone"] != earlier["phone"] for earlier, row in repeats if row["phone"])


def test_dirty_rows_come_at_the_requested_share_and_each_is_caught() -> None:
    rows = list(generate_book(rows=5000, seed=9, dirty_share=0.1, duplicate_share=0.0))
    found = [problems(row, AS_OF) for row in rows]
    flagged = [kinds for kinds in found if kinds]
    assert 0.08 < len(flagged) / len(rows) < 0.12
    assert set().union(*flagged) == set(DIRTY_KINDS)
    for row, kinds in zip(rows, found, strict=True):
        if "bad_phone" in kinds:
            assert email_ok(row["email"]), "a bad phone comes beside a good email"


def test_loan_officers_are_one_brokerage(book: list[dict[str, str]]) -> None:
    rows = list(generate_book(rows=500, seed=2, lo_count=3))
    officers = {(row["lo_email"], row["lo_name"]) for row in rows}
    assert len(officers) == 3
    assert len({email.split("@")[1] for email, _ in officers}) == 1
    assert len({row["lo_email"] for row in book}) == 8


def test_encompass_style_uses_its_headers_and_value_formats(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.csv"
    assert write_book_csv(path, style="encompass", rows=800, seed=4) == 800
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == [ENCOMPASS_HEADERS[c] for c in COLUMNS]
    assert "Funds Released Date" in reader.fieldnames
    statuses = {row["Current Loan Status"] for row in rows}
    assert statuses == {
        "Loan Originated",
        "Application withdrawn",
        "File Closed for incompleteness",
        "Application denied",
        "Application approved but not accepted",
        "",
    }
    funded = [row for row in rows if row["Current Loan Status"] == "Loan Originated"]
    for row in funded:
        assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", row["Funds Released Date"])
        assert re.fullmatch(r"\$\d{3},\d{3}\.\d{2}", row["Loan Amount"])
        assert re.fullmatch(r"\d{1,2}\.\d{3}%", row["Note Rate"])
    assert {row["Loan Type"] for row in rows} >= {"Conventional", "FHA", "VA"}


def test_generic_csv_round_trips_the_generated_rows(tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    assert write_book_csv(path, rows=300, seed=8, dirty_share=0.2) == 300
    with path.open(encoding="utf-8", newline="") as handle:
        assert list(csv.DictReader(handle)) == list(
            generate_book(rows=300, seed=8, dirty_share=0.2)
        )


def test_a_large_book_is_streamed_not_held() -> None:
    rows = generate_book(rows=200_000)
    assert inspect.isgenerator(rows)
    assert [row["loan_number"] for row in itertools.islice(rows, 3)] == [
        "WB0000001",
        "WB0000002",
        "WB0000003",
    ]


def test_writing_a_book_keeps_memory_flat(tmp_path: Path) -> None:
    write_book_csv(tmp_path / "warm.csv", rows=10)  # load the rate, ZIP and name pools first
    tracemalloc.start()
    try:
        assert write_book_csv(tmp_path / "book.csv", rows=6000) == 6000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Holding these 6,000 rows as dicts takes about 9 MB; streaming them well under half that.
    assert peak < 4_500_000


def test_bundled_demo_book_is_the_seeded_book(tmp_path: Path) -> None:
    fresh = tmp_path / "sample_book.csv"
    assert write_book_csv(fresh, **DEMO_BOOK_SETTINGS) == 900
    bundled = demo_book_path()
    assert bundled.name == "sample_book.csv"
    assert bundled.read_bytes() == fresh.read_bytes(), "regenerate: python -m core.samplebook"


@pytest.mark.parametrize(
    "settings_",
    [
        {"rows": -1},
        {"rows": 5, "lo_count": 0},
        {"rows": 5, "dirty_share": 1.5},
        {"rows": 5, "duplicate_share": 0.6, "dirty_share": 0.6},
        {"rows": 5, "as_of": date(1980, 1, 1)},
    ],
)
def test_impossible_settings_are_refused(settings_: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate_book(**settings_)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    as_of=st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)),
    stalled_share=st.floats(min_value=0.0, max_value=1.0),
    duplicate_share=st.floats(min_value=0.0, max_value=1.0),
    lo_count=st.integers(min_value=1, max_value=30),
)
def test_any_clean_book_imports_without_rejects(
    seed: int, as_of: date, stalled_share: float, duplicate_share: float, lo_count: int
) -> None:
    rows = list(
        generate_book(
            rows=120,
            seed=seed,
            as_of=as_of,
            stalled_share=stalled_share,
            duplicate_share=duplicate_share,
            lo_count=lo_count,
        )
    )
    assert len(rows) == 120
    assert len({row["loan_number"] for row in rows}) == 120
    for row in rows:
        assert problems(row, as_of) == set(), row
        for field in DATE_FIELDS[:4]:
            assert row[field] == "" or row[field] <= as_of.isoformat(), (field, row)
