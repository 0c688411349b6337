"""Seeded generator of realistic mortgage books in the generic import format (SPEC §4).

Rates follow the real Freddie Mac PMMS weekly history, places are real ZIP codes with
their area codes, and a share of rows can be repeat borrowers or deliberately bad rows,
so the importer, the segments and the demo all run against something that looks like a
real brokerage's LOS export.
"""

from __future__ import annotations

import csv
import math
import random
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from itertools import accumulate
from pathlib import Path
from typing import Any

from core.book.headers import GENERIC_COLUMNS

# The generic import format's columns, in the importer's own order.
COLUMNS: tuple[str, ...] = GENERIC_COLUMNS

ENCOMPASS_HEADERS: dict[str, str] = {
    "loan_number": "Loan Number",
    "first_name": "Borrower First Name",
    "last_name": "Borrower Last Name",
    "email": "Borr Email",
    "phone": "Borr Cell",
    "sms_consent": "SMS Consent",
    "email_consent": "Email Consent",
    "sms_opt_out": "SMS Opt Out",
    "email_opt_out": "Email Opt Out",
    "consent_date": "Consent Date",
    "property_state": "Subject Property State",
    "property_zip": "Subject Property Zip",
    "loan_status": "Current Loan Status",
    "loan_purpose": "Loan Purpose",
    "loan_program": "Loan Type",
    "term_months": "Term",
    "note_rate": "Note Rate",
    "loan_amount": "Loan Amount",
    "application_date": "Application Date",
    "funded_date": "Funds Released Date",
    "fallout_date": "Fallout Date",
    "first_payment_date": "First Payment Date",
    "arm_first_adjustment_date": "ARM First Adjustment Date",
    "property_value": "Appraised Value",
    "lo_email": "File Contacts Loan Officer Email",
    "lo_name": "Loan Officer",
}

# Field 1393 stored values (shared/data/los_exports.md §2a); empty means the file is active.
ENCOMPASS_STATUS = {
    "funded": "Loan Originated",
    "active": "",
    "withdrawn": "Application withdrawn",
    "incomplete": "File Closed for incompleteness",
    "denied": "Application denied",
    "approved_not_accepted": "Application approved but not accepted",
}
ENCOMPASS_LOAN_TYPE = {
    "conventional": "Conventional",
    "fha": "FHA",
    "va": "VA",
    "usda": "FarmersHomeAdministration",
}
ENCOMPASS_PURPOSE = {
    "purchase": "Purchase",
    "refinance": "NoCash-Out Refinance",
    "cash_out_refinance": "Cash-Out Refinance",
}
_ENCOMPASS_DATES = (
    "consent_date",
    "application_date",
    "funded_date",
    "fallout_date",
    "first_payment_date",
    "arm_first_adjustment_date",
)

# Kinds of deliberately bad rows; each one the importer must reject or warn on.
DIRTY_KINDS: tuple[str, ...] = (
    "no_contact",
    "unknown_status",
    "funded_without_rate",
    "bad_date",
    "future_funded_date",
    "bad_phone",
    "bad_rate",
)

# 2020 census population, millions: where borrowers live.
_STATE_POPULATION = {
    "CA": 39.5, "TX": 29.1, "FL": 21.5, "NY": 20.2, "PA": 13.0, "IL": 12.8, "OH": 11.8,
    "GA": 10.7, "NC": 10.4, "MI": 10.1, "NJ": 9.3, "VA": 8.6, "WA": 7.7, "AZ": 7.2,
    "MA": 7.0, "TN": 6.9, "IN": 6.8, "MD": 6.2, "MO": 6.2, "WI": 5.9, "CO": 5.8,
    "MN": 5.7, "SC": 5.1, "AL": 5.0, "LA": 4.7, "KY": 4.5, "OR": 4.2, "OK": 4.0,
    "CT": 3.6, "UT": 3.3, "IA": 3.2, "NV": 3.1, "AR": 3.0, "MS": 3.0, "KS": 2.9,
    "NM": 2.1, "NE": 2.0, "ID": 1.8, "WV": 1.8, "HI": 1.5, "NH": 1.4, "ME": 1.4,
    "RI": 1.1, "MT": 1.1, "DE": 1.0, "SD": 0.9, "ND": 0.8, "AK": 0.7, "DC": 0.7,
    "VT": 0.6, "WY": 0.6,
}  # fmt: skip

