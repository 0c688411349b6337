"""What a batch is made of: a person a trigger found, for one occasion, with why."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """A person a trigger found, for one occasion, with why."""

    contact_id: int
    loan_id: int
    occasion: str
    snapshot: dict[str, Any]
    offer_rate: Decimal | None = None
    monthly_savings_cents: int | None = None
    rank: Decimal = Decimal(0)  # higher is better when a person has several qualifying loans
