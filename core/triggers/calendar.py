"""Date-driven triggers: loan-age milestones, closing and fallout anniversaries, ARM resets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import case, or_

from core.book.models import (
    APPROVED_NOT_ACCEPTED,
    DENIED,
    FUNDED,
    INCOMPLETE,
    WITHDRAWN,
    Loan,
)
from core.triggers.base import (
    Candidate,
    Found,
    Rows,
    TriggerContext,
    add_years,
    loan_query,
)
from core.triggers.columns import (
    date_of,
    day_number,
    day_of,
    month_day,
    unindexed,
)

# "after": the day a newer funded loan would have to follow for the person to have come back.
_COLUMNS = ("loan_id", "contact_id", "day", "after")


def _found(
    columns: dict[str, np.ndarray],
    keep: np.ndarray,
    rank: np.ndarray,
    candidate: Callable[[int, int, date], Candidate],
) -> Found:
    """A Found over the kept rows; `candidate(contact_id, loan_id, day)` builds one."""
    kept = {name: values[keep] for name, values in columns.items()}

    def build(rows: Rows) -> list[Candidate]:
        people, loans, days = (
            kept[name][rows].tolist() for name in ("contact_id", "loan_id", "day")
        )
        return [
            candidate(person, loan, date_of(day))
            for person, loan, day in zip(people, loans, days, strict=True)
        ]

    return Found(kept["contact_id"], kept["loan_id"], rank[keep], build)


def _query(day: Any, after: Any) -> Any:
    """SELECT loan, person, the date the trigger is about and the one a newer loan follows."""
    return loan_query(Loan.id, Loan.contact_id, day_number(day), day_number(after))


def years_between(start: date, end: date) -> int:
    """Whole years from `start` to `end` (a birthday-style count)."""
    years = end.year - start.year
    return years - 1 if (end.month, end.day) < (start.month, start.day) else years


class LoanAge:
    """Funded loans that reached a milestone age (default 3, 5 and 7 years) lately."""

    name = "loan_age"
    segment = "repeat_purchase"

    def find(self, ctx: TriggerContext, *, for_segment: bool) -> Found:
        """Loans that turned N years old in the last window."""
        settings = ctx.config.triggers.loan_age
        windows = []
        for years in settings.milestone_years:
            # funded_date + years in (today - window, today]  <=>  funded in this range:
            latest = add_years(ctx.today, -years)
            earliest = add_years(ctx.today - timedelta(days=settings.window_days - 1), -years)
            windows.append(Loan.funded_date.between(earliest, latest))
        query = _query(Loan.funded_date, Loan.funded_date).where(
            Loan.status == FUNDED, or_(*windows)
        )
        columns = ctx.fetch(query, _COLUMNS, after="after", for_segment=for_segment)
        ages = np.array(
            [years_between(date_of(day), ctx.today) for day in columns["day"].tolist()],
            dtype=np.int64,
        )
        keep = np.flatnonzero(np.isin(ages, settings.milestone_years))

        def candidate(contact_id: int, loan_id: int, funded: date) -> Candidate:
            years = years_between(funded, ctx.today)
            return Candidate(
                contact_id=contact_id,
                loan_id=loan_id,
                occasion=f"loan:{loan_id}:{years}y",
                snapshot={"loan_age_years": years, "funded_date": funded.isoformat()},
                rank=Decimal(-years),
            )

        return _found(columns, keep, -ages.astype(float), candidate)


def _month_day_clause(days: list[date]) -> Any:
    """Funded on one of these calendar days (month, day), in any year."""
    wanted = {day.month * 100 + day.day for day in days}
    if any(
        day.month == 2 and day.day == 28 and (day + timedelta(days=1)).month == 3 for day in days
    ):
        wanted.add(229)  # Feb 29 closings celebrate on Feb 28 in common years
    return month_day(Loan.funded_date).in_(sorted(wanted))


def _month_day(days: np.ndarray) -> np.ndarray:
    """month * 100 + day of each day number."""
    as_dates = days.astype("datetime64[D]")
    months = as_dates.astype("datetime64[M]")
    month = (months - as_dates.astype("datetime64[Y]").astype("datetime64[M]")).astype(np.int64)
    day = (as_dates - months.astype("datetime64[D]")).astype(np.int64)
    return (month + 1) * 100 + day + 1


class ClosingAnniversary:
    """Funded loans whose closing anniversary falls in the next N days (default 30)."""

    name = "closing_anniversary"
    segment = "anniversary"

    def find(self, ctx: TriggerContext, *, for_segment: bool) -> Found:
        """Loans with a closing anniversary coming up."""
        lookahead = ctx.config.triggers.closing_anniversary.lookahead_days
        days = [ctx.today + timedelta(days=offset) for offset in range(lookahead + 1)]
        query = _query(Loan.funded_date, Loan.funded_date).where(
            unindexed(Loan.status) == FUNDED,
            unindexed(Loan.funded_date) <= add_years(ctx.today, -1) + timedelta(days=lookahead),
            _month_day_clause(days),
        )
        columns = ctx.fetch(query, _COLUMNS, after="after", for_segment=for_segment)
        # Each calendar day in the window is the anniversary of one (month, day); a lookahead
        # of at most 180 days never holds a (month, day) twice.
        upcoming = np.full(1300, -1, dtype=np.int64)
        for day in days:
            upcoming[day.month * 100 + day.day] = day_of(day)
            if day.month == 2 and day.day == 28 and (day + timedelta(days=1)).month == 3:
                upcoming[229] = day_of(day)
        anniversary = upcoming[_month_day(columns["day"])]
        funded_year = columns["day"].astype("datetime64[D]").astype("datetime64[Y]")
        later_year = anniversary.astype("datetime64[D]").astype("datetime64[Y]") > funded_year
        keep = np.flatnonzero((anniversary >= 0) & later_year)

        def candidate(contact_id: int, loan_id: int, funded: date) -> Candidate:
            on = date_of(int(upcoming[funded.month * 100 + funded.day]))
            return Candidate(
                contact_id=contact_id,
                loan_id=loan_id,
                occasion=f"loan:{loan_id}:anniversary:{on.year}",
                snapshot={
                    "anniversary_years": on.year - funded.year,
                    "anniversary_date": on.isoformat(),
                    "funded_date": funded.isoformat(),
                },
                rank=Decimal(-(on - ctx.today).days),
            )

        days_away = (anniversary - day_of(ctx.today)).astype(float)
        return _found(columns, keep, -days_away, candidate)


FALLOUTS = (WITHDRAWN, INCOMPLETE, DENIED, APPROVED_NOT_ACCEPTED)


class FalloutAnniversary:
    """Applications that stalled, 90 days, 6 months and a year after they fell out."""

    name = "fallout_anniversary"
    segment = "stalled"

    def find(self, ctx: TriggerContext, *, for_segment: bool) -> Found:
        """As a trigger: at each offset. As the `stalled` segment: every stalled application."""
        settings = ctx.config.triggers.fallout_anniversary
        cooled = ctx.today - timedelta(days=settings.denied_cooling_days)
        denied_ok = or_(Loan.status != DENIED, Loan.fallout_date <= cooled)
        # The whole stalled segment is a large share of the book: read the table through.
        status, fell_out = (Loan.status, Loan.fallout_date)
        if for_segment:
            status, fell_out = unindexed(status), unindexed(fell_out)
        filters = [status.in_(FALLOUTS), fell_out <= ctx.today, denied_ok]
        if not for_segment:
            windows = [
                Loan.fallout_date.between(
                    ctx.today - timedelta(days=offset + settings.window_days - 1),
                    ctx.today - timedelta(days=offset),
                )
                for offset in settings.offsets_days
            ]
            filters.append(or_(*windows))
        code = case(*((Loan.status == name, code) for code, name in enumerate(FALLOUTS)))
        query = _query(Loan.fallout_date, Loan.fallout_date)
        columns = ctx.fetch(
            query.add_columns(code).where(*filters),
            (*_COLUMNS, "status"),
            after="after",
            for_segment=for_segment,
        )
        ages = day_of(ctx.today) - columns["day"]
        statuses = dict(zip(columns["loan_id"].tolist(), columns["status"].tolist(), strict=True))
        offsets = sorted(settings.offsets_days)

        def candidate(contact_id: int, loan_id: int, fell_out: date) -> Candidate:
            age = (ctx.today - fell_out).days
            offset = max((days for days in offsets if days <= age), default=0)
            return Candidate(
                contact_id=contact_id,
                loan_id=loan_id,
                occasion=f"loan:{loan_id}:fallout:{offset}d",
                snapshot={
                    "fallout_date": fell_out.isoformat(),
                    "status": FALLOUTS[statuses[loan_id]],
                    "fallout_days": age,
                    "fallout_months": round(age / 30.44),
                },
                rank=Decimal(-age),
            )

        return _found(columns, np.arange(len(ages)), -ages.astype(float), candidate)


class ArmReset:
    """Adjustable-rate loans whose first adjustment comes within N days (default 180)."""

    name = "arm_reset"
    segment = "arm_reset"

    def find(self, ctx: TriggerContext, *, for_segment: bool) -> Found:
        """Loans with an ARM adjusting soon."""
        within = ctx.config.triggers.arm_reset.within_days
        query = _query(Loan.arm_first_adjustment_date, Loan.funded_date).where(
            unindexed(Loan.status) == FUNDED,
            Loan.is_arm.is_(True),
            unindexed(Loan.funded_date) <= ctx.today,
            Loan.arm_first_adjustment_date.between(ctx.today, ctx.today + timedelta(days=within)),
        )
        columns = ctx.fetch(query, _COLUMNS, after="after", for_segment=for_segment)
        days_to_reset = columns["day"] - day_of(ctx.today)

        def candidate(contact_id: int, loan_id: int, reset: date) -> Candidate:
            return Candidate(
                contact_id=contact_id,
                loan_id=loan_id,
                occasion=f"loan:{loan_id}:arm:{reset.isoformat()}",
                snapshot={
                    "arm_reset_date": reset.isoformat(),
                    "days_to_reset": (reset - ctx.today).days,
                },
                rank=Decimal(-(reset - ctx.today).days),
            )

        return _found(
            columns, np.arange(len(days_to_reset)), -days_to_reset.astype(float), candidate
        )