# Typical new loan amount in thousands of dollars around 2021, by state.
_STATE_TYPICAL_LOAN_K = {
    "CA": 600, "HI": 640, "DC": 560, "WA": 470, "MA": 470, "CO": 450, "UT": 420,
    "NJ": 400, "NY": 400, "OR": 400, "MD": 380, "VA": 380, "NV": 360, "AZ": 350,
    "ID": 350, "MT": 340, "RI": 340, "CT": 330, "NH": 330, "FL": 320, "AK": 320,
    "TX": 300, "DE": 300, "MN": 290, "GA": 290, "NC": 280, "TN": 280, "VT": 280,
    "WY": 280, "SC": 260, "ME": 260, "IL": 260, "PA": 240, "WI": 240, "NM": 240,
    "ND": 240, "SD": 240, "NE": 230, "MI": 220, "AL": 220, "MO": 210, "KS": 210,
    "LA": 210, "OH": 200, "IN": 200, "IA": 200, "KY": 200, "AR": 190, "OK": 190,
    "MS": 180, "WV": 170,
}  # fmt: skip

# Home prices relative to 2021: loans made in 2013 were smaller for the same house.
_PRICE_LEVEL = {
    2012: 0.62, 2013: 0.66, 2014: 0.69, 2015: 0.72, 2016: 0.76, 2017: 0.80, 2018: 0.84,
    2019: 0.87, 2020: 0.92, 2021: 1.00, 2022: 1.10, 2023: 1.12, 2024: 1.15, 2025: 1.17,
}  # fmt: skip

# How busy each origination year was; the 2020-2021 refinance wave dominates real books.
_YEAR_WEIGHT = {
    2012: 5, 2013: 5, 2014: 4, 2015: 5, 2016: 6, 2017: 5, 2018: 5, 2019: 8,
    2020: 14, 2021: 16, 2022: 10, 2023: 8, 2024: 6, 2025: 6,
}  # fmt: skip

_EMAIL_DOMAINS = (
    ("gmail.com", 46), ("yahoo.com", 14), ("icloud.com", 10), ("outlook.com", 8),
    ("hotmail.com", 8), ("aol.com", 4), ("comcast.net", 3), ("att.net", 2),
    ("msn.com", 2), ("live.com", 2), ("me.com", 1),
)  # fmt: skip
_BROKERAGE_DOMAINS = (
    "harborlinelending.com",
    "summitkeymortgage.com",
    "bluegatehomeloans.com",
    "northstarmortgagegroup.com",
)
_SMS_CONSENT = (("yes", 70), ("y", 4), ("Yes", 4), ("", 14), ("no", 8))
_EMAIL_CONSENT = (("", 55), ("yes", 38), ("no", 4), ("Y", 3))
_STALLED_STATUS = (
    ("withdrawn", 40),
    ("incomplete", 20),
    ("denied", 20),
    ("approved_not_accepted", 12),
    ("active", 8),
)
_PROGRAMS = (("conventional", 67), ("fha", 20), ("va", 10), ("usda", 3))
_TERMS = {
    "conventional": ((360, 80), (180, 13), (240, 4), (300, 3)),
    "fha": ((360, 92), (180, 8)),
    "va": ((360, 90), (180, 7), (240, 3)),
    "usda": ((360, 100),),
}
# (mean, sd) of the borrower's spread over the PMMS average: FHA/VA price a little better.
_RATE_SPREAD = {"conventional": (0.15, 0.35), "fha": (0.0, 0.30), "va": (-0.05, 0.30)}
_LTV_RANGE = {"conventional": (0.60, 0.95), "fha": (0.90, 0.965), "va": (0.88, 0.97)}
_PHONE_FORMATS = (
    ("({a}) {e}-{n}", 35),
    ("{a}-{e}-{n}", 30),
    ("{a}{e}{n}", 12),
    ("{a}.{e}.{n}", 8),
    ("+1 {a} {e} {n}", 5),
    ("+1{a}{e}{n}", 5),
    ("1-{a}-{e}-{n}", 5),
)
# Exchanges that are reserved, fictional (555) or service codes (N11): never a real cell.
_BAD_EXCHANGES = frozenset({555, 950, 958, 959, 976} | {n * 100 + 11 for n in range(2, 10)})
_BAD_STATUS_WORDS = ("suspended", "on hold", "pending review", "in underwriting", "prequal", "9")
_BAD_DATES = ("2021-02-30", "13/45/2021", "00/00/0000", "next week", "2019-13-01", "31.31.2020")
_BAD_RATES = ("abc", "6..25", "six", "%", "6.5.0")
_PLAIN_EMAIL_LIMIT = 100_000  # name-only addresses remembered to keep them unique
_RECENT_PEOPLE = 5_000  # repeat borrowers are drawn from this many recent people


