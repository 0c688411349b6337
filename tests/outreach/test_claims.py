"""Claims: a claim takes at most its limit, workers share the queue, and a claim once lost
(recovered, taken by another worker) can never be settled by the worker that lost it."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.audit.models import AuditEvent
from core.book.models import Contact
from core.channels.base import SendResult
from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.config import load_config
from core.outreach import models as outbox
from core.outreach.claims import CHUNK, claim_due, hand_over, recover_in_flight, settle
from core.outreach.dispatcher import DispatchReport, dispatch
from core.outreach.models import Message
from core.tracks.config import load_tracks
from tests.outreach import (
    NOW,
    dispatch_options,
    phone_number,
    sandbox_settings,
    seed_due_texts,
    sessions,  # noqa: F401
)


def _stale_statistics(sessions: sessionmaker[Session]) -> None:
    """Make the planner believe the outbox is empty, as on a fresh install before ANALYZE."""
    with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ALTER TABLE messages SET (autovacuum_enabled = off)"))
            session.execute(text("DELETE FROM messages"))
            session.execute(text("ANALYZE messages"))
        else:
            session.execute(text("DELETE FROM messages"))
            session.execute(text("ANALYZE"))


def _claim(
    sessions: sessionmaker[Session], worker: str, limit: int, after_id: int = 0
) -> list[int]:
    with sessions() as session, session.begin():
        return claim_due(session=session, now=NOW, worker_id=worker, limit=limit, after_id=after_id)


def test_a_claim_takes_no_more_than_its_limit_even_with_stale_statistics(
    sessions: sessionmaker[Session],
) -> None:
    _stale_statistics(sessions)
    seed_due_texts(sessions, 8)
    first = _claim(sessions, "w1", 5)
    assert len(first) == 5
    rest = _claim(sessions, "w2", 5)
    assert len(rest) == 3
    assert not set(first) & set(rest)

    seed_due_texts(sessions, 3000)
    claimed = _claim(sessions, "w3", 200)
    assert len(claimed) == 200
    with sessions() as session:
        sending = session.scalar(
            select(func.count()).where(Message.status == outbox.SENDING, Message.claimed_by == "w3")
        )
    assert sending == 200


def test_two_workers_really_share_2000_due_messages(sessions: sessionmaker[Session]) -> None:
    _stale_statistics(sessions)
    seed_due_texts(sessions, 2000)
    barrier = threading.Barrier(2, timeout=30)
    claims: dict[str, list[list[int]]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            while True:
                barrier.wait()  # both workers claim at the same moment, round after round
                ids = _claim(sessions, name, CHUNK)
                claims[name].append(ids)
                barrier.wait()
                with sessions() as session:
                    left = session.scalar(
                        select(func.count()).where(Message.status == outbox.SCHEDULED)
                    )
                barrier.wait()
                if not left:
                    return
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(name,)) for name in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    taken = {name: [i for ids in rounds for i in ids] for name, rounds in claims.items()}
    assert all(len(ids) <= CHUNK for rounds in claims.values() for ids in rounds)
    assert not set(taken["a"]) & set(taken["b"])
    assert len(taken["a"]) + len(taken["b"]) == 2000
    assert len(taken["a"]) >= 600 and len(taken["b"]) >= 600, {k: len(v) for k, v in taken.items()}


def _statuses(sessions: sessionmaker[Session]) -> Counter[str]:
    with sessions() as session:
        return Counter(session.scalars(select(Message.status)))


def test_a_lost_claim_cannot_be_settled_by_the_worker_that_lost_it(
    sessions: sessionmaker[Session],
) -> None:
    seed_due_texts(sessions, 3)
    stale = _claim(sessions, "slow#1", 10)
    with sessions() as session, session.begin():  # the slow worker is presumed dead
        recover_in_flight(session=session, now=NOW + timedelta(minutes=11))
    taken = _claim(sessions, "fast#2", 10)
    assert sorted(taken) == sorted(stale)
    with sessions() as session, session.begin():
        for message_id in taken:
            message = session.get(Message, message_id)
            assert message is not None
            assert hand_over(session=session, message=message, worker_id="fast#2", now=NOW)
            assert settle(
                session=session, message=message, worker_id="fast#2",
                values={"status": outbox.SENT, "updated_at": NOW},
            )  # fmt: skip
    with sessions() as session, session.begin():
        for message_id in stale:
            message = session.get(Message, message_id)
            assert message is not None
            assert not hand_over(session=session, message=message, worker_id="slow#1", now=NOW)
            assert not settle(
                session=session, message=message, worker_id="slow#1",
                values={"status": outbox.CANCELLED, "updated_at": NOW},
            )  # fmt: skip
    assert _statuses(sessions) == Counter({outbox.SENT: 3})


def test_a_claim_hands_a_message_over_once(sessions: sessionmaker[Session]) -> None:
    seed_due_texts(sessions, 1)
    (message_id,) = _claim(sessions, "w#1", 1)
    with sessions() as session, session.begin():
        message = session.get(Message, message_id)
        assert message is not None
        assert hand_over(session=session, message=message, worker_id="w#1", now=NOW)
        # A second hand-over of the same claim (a retried loop, a bug) must not reach the
        # provider again: the mark is already there.
        assert not hand_over(session=session, message=message, worker_id="w#1", now=NOW)


def test_recovery_keys_on_the_hand_over_time_not_the_claim_time(
    sessions: sessionmaker[Session],
) -> None:
    seed_due_texts(sessions, 2)
    first, second = _claim(sessions, "w#1", 2)
    handed_at = NOW + timedelta(minutes=9)  # a long chunk: this one reached the provider late
    with sessions() as session, session.begin():
        message = session.get(Message, second)
        assert message is not None
        assert hand_over(session=session, message=message, worker_id="w#1", now=handed_at)
    with sessions() as session, session.begin():
        unknown = recover_in_flight(session=session, now=NOW + timedelta(minutes=11))
    # The claimed-only one goes back to the queue; the one handed over two minutes ago is
    # still in flight (its provider call may be answering right now): left alone.
    assert unknown == []
    with sessions() as session:
        assert session.get(Message, first).status == outbox.SCHEDULED  # type: ignore[union-attr]
        assert session.get(Message, second).status == outbox.SENDING  # type: ignore[union-attr]
    with sessions() as session, session.begin():
        unknown = recover_in_flight(session=session, now=handed_at + timedelta(minutes=11))
    assert unknown == [second]


# --- through the real dispatcher --------------------------------------------------------------

TEXT_ONLY = load_tracks(
    {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "intro"}]}}
)


class _SlowFirstSend:
    """Sends like the sandbox, but the first call hangs until the test lets it answer."""

    def __init__(self) -> None:
        self.inner = SandboxSmsSender()
        self.entered = threading.Event()
        self.answer = threading.Event()
        self.calls: list[str] = []

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        self.calls.append(to)
        if len(self.calls) == 1:
            self.entered.set()
            assert self.answer.wait(30)
        return self.inner.send(to=to, body=body, status_callback=status_callback)


def test_a_slow_worker_never_overwrites_what_another_worker_sent(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    seed_due_texts(sessions, 3)
    settings = sandbox_settings(database_url)
    slow = _SlowFirstSend()
    reports: dict[str, DispatchReport] = {}

    def slow_worker() -> None:
        options = dispatch_options(settings, slow, SandboxEmailSender(), tracks=TEXT_ONLY)
        reports["slow"] = dispatch(session_factory=sessions, now=NOW, options=options)

    thread = threading.Thread(target=slow_worker)
    thread.start()
    assert slow.entered.wait(30)  # the slow worker holds the chunk, its first call hanging
    later = NOW + timedelta(minutes=11)
    with sessions() as session, session.begin():
        recover_in_flight(session=session, now=later)  # presumed dead: its claim goes back
    fast = SandboxSmsSender()
    options = dispatch_options(settings, fast, SandboxEmailSender(), tracks=TEXT_ONLY)
    reports["fast"] = dispatch(session_factory=sessions, now=later, options=options)
    slow.answer.set()  # the slow worker wakes up and goes on with its stale chunk
    thread.join(30)

    assert len(fast.sent) == 2 and len(slow.calls) == 1
    assert {m.to for m in fast.sent} | set(slow.calls) == {phone_number(n) for n in range(3)}
    # The provider's late answer settles the message recovery had to call unknown; the two
    # the other worker sent stay sent (the slow worker's stale "cancelled" never lands).
    assert _statuses(sessions) == Counter({outbox.SENT: 1, outbox.SANDBOX: 2})
    assert reports["slow"].sent == 1 and reports["slow"].cancelled == 0
    assert reports["slow"].lost_claims == 2
    with sessions() as session:
        cancelled = session.scalar(
            select(func.count()).where(AuditEvent.action == "message.cancelled")
        )
    assert cancelled == 0


def test_open_ended_holds_do_not_starve_the_queue(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    seed_due_texts(sessions, 30)
    with sessions() as session, session.begin():  # the first 30 live in Louisiana
        session.execute(update(Contact).values(property_state="LA", property_zip="70112"))
    seed_due_texts(sessions, 5)
    emergency = load_config(overrides={"compliance": {"louisiana_emergency": True}})
    settings = sandbox_settings(database_url)
    sms = SandboxSmsSender()

    def one_pass(at: datetime) -> DispatchReport:
        options = dispatch_options(
            settings, sms, SandboxEmailSender(), config=emergency, tracks=TEXT_ONLY, limit=10
        )
        return dispatch(session_factory=sessions, now=at, options=options)

    passes = [one_pass(NOW + timedelta(seconds=30 * n)) for n in range(4)]

    # Every pass is full of Louisianans until they all carry a re-check time; then the
    # Californians behind them go out.
    assert [p.held.get("louisiana_emergency", 0) for p in passes] == [10, 10, 10, 0]
    assert len(sms.sent) == 5 and passes[3].sent == 5
    with sessions() as session:
        held = list(session.scalars(select(Message).where(Message.rule == "louisiana_emergency")))
        audited = session.scalar(select(func.count()).where(AuditEvent.action == "message.held"))
    assert len(held) == 30 and all(m.status == outbox.SCHEDULED for m in held)
    assert all(m.due_at > NOW + timedelta(minutes=59) for m in held)
    assert audited == 30
    # At the re-check they are looked at again: still held, not audited a second time.
    again = one_pass(NOW + timedelta(hours=2))
    assert again.held == {"louisiana_emergency": 10} and len(sms.sent) == 5
    with sessions() as session:
        audited = session.scalar(select(func.count()).where(AuditEvent.action == "message.held"))
    assert audited == 30
