"""`winback demo` tells the whole story on its own SQLite file, in sandbox mode."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli import app
from core.db import make_engine
from core.outreach.models import Message

KEYS = ["book", "eligible", "batch_size", "sent", "held", "replies", "cards", "claimed"]


def test_demo_runs_the_story_and_reports_the_contract_keys(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    result = CliRunner().invoke(
        app, ["demo", "--json", "--database", str(database), "--now", "2026-09-25T15:00:00Z"],
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'untouched.db'}"},
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.strip()]
    story = json.loads(line)
    assert list(story)[: len(KEYS)] == KEYS
    assert 700 <= story["book"] <= 900
    assert 80 <= story["eligible"] <= 130  # "about 100 now hold a loan worth refinancing"
    assert story["batch_size"] == story["eligible"]
    assert 0 < story["sent"] <= story["batch_size"]
    # Nothing left the machine: every touch that passed is in the outbox as sandbox.
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        statuses = dict(connection.execute(
            select(Message.status, func.count()).group_by(Message.status)).all())  # fmt: skip
    engine.dispose()
    assert statuses.get("sandbox") == story["sent"]
    assert "sent" not in statuses
    assert not (tmp_path / "untouched.db").exists()


def test_demo_prints_the_story_in_words(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--database", str(tmp_path / "demo.db"), "--now", "2026-09-25T15:00:00Z"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0
    for phrase in ("Imported the brokerage's book", "Rates dip", "waiting for a manager",
                   "approved batch", "One worker pass"):  # fmt: skip
        assert phrase in result.stdout
