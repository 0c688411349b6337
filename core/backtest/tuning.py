"""Threshold tuning: one trigger's replay under several values of one of its settings.

`winback backtest --tune rate_drop.threshold_points=0.5,0.75,1.0` replays the same book over
the same weeks once per value (only that trigger, everything else as configured) and sets the
results side by side: how many different people it would have messaged, how many times it
would have fired, in how many weeks, and (for triggers that price a refinance) the average
monthly savings of the people it fired for. A lower threshold reaches more people with smaller
savings; the table shows where the trade is worth it before a manager changes the setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.backtest.replay import run_backtest
from core.backtest.results import BacktestError
from core.config import Config
from core.triggers.registry import TRIGGERS

MAX_VALUES = 8  # each value is a whole replay


@dataclass(frozen=True)
class Tuning:
    """The setting tuned (`trigger.key`) and the values to try, as typed."""

    trigger: str
    key: str
    values: tuple[str, ...]

    @property
    def setting(self) -> str:
        """'rate_drop.threshold_points'."""
        return f"{self.trigger}.{self.key}"


@dataclass(frozen=True)
class TuningRow:
    """What the trigger would have done over the range with the setting at one value."""

    value: str
    people: int
    firings: int
    weeks_firing: int
    mean_monthly_savings: Decimal | None  # of the firings that price a refinance

    def as_json(self) -> dict[str, Any]:
        """The row as JSON (savings in dollars, or null)."""
        savings = self.mean_monthly_savings
        return {
            "value": self.value, "people": self.people, "firings": self.firings,
            "weeks_firing": self.weeks_firing,
            "mean_monthly_savings": float(savings) if savings is not None else None,
        }  # fmt: skip


def parse_tuning(text: str, config: Config) -> Tuning:
    """'rate_drop.threshold_points=0.5,0.75' → a Tuning; BacktestError (one line) otherwise."""
    setting, equals, listed = text.partition("=")
    trigger, dot, key = setting.strip().partition(".")
    values = tuple(value.strip() for value in listed.split(",") if value.strip())
    if not equals or not dot or not values:
        raise BacktestError(
            f"--tune {text!r}: write TRIGGER.SETTING=V1,V2,… like rate_drop.threshold_points=0.5,1"
        )
    if trigger not in TRIGGERS:
        raise BacktestError(f"--tune: {trigger!r} is not a trigger: name {', '.join(TRIGGERS)}")
    known = type(getattr(config.triggers, trigger)).model_fields
    if key not in known:
        names = ", ".join(name for name in known if name != "enabled")
        raise BacktestError(f"--tune: {trigger} has no setting {key!r}: it has {names}")
    if len(values) > MAX_VALUES:
        raise BacktestError(f"--tune: at most {MAX_VALUES} values at once, not {len(values)}")
    return Tuning(trigger, key, values)


def with_setting(config: Config, tuning: Tuning, value: str) -> Config:
    """The configuration with the tuned setting at `value` (validated like the file's)."""
    raw = config.model_dump()
    raw["triggers"][tuning.trigger][tuning.key] = value
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise BacktestError(f"--tune {tuning.setting}={value}: {problem}") from None


def tune(
    *, book: Path, start: date, end: date, config: Config, now: datetime, tuning: Tuning,
    fmt: str = "auto",
) -> list[TuningRow]:  # fmt: skip
    """One replay per value of the tuned setting, only that trigger, in the order given."""
    rows = []
    for value in tuning.values:
        tried = with_setting(config, tuning, value)
        result = run_backtest(book=book, start=start, end=end, config=tried, now=now, fmt=fmt,
                              only=[tuning.trigger])  # fmt: skip
        firings = [f for f in result.firings if f.trigger == tuning.trigger]
        rows.append(TuningRow(
            value=value, people=len({f.contact_id for f in firings}), firings=len(firings),
            weeks_firing=len({f.week for f in firings}),
            mean_monthly_savings=_mean_savings(
                [f.monthly_savings_cents for f in firings if f.monthly_savings_cents is not None]
            ),
        ))  # fmt: skip
    return rows


def _mean_savings(cents: Sequence[int]) -> Decimal | None:
    if not cents:
        return None
    return (Decimal(sum(cents)) / len(cents) / 100).quantize(Decimal("0.01"))
