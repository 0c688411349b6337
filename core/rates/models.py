"""Market rate observations (an index such as Freddie Mac PMMS, or the broker's rate sheet)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class MarketRate(Base):
    """One observation: the rate of a product on a date, from a source (held ones unused)."""

    __tablename__ = "market_rates"
    __table_args__ = (
        UniqueConstraint("on", "product", "source"),
        Index("ix_market_rates_product_on", "product", "on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    on: Mapped[date] = mapped_column(Date)
    product: Mapped[str] = mapped_column(String(4))  # "30y" or "15y"
    rate: Mapped[Decimal]
    source: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime]  # when it entered the index: recorded, or confirmed if held
    # Why a feed's jump is held out of the index until an operator confirms it; NULL = in use.
    held_reason: Mapped[str | None] = mapped_column(String(200))
