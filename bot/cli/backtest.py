"""`winback backtest`: replay the real weekly rate history over a book, in a private database."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import JsonOption, NowOption, app, fail, print_json, runtime
from core.backtest import (
    REFINANCE,
    BacktestError,
    BacktestResult,
    BacktestWeek,
    Tuning,
    TuningRow,
    parse_tuning,
    run_backtest,
    tune,
    write_chart,
    write_firings_csv,
)

WEEKLY_LIMIT = 26  # longer ranges print one line per month
SHORT_NAMES = {
    "rate_drop": "refi",
    "loan_age": "age",
    "closing_anniversary": "anniv",
    "fallout_anniversary": "stall",
    "arm_reset": "arm",
    "pmi_removal": "pmi",
    "fha_mip": "fha",
}


def _day(value: str, option: str) -> date:
    """A YYYY-MM-DD option value, or exit naming the option."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")


@app.command("backtest")
def backtest_command(
    book: Annotated[Path, typer.Option("--book", help="The LOS/CRM export to replay.")],
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Write a PNG of rate vs. eligible people.")
    ] = None,
    people: Annotated[
        Path | None, typer.Option("--people", help="Write who would have fired when (CSV).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="auto, generic, encompass or a mapping file.")
    ] = "auto",
    only: Annotated[
        list[str] | None, typer.Option("--trigger", help="Replay only this trigger (repeatable).")
    ] = None,
    tuning: Annotated[
        str | None,
        typer.Option(
            "--tune",
            metavar="TRIGGER.SETTING=V1,V2",
            help="Replay one trigger once per value of a setting and compare them side by side.",
        ),
    ] = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay the real weekly rate history over a book: who would have been messaged when."""
    first, last = _day(start, "--from"), _day(end, "--to")
    if not book.is_file():
        fail(f"cannot read the book {book}: no such file")
    if fmt not in ("auto", "generic", "encompass") and not Path(fmt).is_file():
        fail(f"--format must be auto, generic, encompass or a mapping file; {fmt} is none")
    rt = runtime(now)
    if tuning is not None:
        _tune(rt.config, tuning, book=book, first=first, last=last, fmt=fmt, as_json=as_json,
              now=rt.clock.now())  # fmt: skip
        return
    try:
        result = run_backtest(
            book=book, start=first, end=last, config=rt.config, now=rt.clock.now(), fmt=fmt,
            only=only or None,
        )  # fmt: skip
        if chart is not None:
            write_chart(result, chart)
        if people is not None:
            write_firings_csv(result, people)
    except BacktestError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {exc.filename}: {exc.strerror}")
    if as_json:
        print_json(result.as_json())
        return
    _print_report(result, chart=chart, people=people)


def _tune(config: Any, text: str, *, book: Path, first: date, last: date, fmt: str,
          as_json: bool, now: Any) -> None:  # fmt: skip
    """`--tune`: one replay per value, then the comparison (or one error line)."""
    try:
        tuning = parse_tuning(text, config)
        rows = tune(book=book, start=first, end=last, config=config, now=now, tuning=tuning,
                    fmt=fmt)  # fmt: skip
    except BacktestError as exc:
        fail(str(exc))
    if as_json:
        print_json({"setting": tuning.setting, "from": first.isoformat(), "to": last.isoformat(),
                    "rows": [row.as_json() for row in rows]})  # fmt: skip
        return
    _print_tuning(tuning, rows, first, last)


def _print_tuning(tuning: Tuning, rows: list[TuningRow], first: date, last: date) -> None:
    """The values side by side: people, firings, weeks, average savings."""
    typer.echo(f"{tuning.setting} from {first} to {last} (only {tuning.trigger} replayed):")
    width = max(len("value"), *(len(row.value) for row in rows))
    typer.echo(f"{'value':>{width}}  {'people':>7}  {'firings':>7}  {'weeks':>5}  savings/mo")
    for row in rows:
        savings = "—" if row.mean_monthly_savings is None else f"${row.mean_monthly_savings:,.2f}"
        typer.echo(f"{row.value:>{width}}  {row.people:>7,}  {row.firings:>7,}  "
                   f"{row.weeks_firing:>5}  {savings:>10}")  # fmt: skip
    typer.echo("people: different people messaged; savings/mo: the average estimated monthly "
               "savings of the firings that price a refinance")  # fmt: skip


def _print_report(result: BacktestResult, *, chart: Path | None, people: Path | None) -> None:
    """The compact table, the peaks and the totals."""
    weeks = result.weeks
    typer.echo(
        f"backtest of {result.book}: {result.rows_imported} rows imported "
        f"({result.rows_rejected} rejected), {len(weeks)} survey weeks "
        f"{weeks[0].week} to {weeks[-1].week}"
    )
    names = list(weeks[0].fired)
    period = "week"
    if len(weeks) > WEEKLY_LIMIT:
        period = "month"
        typer.echo(
            "one line per month (the range is long): rates, refinance-eligible and savings "
            "at the month's peak week; fired summed over the month"
        )
        rows = [_month_row(list(group)) for _, group in groupby(weeks, _month)]
    else:
        rows = [(week.week.isoformat(), week, week.fired) for week in weeks]
    fired_header = " ".join(f"{SHORT_NAMES.get(name, name):>5}" for name in names)
    typer.echo(
        f"{period:<10} {'30y':>5} {'offer':>5} {'refi-ok':>7} {'savings/mo':>11} | {fired_header}"
    )
    for label, shown, fired in rows:
        counts = " ".join(f"{fired[name]:>5}" for name in names)
        savings = shown.monthly_savings_on_offer
        typer.echo(
            f"{label:<10} {_rate(shown.rate_30y)} {_rate(shown.offer_30y)} "
            f"{shown.eligible.get(REFINANCE, 0):>7} {savings:>11,.0f} | {counts}"
        )
    _print_peaks(result)
    fired = ", ".join(
        f"{SHORT_NAMES.get(n, n)} {count}" for n, count in result.fired_totals.items()
    )
    typer.echo(f"fired in total: {fired}; {result.people_fired} different people")
    typer.echo("(the first week fires everyone already qualifying: nothing is known before --from)")
    for label, path in (("chart", chart), ("who fired when", people)):
        if path is not None:
            typer.echo(f"{label}: {path}")


def _month(week: BacktestWeek) -> str:
    return week.week.strftime("%Y-%m")


def _month_row(group: list[BacktestWeek]) -> tuple[str, BacktestWeek, dict[str, int]]:
    """A month: its peak refinance week, and everything fired during it."""
    peak = max(group, key=lambda week: week.eligible.get(REFINANCE, 0))
    fired = {name: sum(week.fired[name] for week in group) for name in group[0].fired}
    return _month(group[0]), peak, fired


def _rate(value: object) -> str:
    return f"{value:>5.2f}" if value is not None else f"{'-':>5}"


def _print_peaks(result: BacktestResult) -> None:
    """Call out the weeks a broker would look at first."""
    if REFINANCE not in result.weeks[0].eligible:
        return
    peak = max(result.weeks, key=lambda week: week.eligible[REFINANCE])
    typer.echo(
        f"peak refinance-eligible: {peak.eligible[REFINANCE]} people, week of {peak.week} "
        f"(30y {_rate(peak.rate_30y).strip()}%), ${peak.monthly_savings_on_offer:,.0f}/mo on offer"
    )
    busiest = max(result.weeks, key=lambda week: week.fired[REFINANCE])
    typer.echo(
        f"most rate-drop messages: {busiest.fired[REFINANCE]} people, week of {busiest.week} "
        f"(30y {_rate(busiest.rate_30y).strip()}%)"
    )
