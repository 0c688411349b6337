"""The `/winback stats` answers: the funnel table with the holdout lift, and the chart's notes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.blocks.common import SECTION_LIMIT, View, checked, clip, escape
from bot.charts import lift_words, rate_words
from core.stats import UNASSIGNED, Funnel, FunnelRow, Lift

_STATS_COLUMNS = (
    ("enrolled", "enrolled"), ("sent", "sent"), ("delivered", "deliv."), ("opened", "opened"),
    ("clicked", "clicked"), ("replied", "replied"), ("claimed", "claimed"), ("funded", "funded"),
    ("opted_out", "opt-out"),
)  # fmt: skip
STATS_PERIODS = {"7d": "last 7 days", "30d": "last 30 days", "90d": "last 90 days",
                 "all": "all time"}  # fmt: skip
_STATS_RATES = (("reply", "reply"), ("claim", "claim"), ("funded", "funded"),
                ("opt_out", "opt-out"), ("open", "email open"), ("click", "click"))  # fmt: skip
# Why Slack would not take the file, in words the asker can act on.
_REFUSALS = {
    "not_in_channel": "I am not in this channel: `/invite @Winback` here, or ask me in a DM.",
    "channel_not_found": "I cannot post here (a DM between people?): ask me in a DM or a "
    "channel I am in.",
    "missing_scope": "the Slack app lacks the `files:write` scope: reinstall it from manifest.yml.",
}


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text))])


def _group_label(row: FunnelRow, by: str) -> str:
    if by == "lo":
        return row.name or ("No loan officer" if row.group == UNASSIGNED else row.group)
    return row.group


def _table_line(label: str, cells: Iterable[str]) -> str:
    label = label if len(label) <= 18 else label[:17] + "…"
    return f"{label:<18}" + "".join(f"{cell:>9}" for cell in cells)


def period_words(period: str) -> str:
    """'last 30 days' for 30d, 'all time' for all."""
    return STATS_PERIODS.get(period, period)


def lift_line(lifts: Sequence[Lift]) -> str:
    """One short line: per trigger, the lift with its interval, or 'not enough data yet'."""
    if not lifts:
        return "*Did outreach cause it?* No batch was approved in this period to compare."
    parts = []
    for lift in lifts:
        if lift.lift is None:
            parts.append(f"{lift.trigger}: not enough data yet")
            continue
        rates = (f"messaged {rate_words(lift.messaged_rate)} of {lift.messaged:,} vs held out "
                 f"{rate_words(lift.holdout_rate)} of {lift.holdout:,}")  # fmt: skip
        parts.append(f"{lift.trigger}: {lift_words(lift)}, {rates}")
    return "*Did outreach cause it?* Funded, " + " · ".join(parts)


def stats_view(report: Funnel, period: str) -> View:
    """The funnel as a table (one row per group, then the totals), the totals' rates, the lift."""
    heading = f"Funnel · {period_words(period)} · by {report.by}"
    blocks: list[Block] = [HeaderBlock(text=clip(heading, 150))]
    if not report.rows:
        blocks.append(_section("Nothing happened in this period."))
        if report.lift:
            blocks.append(_context(lift_line(report.lift)))
        return checked(f"{heading}: nothing happened", blocks)
    header = _table_line(report.by, (title for _, title in _STATS_COLUMNS))
    rows = [
        _table_line(_group_label(row, report.by), (f"{row.counts[c]:,}" for c, _ in _STATS_COLUMNS))
        for row in report.rows
    ]
    rows.append(_table_line("total", (f"{report.totals.counts[c]:,}" for c, _ in _STATS_COLUMNS)))
    per_block = max(1, (SECTION_LIMIT - 8) // (len(header) + 1) - 1)
    for start in range(0, len(rows), per_block):
        table = "\n".join([header, *rows[start : start + per_block]])
        blocks.append(_section(f"```\n{escape(table)}\n```"))
    rates = report.totals.rates()
    shown = " · ".join(f"{words} {rate_words(rates[key])}" for key, words in _STATS_RATES)
    totals = report.totals
    by_rule = ", ".join(f"{rule} {n:,}" for rule, n in sorted(totals.suppressed_by_rule.items()))
    suppressed = f"suppressed {totals.counts['suppressed']:,}" + (
        f" ({by_rule})" if by_rule else ""
    )
    volume = f" · funded volume ${totals.funded_volume:,.0f}" if totals.funded_volume else ""
    blocks.append(
        _context(f"Rates: {shown}. Failed {totals.counts['failed']:,} · {suppressed}{volume}.")
    )
    blocks.append(_context(lift_line(report.lift)))
    summary = ", ".join(f"{title} {totals.counts[c]:,}" for c, title in _STATS_COLUMNS)
    return checked(f"{heading}: {summary}", blocks)


def chart_comment(report: Funnel, period: str, user: str) -> str:
    """The message the chart is posted with in the channel."""
    return f"Winback funnel · {period_words(period)} · by {report.by} (asked by <@{user}>)"


def chart_posted_view(channel: str, filename: str) -> View:
    """The ephemeral answer once the chart is in the channel."""
    text = f":bar_chart: The funnel chart is posted in <#{channel}> (`{filename}`)."
    return checked(text, [_section(text)])


def chart_refused_view(error: str) -> View:
    """The ephemeral answer when Slack would not take the file (nothing was posted)."""
    why = _REFUSALS.get(error, f"Slack answered `{escape(error)}`.")
    text = f"I could not post the funnel chart: {why} `/winback stats` shows the numbers."
    return checked(text, [_section(text)])


def chart_saved_view(path: Path) -> View:
    """The answer when Slack is not set up for files (the sandbox): where the PNG was saved."""
    text = f":bar_chart: Slack is not set up, so the funnel chart is saved at `{path}`."
    return checked(text, [_section(text)])
