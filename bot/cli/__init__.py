"""The `winback` command line (SPEC §4): thin commands over core functions."""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import OperationalError

from bot.cli import book, database
from bot.cli.common import app
from core.settings import SettingsError

# Sub-command modules register themselves on import; keep the list explicit.
_COMMAND_MODULES = (book, database)


def main() -> None:
    """Console entry point: turn known failures into one clear line and exit code 2."""
    try:
        app(standalone_mode=True)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OperationalError as exc:
        # An unreachable or locked database: one line, not a driver traceback.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        typer.echo(f"error: the database (DATABASE_URL) cannot be used: {reason}", err=True)
        sys.exit(2)
