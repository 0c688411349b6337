"""What every trigger shares: its context, what it found, and the people it must leave alone.

A trigger narrows the loans with one set-based SQL query and hands the survivors to numpy as
columns (`core.triggers.columns`). The people every trigger must leave alone (opted out,
unreachable, suppressed, already walking a track, or back with a newer funded loan) are
looked up once per evaluation, not once per trigger and loan: `TriggerContext.fetch` drops
their loans for every trigger. What a
trigger found stays columnar: counting a segment never builds a Python object per person,
and `Candidate`s with their snapshots are built only for the people a batch will hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.batches.candidate import Candidate
from core.book.models import FUNDED, OPTED_OUT, Contact, Loan
from core.config import Config
from core.consent.models import Suppression
from core.outreach.models import ACTIVE, Enrollment
from core.rates.service import Offer
from core.triggers.columns import Ints, day_number, fetch_columns

NO_FUNDED_LOAN = -(10**9)  # a day number before any loan


@dataclass(frozen=True)
class LeftAlone:
    """The people no trigger may pick (sorted contact ids), and who already came back."""

    unreachable: Ints  # opted out, suppressed, or with no channel that may carry a message
    enrolled: Ints  # already walking a track: left out of batches, still counted in segments
    repeat_people: Ints  # people with more than one loan with us …
    last_funded: Ints  # … and the day of their latest loan funded by today (or NO_FUNDED_LOAN)

    def keep(self, contact_ids: Ints, after: Ints, *, for_segment: bool) -> NDArray[np.bool_]:
        """Which rows a trigger may pick: reachable people without a loan funded after `after`."""
        keep = ~np.isin(contact_ids, self.unreachable)
        if not for_segment:
            keep &= ~np.isin(contact_ids, self.enrolled)
        if len(self.repeat_people):
            at = np.minimum(
                np.searchsorted(self.repeat_people, contact_ids), len(self.repeat_people) - 1
            )
            repeat = self.repeat_people[at] == contact_ids
            # A newer funded loan with us: the person already came back.
            keep &= ~(repeat & (self.last_funded[at] > after))
        return keep


def people_left_alone(session: Session, today: date) -> LeftAlone:
    """Who every trigger must leave alone on `today` (five queries, whatever the book's size).

    Only loans funded by `today` count as having come back, so a backtest at a past date never
    sees the future.
    """
    # Anyone not positively reachable is left alone: a NULL lands in the ELSE branch.
    unreachable = select(Contact.id).where(case((reachable(), 0), else_=1) == 1)
    # From the (short) suppression list to the people, through the phone and email indexes.
    suppressed = [
        select(Contact.id).join(
            Suppression, and_(Suppression.kind == kind, Suppression.value == on)
        )
        for kind, on in (("phone", Contact.phone), ("email", Contact.email))
    ]
    enrolled = select(Enrollment.contact_id).where(Enrollment.status == ACTIVE)
    # One person with one loan has nothing newer: only repeat borrowers need a look.
    funded_by_today = and_(Loan.status == FUNDED, Loan.funded_date <= today)
    latest = func.max(case((funded_by_today, day_number(Loan.funded_date))))
    repeat = (
        select(Loan.contact_id, func.coalesce(latest, NO_FUNDED_LOAN))
        .group_by(Loan.contact_id)
        .having(func.count() > 1)
    )
    ids = [fetch_columns(session, query, ("id",))["id"] for query in (unreachable, *suppressed)]
    repeat_people = fetch_columns(session, repeat, ("id", "last_funded"))
    order = np.argsort(repeat_people["id"])
    return LeftAlone(
        unreachable=np.unique(np.concatenate(ids)),
        enrolled=np.unique(fetch_columns(session, enrolled, ("id",))["id"]),
        repeat_people=repeat_people["id"][order],
        last_funded=repeat_people["last_funded"][order],
    )


@dataclass(frozen=True)
class TriggerContext:
    """One evaluation: the clock, the configuration, today's offer rates, who to leave alone."""

    session: Session
    now: datetime
    config: Config
    # Looked up when a trigger first needs it (memoized), so it can overlap the first query.
    who_to_leave_alone: Callable[[], LeftAlone]
    offers: dict[str, Offer] = field(default_factory=dict)

    @property
    def today(self) -> date:
        """The evaluation date (UTC)."""
        return self.now.date()

    @property
    def left_alone(self) -> LeftAlone:
        """The people no trigger may pick."""
        return self.who_to_leave_alone()

    def fetch(
        self, query: Any, names: Sequence[str], *, after: str, for_segment: bool
    ) -> dict[str, Ints]:
        """A trigger's query as columns, without the loans of people it must leave alone.

        `after` names the column holding the day a newer funded loan would have to follow
        (the loan's funding, or an application's fallout) for the person to have come back.
        """
        columns = fetch_columns(self.session, query, names)
        keep = self.left_alone.keep(columns["contact_id"], columns[after], for_segment=for_segment)
        return {name: values[keep] for name, values in columns.items()}


Rows = NDArray[np.intp]


@dataclass(frozen=True)
class Found:
    """One trigger's qualifying loans as columns; `Candidate`s are built only when asked."""

    contact_id: NDArray[np.int64]
    loan_id: NDArray[np.int64]
    rank: NDArray[np.float64]  # higher is better when a person has several qualifying loans
    build: Callable[[Rows], list[Candidate]]

    @classmethod
    def nothing(cls) -> Found:
        """No qualifying loan."""
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, empty, np.zeros(0), lambda rows: [])

    def __len__(self) -> int:
        return len(self.contact_id)

    def best_per_contact(self) -> Rows:
        """The row of each person's best-ranked loan (ties: the newest loan)."""
        if not len(self):
            return np.zeros(0, dtype=np.intp)
        order = np.lexsort((-self.loan_id, -self.rank, self.contact_id))
        people = self.contact_id[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = people[1:] != people[:-1]
        return order[first]

    def people(self) -> int:
        """How many different people qualified."""
        return len(np.unique(self.contact_id))

    def candidates(self, rows: Rows | None = None) -> list[Candidate]:
        """Candidates for `rows` (default: every person's best loan), snapshots included."""
        chosen = self.best_per_contact() if rows is None else rows
        return self.build(np.asarray(chosen, dtype=np.intp)) if len(chosen) else []


class Trigger(Protocol):
    """A trigger: a name, the segment it feeds, and what it finds."""

    name: str
    segment: str

    def find(self, ctx: TriggerContext, *, for_segment: bool) -> Found:
        """Qualifying loans; `for_segment` skips cooldowns and the live-batch guards."""
        ...


def reachable() -> ColumnElement[bool]:
    """People we may contact at all: no opt-out anywhere, and some channel that can carry."""
    sms = and_(
        Contact.phone.is_not(None), Contact.phone_status == "ok", Contact.sms_consent == "granted"
    )
    email = and_(Contact.email.is_not(None), Contact.email_consent.not_in(("denied", OPTED_OUT)))
    # Every opt-out is global (COMPLIANCE §1): an opt-out on one channel ends all marketing.
    no_opt_out = and_(Contact.sms_consent != OPTED_OUT, Contact.email_consent != OPTED_OUT)
    return and_(no_opt_out, or_(sms, email))


# With no first payment date in the export, assume the latest a servicer would set it:
# the first of the second month after funding is at most 62 days after funding.
FIRST_PAYMENT_SLACK = timedelta(days=62)


def first_payment_day() -> ColumnElement[int]:
    """The loan's first payment due date as a day number, or the latest it could be."""
    return func.coalesce(
        day_number(Loan.first_payment_date),
        day_number(Loan.funded_date) + FIRST_PAYMENT_SLACK.days,
    )


def loan_query(*columns: Any) -> Any:
    """SELECT columns FROM loans."""
    return select(*columns).select_from(Loan)


def best_per_contact(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per person: the best-ranked of their qualifying loans (ties: newest)."""
    best: dict[int, Candidate] = {}
    for candidate in candidates:
        current = best.get(candidate.contact_id)
        if current is None or (candidate.rank, candidate.loan_id) > (current.rank, current.loan_id):
            best[candidate.contact_id] = candidate
    return list(best.values())


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; Feb 29 becomes Feb 28 in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
