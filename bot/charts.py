"""Pictures of the funnel: one PNG with the funnel by group and the holdout lift per trigger.

Pure functions: a core.stats Funnel in, PNG bytes (or words) out, so `winback stats --chart`
and `/winback stats chart` draw the same picture and say the lift in the same words.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Any

from core.stats import UNASSIGNED, Funnel, FunnelRow, Lift

STAGES = (("sent", "sent"), ("replied", "replied"), ("claimed", "claimed"), ("funded", "funded"))
STAGE_COLOURS = ("#9db9dc", "#4f81bd", "#2e5e8e", "#1b7f3b")
MESSAGED_COLOUR, HOLDOUT_COLOUR = "#4f81bd", "#a6a6a6"
MAX_GROUPS = 15  # more bars than this are unreadable; the rest are named in a footnote
_Z95 = NormalDist().inv_cdf(0.975)


def period_text(report: Funnel) -> str:
    """'since 2026-08-25 (30d) to 2026-09-24', or 'all time to 2026-09-24'."""
    until = report.until.date().isoformat()
    if report.since is None:
        return f"all time to {until}"
    start = report.since.date().isoformat()
    asked = f" ({report.period})" if report.period and report.period != start else ""
    return f"since {start}{asked} to {until}"


def _tenths(fraction: float) -> Decimal:
    # From core's decimal text, half up: 0.0465 is 4.7 points, not float's 4.6499… -> 4.6.
    return (Decimal(str(fraction)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def points(value: float) -> str:
    """A difference of two rates in percentage points: 0.15 -> '+15.0'."""
    return f"{_tenths(value):+}"


def rate_words(rate: float | None) -> str:
    """0.2 -> '20.0 %'; '–' when there is nobody to divide by."""
    return "–" if rate is None else f"{_tenths(rate)} %"


def lift_words(lift: Lift) -> str:
    """'lift +15.0 points (95 % interval +4.7 to +25.3)', or core's 'not enough data yet (…)'."""
    if lift.lift is None or lift.low is None or lift.high is None:
        return lift.note or "not enough data yet"
    return (
        f"lift {points(lift.lift)} points (95 % interval {points(lift.low)} to {points(lift.high)})"
    )


def group_label(row: FunnelRow) -> str:
    """A loan officer by name (else the email), a segment or trigger by its name."""
    if row.group == UNASSIGNED:
        return "no loan officer" if row.name is not None else row.group
    return row.name or row.group


def rate_interval(funded: int, people: int) -> tuple[float, float] | None:
    """A funded rate's own 95 % interval (Wilson score: it stays inside 0–100 % at low counts)."""
    if people <= 0:
        return None
    p, z2 = funded / people, _Z95 * _Z95
    centre = (p + z2 / (2 * people)) / (1 + z2 / people)
    half = _Z95 * math.sqrt(p * (1 - p) / people + z2 / (4 * people * people)) / (1 + z2 / people)
    return max(0.0, centre - half), min(1.0, centre + half)


def chart_filename(report: Funnel) -> str:
    """'winback-funnel-30d-by-segment-20260924-180000.png': what, and as of when."""
    period = re.sub(
        r"[^A-Za-z0-9-]+",
        "-",
        report.period or ("all" if report.since is None else report.since.date().isoformat()),
    )
    return f"winback-funnel-{period}-by-{report.by}-{report.until:%Y%m%d-%H%M%S}.png"


