"""The `winback` command line (SPEC §4): thin commands over core functions."""

from __future__ import annotations

import bot.cli.digest  # noqa: F401 - registers `winback digest`
from bot.cli import backtest, book, campaigns, database, demo, outreach, rates, replies, stats, web
from bot.cli.common import app

# Sub-command modules register themselves on import; keep the list explicit.
_COMMAND_MODULES = (backtest, book, campaigns, database, demo, outreach, rates, replies, stats, web)


def main() -> None:
    """Console entry point."""
    app()
