"""Backtest: replay the real weekly rate history over a book — who would have been messaged when.

The book is imported into a private in-memory database (the broker's own database is never
touched), the bundled Freddie Mac PMMS history is loaded beside it, and every enabled trigger
is evaluated at noon UTC on each survey week's date, by the rules `winback evaluate` applies.
The book is read once into columns and each week's rules run on them (`base`, `refinance`,
`dates`, `equity`): the same people, counts and figures as one evaluation per week, without
its 13,000 queries.

What a live system remembers between runs is simulated in memory, and only that (`guards`):
an occasion (a loan's 5-year milestone, a closing anniversary, an ARM reset) fires once, and
a rate-drop person is not fired again inside the cooldown unless the offer fell a further
`next_wave` points. Nobody is enrolled, so nobody is held back by a running track or by
replies. The book is today's export: consent, phone status and statuses are as they are now,
and a loan only counts from the date it reached its status (funded, fell out, or applied).
"""

from core.backtest.replay import enabled_triggers, private_session, run_backtest
from core.backtest.report import CHART_SOURCE, write_chart, write_firings_csv
from core.backtest.results import (
    REFINANCE,
    BacktestError,
    BacktestResult,
    BacktestWeek,
    Firing,
)
from core.backtest.tuning import Tuning, TuningRow, parse_tuning, tune

__all__ = [
    "CHART_SOURCE",
    "REFINANCE",
    "BacktestError",
    "BacktestResult",
    "BacktestWeek",
    "Firing",
    "Tuning",
    "TuningRow",
    "enabled_triggers",
    "parse_tuning",
    "private_session",
    "run_backtest",
    "tune",
    "write_chart",
    "write_firings_csv",
]
