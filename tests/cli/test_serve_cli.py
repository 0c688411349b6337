"""`winback serve`: the web process and the worker's jobs in one process (a small brokerage)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.migrate import upgrade
from core.outreach.models import Message
from tests.outreach import COMPANY, NOW, sessions_for
from tests.outreach import seed_due_texts as seed
from tests.web import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def serving(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`winback serve` on a free port over the test's database with three texts due."""
    upgrade(database_url)
    sessions = sessions_for(database_url)
    seed(sessions, 3)
    sessions.kw["bind"].dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SLACK_", "SMTP"))}
    env.update(COMPANY, DATABASE_URL=database_url, WINBACK_NOW=NOW.isoformat(),
               PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")  # fmt: skip
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        log.close()


def _until(check, seconds: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _answers(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_answers_http_and_sends_the_due_texts_then_stops_cleanly(
    serving: tuple[subprocess.Popen[bytes], str], database_url: str, tmp_path: Path
) -> None:
    process, base = serving
    sessions = sessions_for(database_url)

    def statuses() -> list[str]:
        with sessions() as session:
            return list(session.scalars(select(Message.status).order_by(Message.id)))

    assert _until(lambda: _answers(base)), (tmp_path / "serve.log").read_text()
    assert _until(lambda: statuses() == ["sandbox"] * 3), statuses()  # the worker's dispatch
    assert httpx.get(base + "/u/not-a-token", timeout=5).status_code in (400, 404)

    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    log = (tmp_path / "serve.log").read_text()
    assert "worker jobs: on in this process" in log
    assert "+1415" not in log  # phones masked in whatever the jobs logged
    sessions.kw["bind"].dispose()
