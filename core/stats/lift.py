"""Did outreach cause it? The funded rate of messaged people against the held-out ones.

For each trigger, over the batches approved in the period (``decided_at``, auto-approved ones
included): the *messaged* group is the members who were enrolled, the *holdout* group the
members held out for measurement (core.holdout), both chosen among the same free people by a
hash, so the two groups differ only in the messages. Both are measured the same way, as
assigned (whether or not a message got through): a person counts as funded when they have a
loan funded on a UTC day after the batch's approval and at most ``window_days`` after it,
whose application (when the export dates it) is not before the approval. The attribution table
is not used here: it needs a touch, and the held-out people have none.

``lift`` is the messaged rate minus the holdout rate, with a 95 % interval from the normal
approximation for the difference of two proportions (unpooled standard error). With fewer than
``MIN_PEOPLE`` people in either group, or fewer than ``MIN_FUNDINGS`` fundings in both together,
the lift and its interval are None and ``note`` says "not enough data yet". Batches approved
less than a window ago are still counting their fundings: both groups alike, so the difference
stays fair while both rates are low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist
from typing import Any

from sqlalchemy import Date, case, cast, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from core.batches.models import APPROVED, Batch, BatchMember
from core.book.models import FUNDED, Loan
from core.holdout import HeldOut
from core.outreach.models import Enrollment

MIN_PEOPLE = 30
MIN_FUNDINGS = 5
CONFIDENCE = 0.95
NOT_ENOUGH = "not enough data yet"
MESSAGED, HOLDOUT = "messaged", "holdout"


@dataclass(frozen=True)
class Lift:
    """One trigger's messaged vs holdout funded rates, and the difference."""

    trigger: str
    messaged: int
    messaged_funded: int
    holdout: int
    holdout_funded: int
    messaged_rate: float | None
    holdout_rate: float | None
    lift: float | None  # messaged rate - holdout rate; None when there is not enough data
    low: float | None  # the 95 % interval of the lift
    high: float | None
    note: str | None  # NOT_ENOUGH (with what is missing) when lift is None

    def as_json(self) -> dict[str, Any]:
        """The readout as JSON (rates as fractions, the interval as [low, high])."""
        return {
            "trigger": self.trigger,
            "messaged": self.messaged, "messaged_funded": self.messaged_funded,
            "holdout": self.holdout, "holdout_funded": self.holdout_funded,
            "messaged_rate": self.messaged_rate, "holdout_rate": self.holdout_rate,
            "lift": self.lift,
            "ci95": [self.low, self.high] if self.lift is not None else None,
            "note": self.note,
        }  # fmt: skip


def lift_of(
    trigger: str, *, messaged: int, messaged_funded: int, holdout: int, holdout_funded: int
) -> Lift:
    """The lift and its 95 % interval from the four counts (or why there is none yet)."""
    p1 = messaged_funded / messaged if messaged else None
    p0 = holdout_funded / holdout if holdout else None
    counts = (trigger, messaged, messaged_funded, holdout, holdout_funded)
    missing = []
    if min(messaged, holdout) < MIN_PEOPLE:
        missing.append(f"{MIN_PEOPLE} people in each group")
    if messaged_funded + holdout_funded < MIN_FUNDINGS:
        missing.append(f"{MIN_FUNDINGS} fundings")
    rates = (_round(p1), _round(p0))
    if missing or p1 is None or p0 is None:
        return Lift(
            *counts, *rates, None, None, None, f"{NOT_ENOUGH} (needs {' and '.join(missing)})"
        )
    z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)
    se = math.sqrt(p1 * (1 - p1) / messaged + p0 * (1 - p0) / holdout)
    diff = p1 - p0
    return Lift(*counts, *rates, _round(diff), _round(diff - z * se), _round(diff + z * se), None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def holdout_lift(
    session: Session, *, since: datetime | None, now: datetime, window_days: int
) -> list[Lift]:
    """Per trigger with anyone in the batches approved in the period, the lift readout."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        day = cast(func.timezone("UTC", Batch.decided_at), Date)
        end = day + literal(window_days)
    else:  # SQLite keeps naive UTC text, dates as text
        day = func.date(Batch.decided_at)
        end = func.date(Batch.decided_at, f"+{window_days} days")
    approved = [Batch.status == APPROVED, Batch.decided_at <= now]
    if since is not None:
        approved.append(Batch.decided_at >= since)
    columns = (Batch.trigger.label("trigger"), day.label("day"), end.label("end"))
    messaged = (
        select(*columns, literal(MESSAGED).label("grp"), Enrollment.contact_id)
        .join(BatchMember, BatchMember.id == Enrollment.batch_member_id)
        .join(Batch, Batch.id == BatchMember.batch_id)
        .where(*approved)
    )
    held = (
        select(*columns, literal(HOLDOUT).label("grp"), HeldOut.contact_id)
        .join(Batch, Batch.id == HeldOut.batch_id)
        .where(*approved)
    )
    people = union_all(messaged, held).subquery("lift_people")
    funded = exists().where(
        Loan.contact_id == people.c.contact_id, Loan.status == FUNDED,
        Loan.funded_date > people.c.day, Loan.funded_date <= people.c.end,
        or_(Loan.application_date.is_(None), Loan.application_date >= people.c.day),
    )  # fmt: skip
    rows = session.execute(
        select(people.c.trigger, people.c.grp, func.count(), func.sum(case((funded, 1), else_=0)))
        .group_by(people.c.trigger, people.c.grp)
    ).all()  # fmt: skip
    tally: dict[str, dict[str, tuple[int, int]]] = {}
    for trigger, group, count, funded_count in rows:
        tally.setdefault(trigger, {})[group] = (int(count), int(funded_count or 0))
    return [
        lift_of(
            trigger,
            messaged=groups.get(MESSAGED, (0, 0))[0],
            messaged_funded=groups.get(MESSAGED, (0, 0))[1],
            holdout=groups.get(HOLDOUT, (0, 0))[0],
            holdout_funded=groups.get(HOLDOUT, (0, 0))[1],
        )
        for trigger, groups in sorted(tally.items())
    ]