def funnel_png(report: Funnel) -> bytes:
    """The funnel by group (left) and the funded rate messaged vs held out per trigger (right)."""
    # Imported here: matplotlib costs a noticeable start-up time and only a chart needs it.
    # Figure with the Agg canvas, never pyplot: no global state, safe in the web's threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = report.rows[:MAX_GROUPS]
    rows_tall = max(len(groups), len(report.lift), 2)
    figure = Figure(figsize=(14, 2.4 + 0.85 * rows_tall), dpi=110)
    FigureCanvasAgg(figure)
    funnel_axis, lift_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    _draw_funnel(funnel_axis, groups, by=report.by)
    _draw_lift(lift_axis, report.lift)
    figure.suptitle(f"Winback funnel by {report.by}, {period_text(report)}", fontsize=14)
    hidden = len(report.rows) - len(groups)
    if hidden > 0:
        shown = ", ".join(group_label(row) for row in report.rows[MAX_GROUPS:][:5])
        more = f" and {hidden - 5} more" if hidden > 5 else ""
        figure.text(0.01, 0.01, f"Not drawn: {shown}{more}", fontsize=8, color="#555555")
    figure.tight_layout(rect=(0, 0.03, 1, 0.95))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw_funnel(axis: Any, groups: Sequence[FunnelRow], *, by: str) -> None:
    """Horizontal bars, one cluster per group: sent, replied, claimed, funded."""
    axis.set_title("Sent → replied → claimed → funded", fontsize=11)
    if not groups:
        _empty(axis, "Nothing happened in this period.")
        return
    height = 0.8 / len(STAGES)
    largest = max(row.counts["sent"] for row in groups) or 1
    for place, ((column, word), colour) in enumerate(zip(STAGES, STAGE_COLOURS, strict=True)):
        ys = [index + (place - (len(STAGES) - 1) / 2) * height for index in range(len(groups))]
        counts = [row.counts[column] for row in groups]
        bars = axis.barh(ys, counts, height=height * 0.95, color=colour, label=word)
        axis.bar_label(bars, labels=[f"{n:,}" for n in counts], padding=3, fontsize=8)
    axis.set_yticks(range(len(groups)), [group_label(row) for row in groups], fontsize=10)
    axis.invert_yaxis()  # the first group on top, as in the table
    axis.set_xlim(0, largest * 1.15)
    axis.set_xlabel("people (sent: messages)")
    axis.set_ylabel(by)
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="best", fontsize=9)


def _draw_lift(axis: Any, lifts: Sequence[Lift]) -> None:
    """Per trigger: the funded rate of the messaged and of the held-out people, each with its
    95 % interval, and the lift (or why there is none yet) written above the pair."""
    from matplotlib.patches import Patch

    axis.set_title("Did outreach cause it? Funded rate, messaged vs held out", fontsize=11)
    if not lifts:
        _empty(axis, "No batch approved in this period:\nnothing to compare yet.")
        return
    top = 0.0
    for index, lift in enumerate(lifts):
        pairs = (
            (-0.17, lift.messaged_rate, lift.messaged_funded, lift.messaged, MESSAGED_COLOUR),
            (0.17, lift.holdout_rate, lift.holdout_funded, lift.holdout, HOLDOUT_COLOUR),
        )
        for offset, rate, funded, people, colour in pairs:
            interval = rate_interval(funded, people)
            if rate is None or interval is None:
                continue
            error = [[(rate - interval[0]) * 100], [(interval[1] - rate) * 100]]
            axis.barh(index + offset, rate * 100, height=0.32, color=colour, xerr=error,
                      capsize=4, error_kw={"elinewidth": 1, "ecolor": "#333333"})  # fmt: skip
            axis.text(interval[1] * 100, index + offset, f"  {rate * 100:.1f} % of {people:,}",
                      va="center", fontsize=8)  # fmt: skip
            top = max(top, interval[1] * 100)
        known = lift.lift is not None
        # x in axes coordinates (just inside the left edge), y in data: above the bar pair.
        axis.text(
            0.01,
            index - 0.42,
            lift_words(lift),
            transform=axis.get_yaxis_transform(),
            fontsize=8.5,
            style="normal" if known else "italic",
            color="#1b1b1b" if known else "#8a5a00",
        )
    axis.set_yticks(range(len(lifts)), [lift.trigger for lift in lifts], fontsize=10)
    axis.set_ylim(len(lifts) - 0.4, -0.65)  # first trigger on top, room for its lift line
    axis.set_xlim(0, max(top * 1.45, 5))
    axis.set_xlabel("funded within the attribution window (%); bars: 95 % interval")
    axis.grid(axis="x", alpha=0.3)
    keys = [Patch(color=MESSAGED_COLOUR, label="messaged"),
            Patch(color=HOLDOUT_COLOUR, label="held out")]  # fmt: skip
    axis.legend(handles=keys, loc="best", fontsize=9)


def _empty(axis: Any, words: str) -> None:
    axis.text(0.5, 0.5, words, ha="center", va="center", fontsize=12, color="#555555",
              transform=axis.transAxes)  # fmt: skip
    axis.set_xticks([])
    axis.set_yticks([])
