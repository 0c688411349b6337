"""Exactly once per (enrollment, step): across a crash mid-send and across worker processes."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.channels.base import SendResult
from core.channels.email import SandboxEmailSender
from core.outreach import models as outbox
from core.outreach.claims import recover_in_flight
from core.outreach.dispatcher import dispatch
from core.outreach.models import Message
from core.tracks.config import load_tracks
from tests.fakes.twilio_api import FakeTwilio, fake_twilio  # noqa: F401
from tests.outreach import (
    NOW,
    dispatch_options,
    live_settings,
    run_dispatch,
    seed_due_texts,
    sessions,  # noqa: F401
    sessions_for,
    twilio_sender,
    twilio_sender_for,
)

TEXT_ONLY = load_tracks(
    {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "intro"}]}}
)


class Crash(Exception):
    """The process dies here (in-process stand-in for a kill)."""


class _CrashesAfterTheProviderTookIt:
    """Sends for real, then dies before the outcome can be committed, on the `nth` call."""

    def __init__(self, inner: object, nth: int, hard: bool = False) -> None:
        self.inner = inner
        self.nth = nth
        self.hard = hard
        self.calls = 0

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        self.calls += 1
        result = self.inner.send(to=to, body=body, status_callback=status_callback)  # type: ignore[attr-defined]
        if self.calls == self.nth:
            if self.hard:
                os._exit(9)  # no cleanup, no rollback: like kill -9
            raise Crash("killed between the provider call and the commit")
        return result


def _statuses(factory: sessionmaker[Session]) -> Counter[str]:
    with factory() as session:
        rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
        return Counter({status: count for status, count in rows})


def _dispatch(factory: sessionmaker[Session], settings, sms, now=NOW):  # type: ignore[no-untyped-def]
    return run_dispatch(factory, settings, sms, SandboxEmailSender(), now=now, tracks=TEXT_ONLY)


def test_a_crash_between_the_provider_call_and_the_commit_never_causes_a_resend(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    seed_due_texts(sessions, 5)
    settings = live_settings(database_url, fake_twilio)
    crashing = _CrashesAfterTheProviderTookIt(twilio_sender(fake_twilio), nth=2)

    with pytest.raises(Crash):
        _dispatch(sessions, settings, crashing)

    # One went out, one is in flight (the fake has it), the rest went back to the queue.
    assert _statuses(sessions) == Counter({"sent": 1, "sending": 1, "scheduled": 3})
    in_flight = fake_twilio.messages[1]
    soon = _dispatch(sessions, settings, twilio_sender(fake_twilio))
    assert soon.sent == 3  # the in-flight one is never picked up again by itself
    with sessions() as session, session.begin():
        assert recover_in_flight(session=session, now=NOW + timedelta(minutes=5)) == []
    with sessions() as session, session.begin():
        (recovered,) = recover_in_flight(session=session, now=NOW + timedelta(minutes=11))
        message = session.get(Message, recovered)
        assert message is not None
        assert (message.status, message.rule) == (outbox.UNKNOWN, "crashed_in_flight")
    later = _dispatch(sessions, settings, twilio_sender(fake_twilio), now=NOW + timedelta(days=1))

    assert later.sent == 0
    assert Counter(m.to for m in fake_twilio.messages)[in_flight.to] == 1
    assert len(fake_twilio.messages) == 5
    assert _statuses(sessions) == Counter({"sent": 4, "unknown": 1})


def _dispatch_until_killed(url: str, twilio_url: str, sid: str, token: str) -> None:
    """A worker process that is killed right after the provider accepted its 3rd text."""
    sender = twilio_sender_for(twilio_url, sid, token)
    crashing = _CrashesAfterTheProviderTookIt(sender, 3, hard=True)
    _dispatch(sessions_for(url), live_settings(url), crashing)


def test_a_killed_worker_loses_only_its_message_in_flight(
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    seed_due_texts(sessions, 6)
    spawn = multiprocessing.get_context("spawn")
    worker = spawn.Process(
        target=_dispatch_until_killed,
        args=(database_url, fake_twilio.url, fake_twilio.account_sid, fake_twilio.auth_token),
    )
    worker.start()
    worker.join(60)

    assert worker.exitcode == 9
    assert len(fake_twilio.messages) == 3
    # Killed mid-chunk: 2 sent, 1 in flight, 3 claimed but never handed to Twilio.
    assert _statuses(sessions) == Counter({"sent": 2, "sending": 4})
    with sessions() as session, session.begin():
        unknown = recover_in_flight(session=session, now=NOW + timedelta(minutes=11))
    assert len(unknown) == 1
    settings = live_settings(database_url, fake_twilio)
    after = _dispatch(sessions, settings, twilio_sender(fake_twilio), now=NOW + timedelta(hours=1))

    assert after.sent == 3
    assert _statuses(sessions) == Counter({"sent": 5, "unknown": 1})
    assert len(fake_twilio.messages) == 6
    assert len({m.to for m in fake_twilio.messages}) == 6  # nobody got a second text


def _worker(url: str, twilio_url: str, sid: str, token: str, name: str) -> int:
    """One worker process: dispatch passes until the queue is empty; how many it handled."""
    factory = sessions_for(url)
    settings = live_settings(url)
    sender = twilio_sender_for(twilio_url, sid, token)
    handled = 0
    while True:
        options = dispatch_options(
            settings, sender, SandboxEmailSender(), tracks=TEXT_ONLY, worker_id=name
        )
        report = dispatch(session_factory=factory, now=NOW, options=options)
        if report.handled == 0:
            return handled
        handled += report.handled


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("workers", [2, 4])
def test_many_worker_processes_send_each_message_exactly_once(
    workers: int,
    database_url: str,
    sessions: sessionmaker[Session],
    fake_twilio: FakeTwilio,
) -> None:
    count = 5000
    seed_due_texts(sessions, count)
    spawn = multiprocessing.get_context("spawn")
    args = [
        (database_url, fake_twilio.url, fake_twilio.account_sid, fake_twilio.auth_token, f"w{n}")
        for n in range(workers)
    ]
    with spawn.Pool(workers) as pool:
        handled = pool.starmap(_worker, args)

    received = Counter(m.to for m in fake_twilio.messages)
    assert len(received) == count
    assert set(received.values()) == {1}
    assert sum(handled) == count
    assert all(share > 0 for share in handled), handled  # the queue really was shared
    assert _statuses(sessions) == Counter({"sent": count})
    with sessions() as session:
        provider_ids = session.scalar(select(func.count(func.distinct(Message.provider_id))))
    assert provider_ids == count
