"""The worker's jobs as `winback tick` runs them: rates, evaluation when needed, expiry,
recovery, dispatch; singleton jobs under an advisory lock on PostgreSQL."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import jobs
from core.batches.models import EXPIRED, PENDING_APPROVAL, Batch
from core.channels.base import SendResult
from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.flows import approve_batch
from core.locks import only_one_worker
from core.outreach import models as outbox
from core.outreach.dispatcher import dispatch
from core.rates.parsers import FeedError, Observation
from tests.outreach import (
    NOW,
    approved_book,
    dispatch_options,
    sandbox_settings,
    seed_due_texts,
    sessions,  # noqa: F401
    sessions_for,
)
from tests.triggers.factories import default_config, make_contact, make_loan, shipped_tracks

TODAY = NOW.date()


class _Feed:
    """A rate feed answering from memory (or failing like an unreachable one)."""

    def __init__(self, rates: dict[str, str] | None = None, on: date = TODAY) -> None:
        self.rates = rates
        self.on = on

    def fetch(self, *, since: date | None = None) -> list[Observation]:
        if self.rates is None:
            raise FeedError("connection refused", where="https://rates.example.com")
        return [
            Observation(self.on, product, Decimal(rate), "feed")
            for product, rate in self.rates.items()
        ]


def _tick(factory: sessionmaker[Session], url: str, feed: _Feed | None, now=NOW, sms=None):  # type: ignore[no-untyped-def]
    options = dispatch_options(
        sandbox_settings(url), sms or SandboxSmsSender(), SandboxEmailSender(), worker_id="tick",
        limit=100_000,
    )  # fmt: skip
    return jobs.tick(session_factory=factory, now=now, options=options, feed=feed)


def _evaluate(factory: sessionmaker[Session], now=NOW):  # type: ignore[no-untyped-def]
    return jobs.evaluate_job(
        session_factory=factory, now=now, config=default_config(), tracks=shipped_tracks()
    )


def _borrower_worth_refinancing(factory: sessionmaker[Session]) -> int:
    with factory() as session, session.begin():
        contact = make_contact(session)
        make_loan(session, contact)
        return contact.id


def test_a_tick_fetches_rates_evaluates_and_waits_for_approval_then_sends(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    _borrower_worth_refinancing(sessions)

    first = _tick(sessions, database_url, _Feed({"30y": "6.0", "15y": "5.3"}))

    assert first["rates"] == {"inserted": 2, "updated": 0}
    assert first["evaluation"]["evaluated"] is True
    assert first["evaluation"]["why"] == "first evaluation"
    (batch,) = first["evaluation"]["batches"]
    assert (batch["trigger"], batch["status"]) == ("rate_drop", PENDING_APPROVAL)
    assert first["dispatch"]["sent"] == 0  # a rate-drop batch waits for a manager
    with sessions() as session, session.begin():
        approve_batch(
            session=session, batch_id=batch["id"], by="manager", now=NOW, tracks=shipped_tracks()
        )

    sms = SandboxSmsSender()
    second = _tick(sessions, database_url, _Feed({"30y": "6.0", "15y": "5.3"}), sms=sms)

    assert second["rates"] == {"inserted": 0, "updated": 0}
    assert second["evaluation"]["evaluated"] is False  # nothing moved, and not a day yet
    assert second["dispatch"]["sent"] == 1 and len(sms.sent) == 1


def test_evaluation_runs_again_when_the_rate_moves_or_a_day_passes(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    assert _evaluate(sessions)["why"] == "first evaluation"
    assert _evaluate(sessions, NOW + timedelta(hours=1))["evaluated"] is False

    moved = NOW + timedelta(hours=2)
    jobs.fetch_rates_job(session_factory=sessions, now=moved, feed=_Feed({"30y": "5.9"}))

    assert _evaluate(sessions, moved)["why"] == "a new rate observation moved the market"
    assert _evaluate(sessions, moved + timedelta(hours=1))["evaluated"] is False
    assert _evaluate(sessions, moved + timedelta(days=1))["why"] == "a day passed"


def test_an_unreachable_feed_is_reported_and_the_tick_goes_on(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    summary = _tick(sessions, database_url, _Feed(None))

    assert "connection refused" in summary["rates"]["error"]
    assert summary["evaluation"]["evaluated"] is True
    assert list(summary["dispatch"])[:4] == ["sent", "held", "suppressed", "failed"]


def test_pending_batches_expire(database_url: str, sessions: sessionmaker[Session]) -> None:
    _borrower_worth_refinancing(sessions)
    created = _tick(sessions, database_url, _Feed({"30y": "6.0", "15y": "5.3"}))
    (batch,) = created["evaluation"]["batches"]

    too_late = NOW + timedelta(hours=72, minutes=1)
    assert jobs.expire_batches_job(session_factory=sessions, now=NOW)["expired"] == []
    assert jobs.expire_batches_job(session_factory=sessions, now=too_late)["expired"] == [
        batch["id"]
    ]
    with sessions() as session:
        assert session.scalars(select(Batch.status)).one() == EXPIRED


def test_the_recovery_job_surfaces_a_message_left_in_flight(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{}])
    with sessions() as session, session.begin():
        message = session.get(outbox.Message, book.messages()[0].id)
        assert message is not None
        message.status, message.claimed_at, message.sent_at = outbox.SENDING, NOW, NOW

    early = jobs.recover_in_flight_job(session_factory=sessions, now=NOW + timedelta(minutes=9))
    late = jobs.recover_in_flight_job(session_factory=sessions, now=NOW + timedelta(minutes=11))

    assert early == {"unknown": []}
    assert late == {"unknown": [message.id]}
    assert book.messages()[0].rule == "crashed_in_flight"


class _StopsAfterFirstSend:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.inner = SandboxSmsSender()

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        self.stop.set()  # SIGTERM arrives while this text is in flight
        return self.inner.send(to=to, body=body, status_callback=status_callback)


def test_a_stopping_worker_finishes_its_message_and_gives_the_rest_back(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    seed_due_texts(sessions, 5)
    stop = threading.Event()
    options = dispatch_options(
        sandbox_settings(database_url), _StopsAfterFirstSend(stop), SandboxEmailSender(),
        worker_id="w", stop=stop,
    )  # fmt: skip
    report = dispatch(session_factory=sessions, now=NOW, options=options)

    assert report.sent == 1
    with sessions() as session:
        rows = session.execute(select(outbox.Message.status, outbox.Message.attempts)).all()
    assert sorted(rows) == [("scheduled", 0)] * 4 + [("sent", 1)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_only_one_worker_evaluates_at_a_time(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    with sessions() as other_worker, other_worker.begin():
        assert only_one_worker(other_worker, jobs.LOCK_EVALUATE)  # mid-evaluation
        busy = _evaluate(sessions)
    free = _evaluate(sessions)

    assert busy == {"skipped": "another worker is evaluating"}
    assert free["evaluated"] is True


class _SlowFeed(_Feed):
    """A feed that answers only when released: its worker holds the fetch lock meanwhile."""

    def __init__(self, rates: dict[str, str]) -> None:
        super().__init__(rates)
        self.entered = threading.Event()
        self.release = threading.Event()

    def fetch(self, *, since: date | None = None) -> list[Observation]:
        self.entered.set()
        self.release.wait(timeout=10)
        return super().fetch(since=since)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_another_install_on_the_same_server_never_makes_this_one_skip(
    database_url: str, sessions: sessionmaker[Session], other_install_url: str
) -> None:
    other_install = sessions_for(other_install_url)
    slow = _SlowFeed({"30y": "6.1"})
    theirs: dict[str, object] = {}
    their_worker = threading.Thread(
        target=lambda: theirs.update(
            jobs.fetch_rates_job(session_factory=other_install, now=NOW, feed=slow)
        )
    )
    their_worker.start()
    try:
        assert slow.entered.wait(timeout=10)  # their worker is mid-fetch, holding their lock
        their_second_worker = jobs.fetch_rates_job(
            session_factory=other_install, now=NOW, feed=_Feed({"30y": "6.2"})
        )
        ours = jobs.fetch_rates_job(session_factory=sessions, now=NOW, feed=_Feed({"30y": "6.0"}))
    finally:
        slow.release.set()
        their_worker.join(timeout=10)
        other_install.kw["bind"].dispose()

    assert their_second_worker == {"skipped": "another worker is fetching"}
    assert ours == {"inserted": 1, "updated": 0}
    assert theirs == {"inserted": 1, "updated": 0}