def _between(rng: random.Random, low: int, high: int) -> int:
    """A whole number from low to high inclusive (cheaper than randint in the hot loop)."""
    return low + int(rng.random() * (high - low + 1))


def _pick(rng: random.Random, options: Any) -> Any:
    """One of the options, uniformly (cheaper than random.choice in the hot loop)."""
    return options[int(rng.random() * len(options))]


@dataclass(frozen=True, slots=True)
class _Weighted:
    """Values with cumulative weights, drawn with one bisect."""

    values: tuple[Any, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Any) -> _Weighted:
        """Build from (value, weight) pairs."""
        values, weights = zip(*pairs, strict=True)
        return cls(tuple(values), tuple(accumulate(float(w) for w in weights)))

    def draw(self, rng: random.Random) -> Any:
        """One value, with probability proportional to its weight."""
        return self.values[bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]


@dataclass(frozen=True, slots=True)
class _RateHistory:
    """PMMS weekly averages, looked up by the week on or before a day."""

    days: tuple[int, ...]
    rate_30y: tuple[float, ...]
    rate_15y: tuple[float | None, ...]

    def rate_on(self, day: int, term_months: int) -> float:
        """The market rate a borrower locking on this day (an ordinal) would have seen."""
        index = max(bisect_right(self.days, day) - 1, 0)
        if term_months <= 240:
            return self.rate_15y[index] or self.rate_30y[index]
        return self.rate_30y[index]


