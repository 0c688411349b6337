"""Running the real `winback` command line in-process against a fresh database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app


class Winback:
    """Invoke `winback ARGS` with DATABASE_URL set; parse --json output."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = self.runner.invoke(
            app, list(args), env={"DATABASE_URL": self.database_url, **(env or {})},
            catch_exceptions=False,
        )  # fmt: skip
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        result = self(*args, "--json", env=env)
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, result.stdout
        return json.loads(lines[0])


@pytest.fixture
def winback(database_url: str) -> Callable[..., Any]:
    """The CLI bound to a fresh database of its own (SQLite and PostgreSQL)."""
    return Winback(database_url)
