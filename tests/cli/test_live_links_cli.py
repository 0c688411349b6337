"""`winback dispatch|tick|worker` refuse live sending while the web process cannot answer a
route messages need; the sandbox sends as before.

The web process serves every route messages link to today, so these tests make messages need
one more (`POST /not-served/{token}`, which nothing answers) to see the refusal."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import worker
from core.outreach.context import Links
from tests.fakes.twilio_api import FakeTwilio, fake_twilio  # noqa: F401
from tests.outreach import COMPANY, NOW, Book, approved_book, sessions  # noqa: F401

AT = ["--now", NOW.isoformat()]
REFUSAL = (
    "error: live sending refused: messages need POST /not-served/{token} "
    "but the web process does not serve it yet"
)


@pytest.fixture
def unserved_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages need a route the web process does not serve."""
    needed = (*Links.CALLBACKS, ("POST", "/not-served/{token}"))
    monkeypatch.setattr(Links, "CALLBACKS", needed)


def _live_env(twilio: FakeTwilio) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM_NUMBER": "+14155550100",
        "TWILIO_API_URL": twilio.url,
        "WINBACK_SECRET_KEY": "test-signing-key",
        **COMPANY,
    }


def _outbox(book: Book) -> list[tuple[Any, ...]]:
    return [
        (m.id, m.status, m.rule, m.attempts, m.claimed_by, m.sent_at, m.body)
        for m in book.messages()
    ]


@pytest.mark.parametrize("command", [["dispatch"], ["tick", "--no-fetch"]])
@pytest.mark.usefixtures("unserved_route")
def test_live_sending_is_refused_in_one_line_and_nothing_moves(
    command: list[str], winback: Any, sessions: sessionmaker[Session], fake_twilio: FakeTwilio
) -> None:
    book = approved_book(sessions, [{}, {}])
    before = _outbox(book)

    result = winback(*command, *AT, "--json", env=_live_env(fake_twilio))

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [REFUSAL]
    assert result.stdout == ""
    assert fake_twilio.messages == []
    assert _outbox(book) == before
    assert {status for _, status, *_ in before} == {"scheduled"}


@pytest.mark.usefixtures("unserved_route")
def test_the_worker_is_refused_before_its_scheduler_starts(
    winback: Any,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    book = approved_book(sessions, [{}])
    before = _outbox(book)
    started: list[bool] = []
    # Were the check missing, the worker would run forever: record the start instead.
    monkeypatch.setattr(worker.BlockingScheduler, "start", lambda self: started.append(True))

    result = winback("worker", env=_live_env(fake_twilio))

    assert (result.exit_code, result.stderr.splitlines()) == (2, [REFUSAL])
    assert started == []
    assert fake_twilio.messages == []
    assert _outbox(book) == before


def test_sandbox_dispatch_still_sends_to_the_outbox(
    winback: Any, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{}, {}])

    report = winback.json("dispatch", *AT)

    assert report["sent"] == 2
    assert sorted(m.status for m in book.messages() if m.step == 1) == ["sandbox", "sandbox"]
