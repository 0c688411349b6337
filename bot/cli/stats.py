"""`winback stats [--since 7d|30d|90d|all|DATE] [--by GROUPING] [--json] [--chart PNG]`.

The funnel table (SPEC §4), then "Did outreach cause it?": per trigger, the funded rate of the
messaged people against the held-out ones (core.stats.lift), then each template test's arms
(core.stats.variants). `--chart` draws the funnel and the lift (bot.charts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.charts import funnel_png, lift_words, period_text, rate_words
from bot.cli.common import (
    JsonOption,
    NowOption,
    app,
    fail,
    money_text,
    print_json,
    print_table,
    runtime,
)
from core.stats import (
    ACCEPTED,
    BY,
    COLUMNS,
    PERIODS,
    UNASSIGNED,
    Funnel,
    Lift,
    Readout,
    funnel,
    parse_since,
    variant_readout,
)

HEADER = ("group", *(column.replace("_", " ") for column in COLUMNS))
RATES = (
    ("reply", "reply", "of people reached"),
    ("claim", "claimed", "of replies"),
    ("open", "open", "of emails"),
    ("click", "click", "of messages"),
    ("funded", "funded", "of people reached"),
    ("opt_out", "opted out", "of people reached"),
)
GROUPINGS = ", ".join(BY[:-1]) + f" or {BY[-1]}"  # core's list: a new grouping shows up here


@app.command("stats")
def stats_command(
    since: Annotated[
        str, typer.Option("--since", help=f"The period: {ACCEPTED}.", metavar="PERIOD")
    ] = "30d",
    by: Annotated[
        str, typer.Option("--by", help=f"Group by {GROUPINGS}.", metavar="GROUPING")
    ] = "segment",
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Also draw the funnel and the lift as a PNG.", metavar="PNG"),
    ] = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """The funnel (enrolled, sent, delivered, …, funded) and whether outreach caused it."""
    grouping = by.strip().lower()
    if grouping not in BY:
        fail(f"--by must be {GROUPINGS}, not {by.strip()[:40]!r}")
    if chart is not None:
        writable(chart)
    rt = runtime(now)
    moment = rt.clock.now()
    try:
        start = parse_since(since, moment)
    except ValueError as exc:
        fail(f"--{exc}")  # core's messages begin with "since …"
    word = since.strip().lower()
    period = word if word == "all" or word in PERIODS else since.strip()
    window = rt.config.attribution.window_days
    with rt.sessions() as session:
        result = funnel(
            session, since=start, by=grouping, now=moment, period=period, window_days=window
        )
        tests = variant_readout(session, since=start, now=moment, tracks=rt.tracks)
    if chart is not None:
        save_chart(result, chart)
    if as_json:
        print_json({**result.as_json(), "variants": [test.as_json() for test in tests]})
    else:
        print_funnel(result)
        for line in variant_lines(tests):
            typer.echo(line)
    if chart is not None:
        # With --json stdout holds the one JSON object: the note goes to stderr.
        typer.echo(f"Chart saved to {chart}", err=as_json)


def writable(path: Path) -> None:
    """Refuse, before any counting, a chart path that cannot be written (one line, exit 2)."""
    if path.is_dir():
        fail(f"--chart {path} is a directory: name a file, like {path / 'funnel.png'}")
    if not path.parent.is_dir():
        fail(f"--chart {path}: the folder {path.parent} does not exist")


def save_chart(result: Funnel, path: Path) -> None:
    """Write the funnel's PNG, or exit with one line saying why it could not be written."""
    try:
        path.write_bytes(funnel_png(result))
    except OSError as exc:
        fail(f"--chart {path} could not be written: {exc.strerror or type(exc).__name__}")


def print_funnel(result: Funnel) -> None:
    """The funnel as a table, the totals last, then the rates and what is counted apart."""
    typer.echo(f"Funnel {period_text(result)}, by {result.by}")
    if not result.rows:
        typer.echo("Nothing happened in this period.")
        if result.lift:
            typer.echo("")
            for line in lift_lines(result.lift):
                typer.echo(line)
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
    typer.echo("")
    for line in lift_lines(result.lift):
        typer.echo(line)


def lift_lines(lifts: Sequence[Lift]) -> list[str]:
    """'Did outreach cause it?': per trigger, messaged vs held out, and the lift or the note."""
    if not lifts:
        return ["Did outreach cause it? No batch was approved in this period: nothing to compare."]
    lines = ["Did outreach cause it? Funded rate of the messaged people vs the held-out ones:"]
    width = max(len(lift.trigger) for lift in lifts)
    for lift in lifts:
        messaged = f"messaged {_people_funded(lift.messaged, lift.messaged_rate)}"
        held = f"held out {_people_funded(lift.holdout, lift.holdout_rate)}"
        lines.append(f"  {lift.trigger.ljust(width)}  {messaged}, {held}: {lift_words(lift)}")
    return lines


def variant_lines(tests: Sequence[Readout]) -> list[str]:
    """'Template tests (A/B)': each experiment's arms side by side and what they show."""
    running = [test for test in tests if any(arm.messaged for arm in test.arms)]
    if not running:
        return []
    lines = ["", "Template tests (A/B), reply rate of the people each version reached:"]
    for test in running:
        arms = " · ".join(
            f"{arm.variant} {arm.messaged:,}"
            + ("" if arm.reply_rate is None else f" ({rate_words(arm.reply_rate)} replied)")
            for arm in test.arms
        )
        what = f"{test.track} step {test.step} ({test.channel} {test.template})"
        lines.append(f"  {what}: {arms}")
        lines.append(f"    {test.summary}")
    return lines


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


def _people_funded(people: int, rate: float | None) -> str:
    """'100 (20.0 % funded)', or '0' when there is nobody to have a rate."""
    return f"{people:,}" if rate is None else f"{people:,} ({rate_words(rate)} funded)"


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
    if totals.get("funded_volume") is not None and (totals["funded"] or totals["funded_volume"]):
        lines.append(f"Funded volume: {money_text(totals['funded_volume'])}")
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
