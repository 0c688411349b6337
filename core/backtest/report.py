"""What a replay is shown as: a PNG of rate against refinance-eligible people, and a CSV."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from core.backtest.results import REFINANCE, BacktestResult, number

CHART_SOURCE = "Source: Freddie Mac PMMS via FRED"
_CENTS = Decimal(100)


def write_chart(result: BacktestResult, path: Path) -> None:
    """A PNG: the 30-year PMMS rate (line, left) and the weekly refinance-eligible count (bars)."""
    # Imported here: matplotlib costs a noticeable start-up time and only --chart needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    weeks = [week.week for week in result.weeks]
    figure = Figure(figsize=(11, 5.5), dpi=120)
    FigureCanvasAgg(figure)
    rates_axis = figure.add_subplot()
    people_axis = rates_axis.twinx()
    # Bars behind the line: the rate is what the eye should follow first.
    rates_axis.set_zorder(people_axis.get_zorder() + 1)
    rates_axis.patch.set_visible(False)
    people_axis.bar(
        weeks,
        [week.eligible.get(REFINANCE, 0) for week in result.weeks],
        width=7 if len(weeks) < 300 else 8,
        color="#7fa7d8",
        alpha=0.7,
        label="refinance-eligible people (weekly)",
    )
    rates_axis.plot(
        weeks,
        [number(week.rate_30y) for week in result.weeks],
        color="#b22222",
        linewidth=1.8,
        label="30-year fixed, PMMS average (%)",
    )
    rates_axis.set_ylabel("30-year rate (%)")
    people_axis.set_ylabel("refinance-eligible people")
    people_axis.set_ylim(bottom=0)
    locator = AutoDateLocator()
    rates_axis.xaxis.set_major_locator(locator)
    rates_axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    rates_axis.grid(axis="y", alpha=0.3)
    handles = [
        *rates_axis.get_legend_handles_labels()[0],
        *people_axis.get_legend_handles_labels()[0],
    ]
    rates_axis.legend(handles=handles, loc="upper left", fontsize=9)
    rates_axis.set_title(
        f"Backtest of {Path(result.book).name}: 30-year rate and refinance-eligible people, "
        f"{result.start.isoformat()} to {result.end.isoformat()}"
    )
    figure.text(0.01, 0.01, CHART_SOURCE, fontsize=8, color="#555555")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path, format="png")


def write_firings_csv(result: BacktestResult, path: Path) -> int:
    """Who would have been messaged when, one row per firing (by loan number); the row count."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["week", "trigger", "loan_number", "occasion", "offer_rate", "monthly_savings"]
        )
        for firing in result.firings:
            savings = firing.monthly_savings_cents
            writer.writerow(
                [
                    firing.week.isoformat(),
                    firing.trigger,
                    result.loan_numbers.get(firing.loan_id, ""),
                    firing.occasion,
                    "" if firing.offer_rate is None else f"{firing.offer_rate:f}",
                    "" if savings is None else f"{Decimal(savings) / _CENTS:.2f}",
                ]
            )
    return len(result.firings)
