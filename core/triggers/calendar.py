"""Date-driven triggers: loan-age milestones, closing and fallout anniversaries, ARM resets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, extract, or_

from core.book.models import (
    APPROVED_NOT_ACCEPTED,
    DENIED,
    FUNDED,
    INCOMPLETE,
    WITHDRAWN,
    Loan,
)
from core.triggers.base import Candidate, TriggerContext, add_years, loan_query, standard_filters


def _years_between(start: date, end: date) -> int:
    years = end.year - start.year
    return years - 1 if (end.month, end.day) < (start.month, start.day) else years


class LoanAge:
    """Funded loans that reached a milestone age (default 3, 5 and 7 years) lately."""

    name = "loan_age"
    segment = "repeat_purchase"

    def candidates(self, ctx: TriggerContext, *, for_segment: bool) -> Iterator[Candidate]:
        """One candidate per person whose loan turned N years old in the last window."""
        settings = ctx.config.triggers.loan_age
        windows = []
        for years in settings.milestone_years:
            # funded_date + years in (today - window, today]  <=>  funded in this range:
            latest = add_years(ctx.today, -years)
            earliest = add_years(ctx.today - timedelta(days=settings.window_days - 1), -years)
            windows.append(Loan.funded_date.between(earliest, latest))
        query = loan_query(Loan.id, Loan.contact_id, Loan.funded_date).where(
            Loan.status == FUNDED,
            or_(*windows),
            *standard_filters(
                self.name, newer_than=Loan.funded_date, today=ctx.today, for_segment=for_segment
            ),
        )
        for row in ctx.session.execute(query):
            years = _years_between(row.funded_date, ctx.today)
            if years not in settings.milestone_years:
                continue
            yield Candidate(
                contact_id=row.contact_id,
                loan_id=row.id,
                occasion=f"loan:{row.id}:{years}y",
                snapshot={"loan_age_years": years, "funded_date": row.funded_date.isoformat()},
                rank=Decimal(-years),
            )


def _month_day_clause(days: list[date]):  # type: ignore[no-untyped-def]
    """Funded on one of these calendar days (month, day), in any year."""
    by_month: dict[int, set[int]] = {}
    for day in days:
        by_month.setdefault(day.month, set()).add(day.day)
        if day.month == 2 and day.day == 28 and (day + timedelta(days=1)).month == 3:
            by_month[2].add(29)  # Feb 29 closings celebrate on Feb 28 in common years
    return or_(
        *(
            and_(
                extract("month", Loan.funded_date) == month,
                extract("day", Loan.funded_date).in_(sorted(day_set)),
            )
            for month, day_set in by_month.items()
        )
    )


class ClosingAnniversary:
    """Funded loans whose closing anniversary falls in the next N days (default 30)."""

    name = "closing_anniversary"
    segment = "anniversary"

    def candidates(self, ctx: TriggerContext, *, for_segment: bool) -> Iterator[Candidate]:
        """One candidate per person with a closing anniversary coming up."""
        lookahead = ctx.config.triggers.closing_anniversary.lookahead_days
        days = [ctx.today + timedelta(days=offset) for offset in range(lookahead + 1)]
        query = loan_query(Loan.id, Loan.contact_id, Loan.funded_date).where(
            Loan.status == FUNDED,
            Loan.funded_date <= add_years(ctx.today, -1) + timedelta(days=lookahead),
            _month_day_clause(days),
            *standard_filters(
                self.name, newer_than=Loan.funded_date, today=ctx.today, for_segment=for_segment
            ),
        )
        for row in ctx.session.execute(query):
            anniversary = next(
                (
                    day
                    for day in days
                    if add_years(row.funded_date, day.year - row.funded_date.year) == day
                ),
                None,
            )
            if anniversary is None or anniversary.year <= row.funded_date.year:
                continue
            years = anniversary.year - row.funded_date.year
            yield Candidate(
                contact_id=row.contact_id,
                loan_id=row.id,
                occasion=f"loan:{row.id}:anniversary:{anniversary.year}",
                snapshot={
                    "anniversary_years": years,
                    "anniversary_date": anniversary.isoformat(),
                    "funded_date": row.funded_date.isoformat(),
                },
                rank=Decimal(-(anniversary - ctx.today).days),
            )


FALLOUTS = (WITHDRAWN, INCOMPLETE, DENIED, APPROVED_NOT_ACCEPTED)


class FalloutAnniversary:
    """Applications that stalled, 90 days, 6 months and a year after they fell out."""

    name = "fallout_anniversary"
    segment = "stalled"

    def candidates(self, ctx: TriggerContext, *, for_segment: bool) -> Iterator[Candidate]:
        """As a trigger: at each offset. As the `stalled` segment: every stalled application."""
        settings = ctx.config.triggers.fallout_anniversary
        cooled = ctx.today - timedelta(days=settings.denied_cooling_days)
        denied_ok = or_(Loan.status != DENIED, Loan.fallout_date <= cooled)
        filters = [Loan.status.in_(FALLOUTS), Loan.fallout_date <= ctx.today, denied_ok]
        if not for_segment:
            windows = [
                Loan.fallout_date.between(
                    ctx.today - timedelta(days=offset + settings.window_days - 1),
                    ctx.today - timedelta(days=offset),
                )
                for offset in settings.offsets_days
            ]
            filters.append(or_(*windows))
        query = loan_query(Loan.id, Loan.contact_id, Loan.fallout_date, Loan.status).where(
            *filters,
            *standard_filters(
                self.name, newer_than=Loan.fallout_date, today=ctx.today, for_segment=for_segment
            ),
        )
        for row in ctx.session.execute(query):
            age = (ctx.today - row.fallout_date).days
            offset = max((days for days in settings.offsets_days if days <= age), default=0)
            yield Candidate(
                contact_id=row.contact_id,
                loan_id=row.id,
                occasion=f"loan:{row.id}:fallout:{offset}d",
                snapshot={
                    "fallout_date": row.fallout_date.isoformat(),
                    "status": row.status,
                    "fallout_days": age,
                    "fallout_months": round(age / 30.44),
                },
                rank=Decimal(-age),
            )


class ArmReset:
    """Adjustable-rate loans whose first adjustment comes within N days (default 180)."""

    name = "arm_reset"
    segment = "arm_reset"

    def candidates(self, ctx: TriggerContext, *, for_segment: bool) -> Iterator[Candidate]:
        """One candidate per person with an ARM adjusting soon."""
        within = ctx.config.triggers.arm_reset.within_days
        query = loan_query(Loan.id, Loan.contact_id, Loan.arm_first_adjustment_date).where(
            Loan.status == FUNDED,
            Loan.is_arm.is_(True),
            Loan.funded_date <= ctx.today,
            Loan.arm_first_adjustment_date.between(ctx.today, ctx.today + timedelta(days=within)),
            *standard_filters(
                self.name, newer_than=Loan.funded_date, today=ctx.today, for_segment=for_segment
            ),
        )
        for row in ctx.session.execute(query):
            reset = row.arm_first_adjustment_date
            yield Candidate(
                contact_id=row.contact_id,
                loan_id=row.id,
                occasion=f"loan:{row.id}:arm:{reset.isoformat()}",
                snapshot={
                    "arm_reset_date": reset.isoformat(),
                    "days_to_reset": (reset - ctx.today).days,
                },
                rank=Decimal(-(reset - ctx.today).days),
            )
