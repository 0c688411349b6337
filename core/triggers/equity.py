"""Equity triggers: conventional loans that can drop PMI, FHA loans that can leave MIP behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Row, exists, not_

from core.batches.models import BatchMember
from core.book.models import FUNDED, Loan
from core.config import LtvConfig
from core.loanmath import estimated_ltv, estimated_value, payments_made, remaining_balance
from core.loanmath_fast import balances
from core.triggers.base import Candidate, TriggerContext, loan_query, standard_filters

_CENTS = Decimal(100)
_SLACK = timedelta(days=62)
_LTV_MARGIN = 0.5  # percentage points of float error the exact check absorbs


class _EquityTrigger:
    """Shared: estimated LTV (amortized balance / appreciated value) at or below a ceiling."""

    name = ""
    segment = ""
    program = ""
    original_ltv_above: Decimal | None = None

    def settings(self, ctx: TriggerContext) -> LtvConfig:
        """This trigger's configuration."""
        return getattr(ctx.config.triggers, self.name)

    def candidates(self, ctx: TriggerContext, *, for_segment: bool) -> Iterator[Candidate]:
        """Loans of the program whose estimated LTV today is at or below the ceiling."""
        ceiling = self.settings(ctx).max_ltv_percent
        filters = [
            Loan.status == FUNDED,
            Loan.program == self.program,
            Loan.property_value_cents > 0,
            Loan.loan_amount_cents > 0,
            Loan.note_rate.is_not(None),
            Loan.funded_date <= ctx.today,  # a backtest at a past date sees only older loans
        ]
        if not for_segment:
            # The occasion is once per loan: loans already in a live batch need no more math.
            filters.append(
                not_(
                    exists().where(
                        BatchMember.contact_id == Loan.contact_id,
                        BatchMember.trigger == self.name,
                        BatchMember.loan_id == Loan.id,
                        BatchMember.live.is_(True),
                    )
                )
            )
        if self.original_ltv_above is not None:  # only loans that started with mortgage insurance
            filters.append(
                Loan.loan_amount_cents * 100 > Loan.property_value_cents * self.original_ltv_above
            )
        query = loan_query(
            Loan.id,
            Loan.contact_id,
            Loan.loan_amount_cents,
            Loan.property_value_cents,
            Loan.note_rate,
            Loan.term_months,
            Loan.first_payment_date,
            Loan.funded_date,
        ).where(
            *filters,
            *standard_filters(
                self.name, newer_than=Loan.funded_date, today=ctx.today, for_segment=for_segment
            ),
        )
        rows = ctx.session.execute(query).all()
        if not rows:
            return
        appreciation = ctx.config.math.annual_appreciation_percent
        paid = [
            payments_made(
                first_payment_date=row.first_payment_date or (row.funded_date + _SLACK),
                on=ctx.today,
            )
            for row in rows
        ]
        years = np.array([(ctx.today - row.funded_date).days / 365.25 for row in rows])
        owed = balances(
            np.array([row.loan_amount_cents / 100 for row in rows], dtype=float),
            np.array([float(row.note_rate) for row in rows]),
            np.array([float(row.term_months or 360) for row in rows]),
            np.array(paid, dtype=float),
        )
        worth = np.array([row.property_value_cents / 100 for row in rows], dtype=float) * (
            (1.0 + float(appreciation) / 100.0) ** years
        )
        estimates = (owed / worth * 100.0).tolist()
        limit = float(ceiling)
        for row, made, estimate in zip(rows, paid, estimates, strict=True):
            # The float estimate decides far from the ceiling; near it, and for every batch
            # member's snapshot, the exact Decimal math does.
            if estimate > limit + _LTV_MARGIN:
                continue
            if for_segment and estimate < limit - _LTV_MARGIN:
                yield self._estimated(row, made, estimate)
                continue
            candidate = self._exact(ctx, row, made, ceiling, appreciation)
            if candidate is not None:
                yield candidate

    def _estimated(self, row: Row[Any], paid: int, estimate: float) -> Candidate:
        """A segment member clear of the ceiling, counted on the float estimate."""
        ltv = Decimal(str(round(estimate, 2)))
        return Candidate(
            contact_id=row.contact_id,
            loan_id=row.id,
            occasion=f"loan:{row.id}:{self.name}",
            snapshot={"estimated_ltv": str(ltv), "payments_made": paid, "estimated": True},
            rank=-ltv,
        )

    def _exact(
        self,
        ctx: TriggerContext,
        row: Row[Any],
        paid: int,
        ceiling: Decimal,
        appreciation: Decimal,
    ) -> Candidate | None:
        """The Decimal estimate of balance, value and LTV for one loan."""
        principal = Decimal(row.loan_amount_cents) / _CENTS
        term = row.term_months or 360
        balance = remaining_balance(
            principal=principal,
            annual_rate=row.note_rate,
            months=term,
            payments_made=min(paid, term),
        )
        years = Decimal((ctx.today - row.funded_date).days) / Decimal("365.25")
        value = estimated_value(
            original_value=Decimal(row.property_value_cents) / _CENTS,
            years=years,
            annual_appreciation=appreciation,
        )
        ltv = estimated_ltv(balance=balance, value=value)
        if ltv > ceiling:
            return None
        return Candidate(
            contact_id=row.contact_id,
            loan_id=row.id,
            occasion=f"loan:{row.id}:{self.name}",
            snapshot={
                "estimated_ltv": str(ltv),
                "estimated_balance": str(balance),
                "estimated_value": str(value),
                "appreciation_percent": str(appreciation),
                "payments_made": paid,
            },
            rank=-ltv,
        )


class PmiRemoval(_EquityTrigger):
    """Conventional loans that started above 80 % LTV and are now estimated at or below it."""

    name = "pmi_removal"
    segment = "pmi_removal"
    program = "conventional"
    original_ltv_above = Decimal(80)


class FhaMip(_EquityTrigger):
    """FHA loans whose estimated LTV allows a conventional refinance without mortgage insurance."""

    name = "fha_mip"
    segment = "fha_mip"
    program = "fha"
