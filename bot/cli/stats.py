"""`winback stats [--since 7d|30d|90d|all|DATE] [--by segment|trigger|lo] [--json]` (SPEC §4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from bot.cli.common import JsonOption, NowOption, app, fail, print_json, print_table, runtime
from core.stats import ACCEPTED, BY, COLUMNS, PERIODS, UNASSIGNED, Funnel, funnel, parse_since

HEADER = ("group", *(column.replace("_", " ") for column in COLUMNS))
RATES = (
    ("reply", "reply", "of people reached"),
    ("claim", "claimed", "of replies"),
    ("open", "open", "of emails"),
    ("click", "click", "of messages"),
    ("funded", "funded", "of people reached"),
    ("opt_out", "opted out", "of people reached"),
)


@app.command("stats")
def stats_command(
    since: Annotated[
        str, typer.Option("--since", help=f"The period: {ACCEPTED}.", metavar="PERIOD")
    ] = "30d",
    by: Annotated[
        str, typer.Option("--by", help="Group by segment, trigger or lo.", metavar="GROUPING")
    ] = "segment",
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """The funnel: enrolled, sent, delivered, opened, clicked, replied, claimed, funded…"""
    grouping = by.strip().lower()
    if grouping not in BY:
        fail(f"--by must be segment, trigger or lo, not {by.strip()[:40]!r}")
    rt = runtime(now)
    moment = rt.clock.now()
    try:
        start = parse_since(since, moment)
    except ValueError as exc:
        fail(f"--{exc}")  # core's messages begin with "since …"
    word = since.strip().lower()
    period = word if word == "all" or word in PERIODS else since.strip()
    with rt.sessions() as session:
        result = funnel(session, since=start, by=grouping, now=moment, period=period)
    if as_json:
        print_json(result.as_json())
        return
    print_funnel(result)


def print_funnel(result: Funnel) -> None:
    """The funnel as a table, the totals last, then the rates and what is counted apart."""
    typer.echo(f"Funnel {period_text(result)}, by {result.by}")
    if not result.rows:
        typer.echo("Nothing happened in this period.")
        return
    payload = result.as_json()
    labels = group_labels(payload["rows"])
    rows = [
        (label, *(str(row[column]) for column in COLUMNS))
        for label, row in zip(labels, payload["rows"], strict=True)
    ]
    totals = payload["totals"]
    rows.append(("total", *(str(totals[column]) for column in COLUMNS)))
    print_table(HEADER, rows, right=range(1, len(HEADER)))
    typer.echo("")
    for line in footer(totals):
        typer.echo(line)


def period_text(result: Funnel) -> str:
    """'since 2026-08-25 (30d) to 2026-09-24', or 'all time to 2026-09-24'."""
    until = result.until.date().isoformat()
    if result.since is None:
        return f"all time to {until}"
    start = result.since.date().isoformat()
    asked = f" ({result.period})" if result.period and result.period != start else ""
    return f"since {start}{asked} to {until}"


def group_labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Each row's group as people read it: a loan officer's name (with the email if two share
    it), a segment or trigger by its name."""
    names = [row.get("name") for row in rows]
    labels = []
    for row, name in zip(rows, names, strict=True):
        if row["group"] == UNASSIGNED or name is None:
            labels.append(row["group"])
        elif not name or names.count(name) > 1:
            labels.append(f"{name} <{row['group']}>".strip())
        else:
            labels.append(name)
    return labels


def footer(totals: dict[str, Any]) -> list[str]:
    """The rates of the totals, and what the columns leave out."""
    rates = totals["rates"]
    width = max(len(word) for _, word, _ in RATES)
    shown = [
        f"  {word.ljust(width)}  {percent(rates[key]).rjust(7)} {of}"
        for key, word, of in RATES
        if rates[key] is not None
    ]
    lines = ["Rates:", *shown] if shown else []
    median = totals["median_minutes_to_claim"]
    if median is not None:
        lines.append(f"Median time from reply to claim: {minutes_text(median)}")
    lines.append(
        f"Not counted: {totals['machine_opened']} opened and {totals['machine_clicked']} clicked"
        " only by machines (mail privacy proxies, link scanners)"
    )
    if totals["unknown"]:
        lines.append(f"Answer lost (the provider may have sent them): {totals['unknown']}")
    if totals["suppressed_by_rule"]:
        rules = ", ".join(f"{rule} {n}" for rule, n in totals["suppressed_by_rule"].items())
        lines.append(f"Suppressed by rule: {rules}")
    return lines


def percent(value: float) -> str:
    """0.6667 -> '66.7 %'."""
    return f"{value * 100:.1f} %"


def minutes_text(minutes: float) -> str:
    """'12 min', '3.5 h', '2.1 days'."""
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} days"
