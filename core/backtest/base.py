"""The book as columns, read once for the whole replay, and what a trigger finds on one week.

The live triggers narrow the book with SQL on every evaluation; a replay of 612 weeks spent
nearly all its time building and running those queries (13,000 of them for 900 loans). Here
the book is read once into numpy columns with the triggers' own conversions (day numbers,
rate units, cents: `core.triggers.columns`), and every week's filters run on the columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import case, func
from sqlalchemy.orm import Session

from core.book.models import FUNDED, Loan
from core.rates.service import Offer
from core.triggers.base import first_payment_day, loan_query, people_left_alone
from core.triggers.calendar import FALLOUTS
from core.triggers.columns import Ints, day_number, fetch_columns, rate_units

Bools = NDArray[np.bool_]
NO_DAY = 10**9  # a day number after any real date: a missing date never passes `<= today`
STATUSES = (FUNDED, *FALLOUTS)  # a loan's status is its index here, -1 for any other
PROGRAMS = ("conventional", "fha", "va")  # likewise for the program


@dataclass(frozen=True)
class BookColumns:
    """Every loan of the book, one row each, with what stays the same all replay long."""

    loan_id: Ints
    contact_id: Ints
    status: Ints  # index into STATUSES, -1 for any other
    program: Ints  # index into PROGRAMS, -1 for any other
    is_arm: Ints  # 1 or 0
    term_months: Ints  # 0 when unknown
    note_rate: Ints  # rate units (thousandths of a basis point), -1 when unknown
    amount_cents: Ints  # 0 when unknown
    value_cents: Ints  # 0 when unknown
    funded: Ints  # day numbers from here on, NO_DAY when unknown
    fallout: Ints
    first_payment: Ints  # the due date, or the latest it could be when the export has none
    arm_adjustment: Ints
    known_from: Ints  # the day it reached its status: the replay never shows it before
    reachable: Bools  # not opted out, suppressed or on a track (as today's export has it)
    alone: Bools  # the person's only loan in the book: always their best one
    back_after_funded: Ints  # the first day a newer funded loan shows the person came back
    back_after_fallout: Ints  # … counting from the fallout date instead (NO_DAY: never)

    def __len__(self) -> int:
        return len(self.loan_id)

    def visible(self, rows: Ints, *, after_fallout: bool = False) -> tuple[Ints, Ints]:
        """For `rows`: the first day each may be picked, and the first day it no longer may."""
        back = self.back_after_fallout if after_fallout else self.back_after_funded
        return self.known_from[rows], back[rows]


@dataclass(frozen=True)
class Week:
    """One survey week of the replay: its day number, its date and the offer rates on it."""

    day: int
    on: date
    offers: dict[str, Offer]


@dataclass(frozen=True)
class Qualified:
    """One trigger's qualifying loans on one week, as book rows.

    `rank` orders one person's loans exactly as the live `Candidate.rank` does (whole cents of
    savings, hundredths of LTV, days), and `occasion` is what the live occasion text holds
    besides the loan: years, an anniversary year, a fallout offset, a reset day, a product.
    """

    rows: Ints
    rank: Ints
    occasion: Ints
    savings_cents: Ints | None = None  # rate_drop only

    @classmethod
    def nothing(cls) -> Qualified:
        """No qualifying loan."""
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, empty, empty, empty)

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, picked: NDArray[np.intp]) -> Qualified:
        """Only the `picked` entries."""
        savings = None if self.savings_cents is None else self.savings_cents[picked]
        return Qualified(self.rows[picked], self.rank[picked], self.occasion[picked], savings)


class Qualifier(Protocol):
    """A trigger's rules over the book columns, prepared once and asked once a week."""

    name: str

    def on(self, week: Week) -> Qualified:
        """The loans that qualify on this week."""
        ...

    def occasion(self, loan_id: int, occasion: int, week: Week) -> str:
        """The live trigger's occasion text for a loan that fired."""
        ...

    def offer(self, occasion: int, week: Week) -> Offer | None:
        """The offer a firing was made at (rate_drop only)."""
        ...


def _code(column: object, names: tuple[str, ...]) -> object:
    """A text column as its index in `names`, -1 for anything else (NULL included)."""
    return case(*((column == name, code) for code, name in enumerate(names)), else_=-1)


def _day(column: object) -> object:
    return func.coalesce(day_number(column), NO_DAY)


_COLUMNS = (
    "loan_id",
    "contact_id",
    "status",
    "program",
    "is_arm",
    "term_months",
    "note_rate",
    "amount_cents",
    "value_cents",
    "funded",
    "fallout",
    "first_payment",
    "arm_adjustment",
    "known_from",
)


def load_book(session: Session, today: date) -> BookColumns:
    """Every loan as columns (one query), and who may be reached and when they came back."""
    query = loan_query(
        Loan.id,
        Loan.contact_id,
        _code(Loan.status, STATUSES),
        _code(Loan.program, PROGRAMS),
        case((Loan.is_arm.is_(True), 1), else_=0),
        func.coalesce(Loan.term_months, 0),
        func.coalesce(rate_units(Loan.note_rate), -1),
        func.coalesce(Loan.loan_amount_cents, 0),
        func.coalesce(Loan.property_value_cents, 0),
        _day(Loan.funded_date),
        _day(Loan.fallout_date),
        func.coalesce(first_payment_day(), NO_DAY),
        _day(Loan.arm_first_adjustment_date),
        _day(func.coalesce(Loan.funded_date, Loan.fallout_date, Loan.application_date)),
    )
    columns = fetch_columns(session, query, _COLUMNS)
    # Consent, suppressions and tracks are today's: the same for every week of the replay.
    left_alone = people_left_alone(session, today)
    contact = columns["contact_id"]
    reachable = ~np.isin(contact, left_alone.unreachable) & ~np.isin(contact, left_alone.enrolled)
    funded = np.where(columns["status"] == STATUSES.index(FUNDED), columns["funded"], NO_DAY)
    _, inverse, loans = np.unique(contact, return_inverse=True, return_counts=True)
    return BookColumns(
        **columns,
        reachable=reachable,
        alone=loans[inverse] == 1,
        back_after_funded=came_back(contact, funded, columns["funded"]),
        back_after_fallout=came_back(contact, funded, columns["fallout"]),
    )


def came_back(contact: Ints, funded: Ints, after: Ints) -> Ints:
    """Per loan: the first day one of the person's loans was funded after `after` (or NO_DAY).

    The live rule (`LeftAlone.keep`) drops a loan once the person's latest loan funded by
    today is newer than it: that holds from the first such funding day on, for good.
    """
    with_funding = funded < NO_DAY
    known = after < NO_DAY
    if not with_funding.any():
        return np.full(len(contact), NO_DAY, dtype=np.int64)
    low = min(int(funded[with_funding].min()), int(after[known].min(initial=0)))
    span = np.int64(NO_DAY)
    # One sorted key per funded loan, person first: a search finds the next funding after a day.
    keys = np.sort(contact[with_funding] * span + (funded[with_funding] - low))
    at = np.searchsorted(keys, contact * span + (np.where(known, after, low) - low), side="right")
    following = keys[np.minimum(at, len(keys) - 1)]
    same_person = known & (at < len(keys)) & (following // span == contact)
    return np.where(same_person, following % span + low, NO_DAY)
