"""Each trigger's weekly rules over the book columns, by the live trigger's name."""

from __future__ import annotations

from collections.abc import Callable

from core.backtest.base import BookColumns, Qualifier
from core.backtest.dates import ArmReset, ClosingAnniversary, FalloutAnniversary, LoanAge
from core.backtest.equity import fha_mip, pmi_removal
from core.backtest.refinance import Refinance
from core.config import Config

QUALIFIERS: dict[str, Callable[[BookColumns, Config], Qualifier]] = {
    "rate_drop": Refinance,
    "loan_age": LoanAge,
    "closing_anniversary": ClosingAnniversary,
    "fallout_anniversary": FalloutAnniversary,
    "arm_reset": ArmReset,
    "pmi_removal": pmi_removal,
    "fha_mip": fha_mip,
}
