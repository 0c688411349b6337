"""Pieces every CLI command shares: the Typer app, `--now`, JSON output, error exits."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

from bot.runtime import Runtime, build_runtime
from core.settings import SettingsError

app = typer.Typer(
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
