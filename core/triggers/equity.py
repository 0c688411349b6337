"""Equity triggers: conventional loans that can drop PMI, FHA loans that can leave MIP behind.

The estimated LTV is the amortized balance over the appreciated original value. numpy
estimates it for every loan of the program at once; a loan within half a point of the
ceiling is estimated again exactly (core.loanmath) before it is kept or dropped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import exists, func, not_

from core.batches.models import BatchMember
from core.book.models import FUNDED, Loan
from core.config import LtvConfig
from core.loanmath import estimated_ltv, estimated_value, remaining_balance
from core.loanmath_fast import balances, estimated_ltvs, payments_made_on
from core.triggers.base import (
    Candidate,
    Found,
    Rows,
    TriggerContext,
    first_payment_day,
    loan_query,
)
from core.triggers.columns import (
    RATE_UNITS,
    date_of,
    day_number,
    day_of,
    rate_units,
    unindexed,
)

_CENTS = Decimal(100)
# Estimates agree with the exact LTV to the hundredth but for rounding ties: closer than this
# to the ceiling, the exact math decides.
_LTV_MARGIN = 0.05
_COLUMNS = (
    "loan_id",
    "contact_id",
    "amount_cents",
    "value_cents",
    "note_rate",
    "term_months",
    "first_payment",
    "funded",
)


class _EquityTrigger:
    """Shared: estimated LTV (amortized balance / appreciated value) at or below a ceiling."""

    name = ""
    segment = ""
    program = ""
    original_ltv_above: int | None = None  # percent

    def settings(self, ctx: TriggerContext) -> LtvConfig:
        """This trigger's configuration."""
        return getattr(ctx.config.triggers, self.name)

    def find(self, ctx: TriggerContext, *, for_segment: bool) -> Found:
        """Loans of the program whose estimated LTV today is at or below the ceiling."""
        columns = ctx.fetch(
            self._query(ctx, for_segment), _COLUMNS, after="funded", for_segment=for_segment
        )
        appreciation = ctx.config.math.annual_appreciation_percent
        today = day_of(ctx.today)
        paid = payments_made_on(columns["first_payment"], today)
        months = np.where(columns["term_months"] > 0, columns["term_months"], 360)
        owed = balances(
            columns["amount_cents"] / 100.0,
            columns["note_rate"] / RATE_UNITS,
            months.astype(float),
            np.minimum(paid, months).astype(float),
        )
        years = (today - columns["funded"]) / 365.25
        worth, ltv = estimated_ltvs(
            owed, columns["value_cents"] / 100.0, years, float(appreciation)
        )
        ceiling = self.settings(ctx).max_ltv_percent
        # The float estimate decides far from the ceiling; near it, the exact Decimal math.
        exact: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
        for row in np.flatnonzero(np.abs(ltv - float(ceiling)) <= _LTV_MARGIN).tolist():
            exact[row] = self._exact(ctx, columns, row, int(paid[row]))
            ltv[row] = float(exact[row][2])
        keep = np.flatnonzero(ltv <= float(ceiling))
        kept = {name: values[keep] for name, values in columns.items()}

        def build(rows: Rows) -> list[Candidate]:
            candidates = []
            for row in keep[rows].tolist():
                balance, value, estimate = exact.get(row) or (
                    Decimal(f"{owed[row]:.2f}"),
                    Decimal(f"{worth[row]:.2f}"),
                    Decimal(f"{ltv[row]:.2f}"),
                )
                candidates.append(
                    Candidate(
                        contact_id=int(columns["contact_id"][row]),
                        loan_id=int(columns["loan_id"][row]),
                        occasion=f"loan:{int(columns['loan_id'][row])}:{self.name}",
                        snapshot={
                            "estimated_ltv": str(estimate),
                            "estimated_balance": str(balance),
                            "estimated_value": str(value),
                            "appreciation_percent": str(appreciation),
                            "payments_made": int(paid[row]),
                        },
                        rank=-estimate,
                    )
                )
            return candidates

        return Found(kept["contact_id"], kept["loan_id"], -ltv[keep], build)

    def _query(self, ctx: TriggerContext, for_segment: bool) -> Any:
        filters = [
            unindexed(Loan.status) == FUNDED,
            Loan.program == self.program,
            Loan.property_value_cents > 0,
            Loan.loan_amount_cents > 0,
            Loan.note_rate.is_not(None),
            unindexed(Loan.funded_date)
            <= ctx.today,  # a backtest at a past date sees only older loans
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
        return loan_query(
            Loan.id,
            Loan.contact_id,
            Loan.loan_amount_cents,
            Loan.property_value_cents,
            rate_units(Loan.note_rate),
            func.coalesce(Loan.term_months, 0),
            first_payment_day(),
            day_number(Loan.funded_date),
        ).where(
            *filters,
        )

    def _exact(
        self, ctx: TriggerContext, columns: dict[str, np.ndarray], row: int, paid: int
    ) -> tuple[Decimal, Decimal, Decimal]:
        """The Decimal estimate of balance, value and LTV for one loan."""
        term = int(columns["term_months"][row]) or 360
        balance = remaining_balance(
            principal=Decimal(int(columns["amount_cents"][row])) / _CENTS,
            annual_rate=Decimal(int(columns["note_rate"][row])).scaleb(-5),
            months=term,
            payments_made=min(paid, term),
        )
        years = Decimal((ctx.today - date_of(columns["funded"][row])).days) / Decimal("365.25")
        value = estimated_value(
            original_value=Decimal(int(columns["value_cents"][row])) / _CENTS,
            years=years,
            annual_appreciation=ctx.config.math.annual_appreciation_percent,
        )
        return balance, value, estimated_ltv(balance=balance, value=value)


class PmiRemoval(_EquityTrigger):
    """Conventional loans that started above 80 % LTV and are now estimated at or below it."""

    name = "pmi_removal"
    segment = "pmi_removal"
    program = "conventional"
    original_ltv_above = 80


class FhaMip(_EquityTrigger):
    """FHA loans whose estimated LTV allows a conventional refinance without mortgage insurance."""

    name = "fha_mip"
    segment = "fha_mip"
    program = "fha"
