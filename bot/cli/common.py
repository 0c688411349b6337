"""Pieces every CLI command shares: the Typer app, `--now`, JSON output, error exits."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import click
import typer
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from bot.preflight import LiveSendingRefused
from bot.runtime import Runtime, build_runtime
from core.config import ConfigError
from core.settings import SettingsError
from core.tracks.config import TrackConfigError
from core.tracks.lint import TemplateLintError


class _WinbackGroup(TyperGroup):
    """Turns known failures anywhere in a command into one `error:` line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (
            SettingsError,
            ConfigError,
            TrackConfigError,
            TemplateLintError,
            LiveSendingRefused,
        ) as exc:
            fail(str(exc))
        except OperationalError as exc:
            # An unreachable or locked database: one line, not a driver traceback.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            fail(f"the database (DATABASE_URL) cannot be used: {reason}")


app = typer.Typer(
    cls=_WinbackGroup,
    help="Winback: the win-back engine for mortgage brokers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

NowOption = Annotated[
    str | None, typer.Option("--now", help="Simulation clock, ISO-8601 (default: real clock).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def runtime(now: str | None = None) -> Runtime:
    """Build the runtime, exiting with one line if a setting is missing or malformed."""
    try:
        return build_runtime(now)
    except SettingsError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(f"--now is not an ISO-8601 time: {exc}")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_json(payload: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(payload, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def rate_text(value: object) -> str:
    """A rate as people read it: '8.25 %', '6.125 %', '6.00 %' (at least two decimals)."""
    from decimal import Decimal, InvalidOperation

    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    text = f"{number.normalize():f}"
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')} %"


def money_text(value: object) -> str:
    """Whole dollars: '$350,000'."""
    return f"${float(str(value)):,.0f}"


def print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> None:
    """Rows as aligned columns under a header (numbers right-aligned by column index)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(cell).rjust(width) if i in right else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    typer.echo(line(header))
    for row in rows:
        typer.echo(line(row))