@lru_cache(maxsize=1)
def _rate_history() -> _RateHistory:
    """The bundled Freddie Mac PMMS weekly history (core/data/pmms_weekly.csv)."""
    days: list[int] = []
    rate_30y: list[float] = []
    rate_15y: list[float | None] = []
    source = resources.files("core.data").joinpath("pmms_weekly.csv")
    with source.open("r", encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            days.append(date.fromisoformat(record["date"]).toordinal())
            rate_30y.append(float(record["rate_30y"]))
            rate_15y.append(float(record["rate_15y"]) if record["rate_15y"] else None)
    return _RateHistory(tuple(days), tuple(rate_30y), tuple(rate_15y))


@dataclass(frozen=True, slots=True)
class _Places:
    """Real (ZIP, area codes) pairs per state, and every usable area code."""

    zips_by_state: dict[str, tuple[tuple[str, tuple[str, ...]], ...]]
    all_area_codes: tuple[str, ...]
    states: _Weighted


def _area_code_is_real(area_code: str) -> bool:
    """True when phonenumbers accepts cell numbers under this area code."""
    import phonenumbers

    for first_digit in range(2, 10):
        number = phonenumbers.parse(f"{area_code}{first_digit}234567", "US")
        if not phonenumbers.is_valid_number(number):
            return False
    return True


@lru_cache(maxsize=1)
def _places() -> _Places:
    """Build the place pool once from the zipcodes package (about half a second)."""
    import zipcodes  # imported here so importing this module stays cheap for the CLI

    checked: dict[str, bool] = {}
    by_state: dict[str, list[tuple[str, tuple[str, ...]]]] = {s: [] for s in _STATE_POPULATION}
    for record in zipcodes.list_all():
        state = record["state"]
        if state not in by_state or record["zip_code_type"] != "STANDARD":
            continue
        if not record["active"]:
            continue
        codes = []
        for code in record["area_codes"]:
            if code not in checked:
                checked[code] = len(code) == 3 and _area_code_is_real(code)
            if checked[code]:
                codes.append(code)
        by_state[state].append((record["zip_code"], tuple(codes)))
    all_codes = tuple(sorted(code for code, ok in checked.items() if ok))
    zips = {state: tuple(entries) for state, entries in by_state.items() if entries}
    states = _Weighted.of((s, w) for s, w in _STATE_POPULATION.items() if s in zips)
    return _Places(zips, all_codes, states)


@lru_cache(maxsize=1)
def _name_pools() -> tuple[_Weighted, _Weighted, _Weighted]:
    """US female first, male first and last names, weighted by frequency (Faker en_US)."""
    from faker.providers.person.en_US import Provider

    return (
        _Weighted.of(Provider.first_names_female.items()),
        _Weighted.of(Provider.first_names_male.items()),
        _Weighted.of(Provider.last_names.items()),
    )


@dataclass(slots=True)
class _Person:
    """A borrower already in the book, kept so a later row can be their next loan."""

    first_name: str
    last_name: str
    email: str
    phone: str  # ten digits, or "" when the LOS has no cell
    state: str
    zip_code: str
    lo_index: int
    last_day: int  # ordinal of their latest funded, fallout or application date
    funded: bool


@dataclass(frozen=True, slots=True)
class _LoanOfficer:
    """One loan officer at the brokerage."""

    name: str
    email: str


def _first_of_month_after(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s month."""
    month_index = day.year * 12 + day.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def _format_phone(digits: str, rng: random.Random) -> str:
    """Ten digits written the way LOS users type them."""
    template = _PHONE_FORMATS_WEIGHTED.draw(rng)
    return template.format(a=digits[:3], e=digits[3:6], n=digits[6:])


_PHONE_FORMATS_WEIGHTED = _Weighted.of(_PHONE_FORMATS)
_DOMAINS_WEIGHTED = _Weighted.of(_EMAIL_DOMAINS)
_SMS_CONSENT_WEIGHTED = _Weighted.of(_SMS_CONSENT)
_EMAIL_CONSENT_WEIGHTED = _Weighted.of(_EMAIL_CONSENT)
_STALLED_WEIGHTED = _Weighted.of(_STALLED_STATUS)
_FALLOUT_WEIGHTED = _Weighted.of(s for s in _STALLED_STATUS if s[0] != "active")
_REPEAT_PURPOSE_WEIGHTED = _Weighted.of(
    (("refinance", 50), ("cash_out_refinance", 25), ("purchase", 25))
)
_PROGRAMS_WEIGHTED = _Weighted.of(_PROGRAMS)
_TERMS_WEIGHTED = {program: _Weighted.of(terms) for program, terms in _TERMS.items()}


class _BookMaker:
    """Draws people and loans from one seeded random stream."""

    def __init__(self, *, seed: int, as_of: date, lo_count: int, stalled_share: float) -> None:
        self.rng = random.Random(seed)
        self.as_of = as_of.toordinal()
        self.stalled_share = stalled_share
        self.rates = _rate_history()
        self.places = _places()
        self.female, self.male, self.last = _name_pools()
        self.officers, self.officer_weights = self._make_officers(lo_count)
        self.funded_years = self._funded_years(as_of)
        self.plain_emails: set[str] = set()
        self.people_made = 0

    def _make_officers(self, lo_count: int) -> tuple[list[_LoanOfficer], _Weighted]:
        """The brokerage's loan officers; some close far more loans than others."""
        domain = _pick(self.rng, _BROKERAGE_DOMAINS)
        officers: list[_LoanOfficer] = []
        taken: set[str] = set()
        for _ in range(lo_count):
            first = (self.female if self.rng.random() < 0.5 else self.male).draw(self.rng)
            last = self.last.draw(self.rng)
            local = f"{first}.{last}".lower()
            suffix = 2
            while local in taken:
                local, suffix = f"{first}.{last}{suffix}".lower(), suffix + 1
            taken.add(local)
            officers.append(_LoanOfficer(f"{first} {last}", f"{local}@{domain}"))
        weights = _Weighted.of((i, self.rng.uniform(0.4, 2.0)) for i in range(lo_count))
        return officers, weights

    def _funded_years(self, as_of: date) -> _Weighted:
        """Origination years with their share of the book, the current year pro rata."""
        pairs = []
        for year in range(as_of.year - 18, as_of.year + 1):
            start = date(year, 1, 1).toordinal()
            end = min(date(year, 12, 31).toordinal(), self.as_of)
            weight = 1.0 if year < 2012 else float(_YEAR_WEIGHT.get(year, 6))
            weight *= (end - start + 1) / 365
            pairs.append(((start, end), weight))
        return _Weighted.of(pairs)

    # People ---------------------------------------------------------------------------

    def new_person(self) -> _Person:
        """A new borrower: name, home, cell and email, and their loan officer."""
        rng = self.rng
        self.people_made += 1
        first = (self.female if rng.random() < 0.5 else self.male).draw(rng)
        last = self.last.draw(rng)
        state = self.places.states.draw(rng)
        zip_code, area_codes = _pick(rng, self.places.zips_by_state[state])
        roll = rng.random()
        phone = "" if roll < 0.05 else self._cell(area_codes)
        email = "" if 0.05 <= roll < 0.13 else self._email(first, last)
        lo_index = self.officer_weights.draw(rng)
        return _Person(first, last, email, phone, state, zip_code, lo_index, 0, False)

    def _cell(self, area_codes: tuple[str, ...]) -> str:
        """Ten digits of a valid US cell, usually under the home ZIP's area code."""
        rng = self.rng
        if area_codes and rng.random() < 0.88:
            area = _pick(rng, area_codes)
        else:
            area = _pick(rng, self.places.all_area_codes)  # kept their number after a move
        exchange = _between(rng, 200, 999)
        while exchange in _BAD_EXCHANGES:
            exchange = _between(rng, 200, 999)
        return f"{area}{exchange}{_between(rng, 0, 9999):04d}"

    def _email(self, first: str, last: str) -> str:
        """A lower-case personal address, unique to this person."""
        rng = self.rng
        first, last = first.lower(), last.lower()
        domain = _DOMAINS_WEIGHTED.draw(rng)
        shape = _between(rng, 0, 5)
        local = (f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}_{last}")[
            shape % 4
        ]
        if shape < 4 and len(self.plain_emails) < _PLAIN_EMAIL_LIMIT:
            address = f"{local}@{domain}"
            if address not in self.plain_emails:
                self.plain_emails.add(address)
                return address
        # Trailing digits are this person's own number, so no two people share an address.
        return f"{local}{self.people_made}@{domain}"

    # Loans ----------------------------------------------------------------------------

    def funded_loan(self, person: _Person, funded: int, purpose: str) -> dict[str, str]:
        """A funded loan: applied and locked a month or two before it funded."""
        application = funded - _between(self.rng, 25, 75)
        loan = self._terms(person, application, purpose)
        funded_day = date.fromordinal(funded)
        first_payment = _first_of_month_after(funded_day, 2)
        loan["loan_status"] = "funded"
        loan["funded_date"] = funded_day.isoformat()
        loan["first_payment_date"] = first_payment.isoformat()
        if loan.pop("arm", ""):
            years = 5 if self.rng.random() < 0.6 else 7
            loan["arm_first_adjustment_date"] = first_payment.replace(
                year=first_payment.year + years
            ).isoformat()
        person.last_day, person.funded = max(person.last_day, funded), True
        return loan

    def application(self, person: _Person, status: str, applied: int) -> dict[str, str]:
        """An application that never funded (or is still in process, when active)."""
        rng = self.rng
        loan = self._terms(person, applied, self._purpose(applied))
        loan.pop("arm", "")
        loan["loan_status"] = status
        last_day = applied
        if status != "active":
            last_day = min(applied + _between(rng, 7, 90), self.as_of)
            loan["fallout_date"] = date.fromordinal(last_day).isoformat()
        # Files that died early often never got a rate or a final amount.
        if rng.random() < 0.35:
            loan["note_rate"] = ""
        if rng.random() < 0.12:
            loan["loan_amount"] = loan["property_value"] = ""
        person.last_day = max(person.last_day, last_day)
        return loan

    def _terms(self, person: _Person, applied: int, purpose: str) -> dict[str, str]:
        """Program, term, note rate (PMMS of the application week plus a spread), amount, value."""
        rng = self.rng
        program = _PROGRAMS_WEIGHTED.draw(rng)
        term = _TERMS_WEIGHTED[program].draw(rng)
        arm = program == "conventional" and term == 360 and rng.random() < 0.11
        mean, sd = _RATE_SPREAD.get(program, _RATE_SPREAD["fha"])
        spread = min(max(rng.gauss(mean, sd), -1.0), 1.25) - (0.45 if arm else 0.0)
        rate = max(round((self.rates.rate_on(applied, term) + spread) * 8) / 8, 1.75)
        amount = self._amount(person.state, program, date.fromordinal(applied).year)
        value = round(amount / self._ltv(program, purpose) / 1000) * 1000
        return {
            "loan_purpose": purpose,
            "loan_program": program,
            "term_months": str(term),
            "note_rate": f"{rate:.3f}",
            "loan_amount": str(amount),
            "application_date": date.fromordinal(applied).isoformat(),
            "property_value": str(value),
            "arm": "yes" if arm else "",
        }

    def _amount(self, state: str, program: str, year: int) -> int:
        """A loan amount typical of the state, the program and the year's home prices."""
        rng = self.rng
        level = _PRICE_LEVEL.get(year, 0.62 if year < 2012 else 1.2)
        factor = {"fha": 0.8, "usda": 0.7}.get(program, 1.0)
        typical = _STATE_TYPICAL_LOAN_K[state] * 1000 * level * factor
        amount = typical * math.exp(rng.gauss(0.0, 0.33))
        for _ in range(4):
            if 150_000 <= amount <= 900_000:
                break
            amount = typical * math.exp(rng.gauss(0.0, 0.33))
        return round(min(max(amount, 150_000), 900_000) / 50) * 50

    def _ltv(self, program: str, purpose: str) -> float:
        """Loan-to-value: government loans are high, refinances lower, cash-out capped at 80%."""
        rng = self.rng
        if program == "usda":
            return rng.uniform(0.95, 0.97)
        if program != "conventional":
            return rng.uniform(*_LTV_RANGE[program])
        if purpose == "cash_out_refinance":
            return rng.uniform(0.6, 0.8)
        if purpose == "refinance":
            return rng.uniform(0.6, 0.9)
        return _pick(rng, (0.8, 0.8, 0.9, 0.95, rng.uniform(0.6, 0.95)))

    def _purpose(self, day: int) -> str:
        """Purchase most years; refinances dominate the 2020-2021 low-rate wave."""
        roll = self.rng.random()
        refi_wave = 2020 <= date.fromordinal(day).year <= 2021
        if roll < (0.35 if refi_wave else 0.6):
            return "purchase"
        return "refinance" if roll < (0.8 if refi_wave else 0.85) else "cash_out_refinance"

    # Dates ----------------------------------------------------------------------------

    def funded_day(self) -> int:
        """An origination day, mostly 2012 on, weighted to the 2019-2023 boom."""
        start, end = self.funded_years.draw(self.rng)
        return _between(self.rng, start, end)

    def stalled_day(self) -> int:
        """An application day for a file that stalled: recent files are the most common."""
        back = min(int(self.rng.expovariate(1 / 700)), 12 * 365)
        return self.as_of - 7 - back

    # Rows -----------------------------------------------------------------------------

    def first_row(self, number: int, person: _Person) -> dict[str, str]:
        """The first loan of a new person: funded, or a stalled application."""
        if self.rng.random() < self.stalled_share:
            status = _STALLED_WEIGHTED.draw(self.rng)
            if status == "active":
                applied = self.as_of - _between(self.rng, 0, 60)
            else:
                applied = self.stalled_day()
            loan = self.application(person, status, applied)
        else:
            funded = self.funded_day()
            loan = self.funded_loan(person, funded, self._purpose(funded))
        return self._row(number, person, loan, self._contact(person))

    def repeat_row(self, number: int, person: _Person) -> dict[str, str]:
        """Another loan of someone already in the book: a refinance, or a fallout then a loan."""
        rng = self.rng
        since = self.as_of - person.last_day
        if person.funded and since > 240:
            funded = _between(rng, person.last_day + 180, self.as_of)
            loan = self.funded_loan(person, funded, _REPEAT_PURPOSE_WEIGHTED.draw(rng))
        elif person.funded:
            # An earlier application that fell out before the one that funded.
            applied = person.last_day - _between(rng, 120, 700)
            loan = self.application(person, _FALLOUT_WEIGHTED.draw(rng), applied)
        elif since > 60:
            funded = _between(rng, person.last_day + 30, min(person.last_day + 540, self.as_of))
            loan = self.funded_loan(person, funded, self._purpose(funded))
        else:
            loan = self.application(person, "active", _between(rng, person.last_day, self.as_of))
        return self._row(number, person, loan, self._contact(person, repeat=True))

    def _contact(self, person: _Person, *, repeat: bool = False) -> dict[str, str]:
        """Name, phone and email as this LOS row shows them; repeats vary the formatting."""
        rng = self.rng
        email, phone = person.email, person.phone
        first, last = person.first_name, person.last_name
        if repeat:
            keep_email = bool(email) and (rng.random() < 0.75 or not phone)
            keep_phone = bool(phone) and (rng.random() < 0.7 or not keep_email)
            email = _recase_email(email, rng) if keep_email else ""
            phone = phone if keep_phone else ""
            if rng.random() < 0.1:
                first, last = first.upper(), last.upper()
        return {
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": _format_phone(phone, rng) if phone else "",
        }

    def _row(
        self, number: int, person: _Person, loan: dict[str, str], contact: dict[str, str]
    ) -> dict[str, str]:
        """One CSV row in COLUMNS order, consent recorded when the file was taken."""
        rng = self.rng
        sms_consent = _SMS_CONSENT_WEIGHTED.draw(rng) if contact["phone"] else ""
        email_consent = _EMAIL_CONSENT_WEIGHTED.draw(rng) if contact["email"] else ""
        granted = sms_consent.lower() in ("yes", "y") or email_consent.lower() in ("yes", "y")
        officer = self.officers[person.lo_index]
        return {
            "loan_number": f"WB{number:07d}",
            **contact,
            "sms_consent": sms_consent,
            "email_consent": email_consent,
            "sms_opt_out": "yes" if contact["phone"] and rng.random() < 0.02 else "",
            "email_opt_out": "yes" if contact["email"] and rng.random() < 0.015 else "",
            "consent_date": loan["application_date"] if granted else "",
            "property_state": person.state,
            "property_zip": person.zip_code,
            "loan_status": loan["loan_status"],
            "loan_purpose": loan["loan_purpose"],
            "loan_program": loan["loan_program"],
            "term_months": loan["term_months"],
            "note_rate": loan["note_rate"],
            "loan_amount": loan["loan_amount"],
            "application_date": loan["application_date"],
            "funded_date": loan.get("funded_date", ""),
            "fallout_date": loan.get("fallout_date", ""),
            "first_payment_date": loan.get("first_payment_date", ""),
            "arm_first_adjustment_date": loan.get("arm_first_adjustment_date", ""),
            "property_value": loan["property_value"],
            "lo_email": officer.email,
            "lo_name": officer.name,
        }

    def dirty_row(self, number: int) -> dict[str, str]:
        """A funded loan spoiled in one of the ways real exports go wrong (DIRTY_KINDS)."""
        rng = self.rng
        person = self.new_person()
        kind = _pick(rng, DIRTY_KINDS)
        if kind == "bad_phone" and not person.email:
            person.email = self._email(person.first_name, person.last_name)
        if kind == "future_funded_date":
            loan = self.funded_loan(person, self.as_of + _between(rng, 10, 400), "purchase")
        else:
            loan = self.funded_loan(person, self.funded_day(), self._purpose(self.as_of))
        row = self._row(number, person, loan, self._contact(person))
        _spoil(row, kind, rng)
        return row


def _spoil(row: dict[str, str], kind: str, rng: random.Random) -> None:
    """Apply one kind of defect to a clean funded row, in place."""
    if kind == "no_contact":
        row["email"] = row["phone"] = ""
        row["sms_consent"] = row["email_consent"] = row["consent_date"] = ""
    elif kind == "unknown_status":
        row["loan_status"] = _pick(rng, _BAD_STATUS_WORDS)
    elif kind == "funded_without_rate":
        row["note_rate"] = ""
    elif kind == "bad_date":
        field = _pick(rng, ("application_date", "funded_date", "first_payment_date"))
        row[field] = _pick(rng, _BAD_DATES)
    elif kind == "bad_phone":
        digits = f"{_between(rng, 200, 999)}{_between(rng, 0, 10**7 - 1):07d}"
        row["phone"] = _pick(
            rng, (f"({digits[:3]}) 012-{digits[6:]}", "000-000-0000", digits[:9], "12345", "n/a")
        )
    elif kind == "bad_rate":
        row["note_rate"] = _pick(rng, _BAD_RATES)


def _recase_email(email: str, rng: random.Random) -> str:
    """The same address as another system typed it: upper-case or capitalised."""
    roll = rng.random()
    if roll < 0.3:
        return email.upper()
    if roll < 0.5:
        local, _, domain = email.partition("@")
        return f"{local.capitalize()}@{domain.capitalize()}"
    return email


def _check_arguments(
    rows: int, lo_count: int, stalled_share: float, duplicate_share: float, dirty_share: float
) -> None:
    """Refuse settings that cannot describe a book."""
    if rows < 0:
        raise ValueError("rows must be zero or more")
    if lo_count < 1:
        raise ValueError("lo_count must be at least 1")
    for name, share in (
        ("stalled_share", stalled_share),
        ("duplicate_share", duplicate_share),
        ("dirty_share", dirty_share),
    ):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    if duplicate_share + dirty_share > 1.0:
        raise ValueError("duplicate_share + dirty_share must not exceed 1")


def generate_book(
    *,
    rows: int,
    seed: int = 7,
    as_of: date = date(2026, 9, 24),
    lo_count: int = 8,
    stalled_share: float = 0.2,
    duplicate_share: float = 0.05,
    dirty_share: float = 0.0,
) -> Iterator[dict[str, str]]:
    """Yield `rows` generic-format rows (all strings, '' for blank), the same for the same seed."""
    _check_arguments(rows, lo_count, stalled_share, duplicate_share, dirty_share)
    if as_of < date(1990, 1, 1):
        raise ValueError("as_of must be 1990 or later: the rate history starts in 1971")
    maker = _BookMaker(seed=seed, as_of=as_of, lo_count=lo_count, stalled_share=stalled_share)
    return _book_rows(maker, rows, duplicate_share, dirty_share)


def _book_rows(
    maker: _BookMaker, rows: int, duplicate_share: float, dirty_share: float
) -> Iterator[dict[str, str]]:
    """The row stream; only the most recent people are remembered, so memory stays flat."""
    recent: deque[_Person] = deque(maxlen=_RECENT_PEOPLE)
    rng = maker.rng
    for number in range(1, rows + 1):
        roll = rng.random()
        if roll < dirty_share:
            yield maker.dirty_row(number)
        elif roll < dirty_share + duplicate_share and recent:
            yield maker.repeat_row(number, recent[_between(rng, 0, len(recent) - 1)])
        else:
            person = maker.new_person()
            recent.append(person)
            yield maker.first_row(number, person)


def encompass_row(row: dict[str, str]) -> dict[str, str]:
    """The same row as an Encompass report shows it, keyed by Encompass header."""
    shown = dict(row)
    status = row["loan_status"]
    shown["loan_status"] = ENCOMPASS_STATUS.get(status, status)
    shown["loan_purpose"] = ENCOMPASS_PURPOSE.get(row["loan_purpose"], row["loan_purpose"])
    shown["loan_program"] = ENCOMPASS_LOAN_TYPE.get(row["loan_program"], row["loan_program"])
    for field in _ENCOMPASS_DATES:
        shown[field] = _us_date(row[field])
    for field in ("loan_amount", "property_value"):
        shown[field] = _dollars(row[field])
    shown["note_rate"] = _percent(row["note_rate"])
    return {ENCOMPASS_HEADERS[column]: shown[column] for column in COLUMNS}


def _us_date(value: str) -> str:
    """ISO to M/D/YYYY; anything unparseable is left as it was (dirty rows stay dirty)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{day.month}/{day.day}/{day.year}"


def _dollars(value: str) -> str:
    """350000 to $350,000.00."""
    try:
        return f"${float(value):,.2f}"
    except ValueError:
        return value


def _percent(value: str) -> str:
    """6.5 to 6.500%."""
    try:
        return f"{float(value):.3f}%"
    except ValueError:
        return value


def write_book_csv(path: Path | str, *, style: str = "generic", **kwargs: Any) -> int:
    """Stream a generated book to a CSV file (generic or Encompass headers); return the rows."""
    if style not in ("generic", "encompass"):
        raise ValueError("style must be 'generic' or 'encompass'")
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if style == "generic":
            writer.writerow(COLUMNS)
            for row in generate_book(**kwargs):
                writer.writerow(row.values())
                count += 1
        else:
            writer.writerow(ENCOMPASS_HEADERS[column] for column in COLUMNS)
            for row in generate_book(**kwargs):
                writer.writerow(encompass_row(row).values())
                count += 1
    return count


DEMO_BOOK_SETTINGS: dict[str, Any] = {"rows": 900, "seed": 2026, "as_of": date(2026, 9, 24)}


def demo_book_path() -> Path:
    """The bundled demo book (core/data/sample_book.csv), generated with DEMO_BOOK_SETTINGS."""
    return Path(str(resources.files("core.data").joinpath("sample_book.csv")))


if __name__ == "__main__":  # regenerate the bundled demo book: python -m core.samplebook
    print(write_book_csv(demo_book_path(), **DEMO_BOOK_SETTINGS))
