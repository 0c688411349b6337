"""A STOP arriving while a dispatch pass is running: nothing more goes to that number once the
STOP's transaction has committed.

The dispatcher (its own engine, in a thread: another process in production) sends through a
fake Twilio that notes when each text reaches it; the STOP comes in over real HTTP to the live
`winback web` on the same database, and the moment its transaction commits is noted too. The
race is made real at the three places a STOP can land:

1. while the worker is in a provider call for someone else (the fake holds the first send);
2. between the worker reading the person and handing their text over;
3. while the worker waits for the carrier's pacing token.

A text handed to the provider before the STOP committed was decided while the person still
consented; it may reach Twilio a moment after the commit (it is in flight), and nothing can
call it back. What must never happen is a text decided, or kept waiting, after the commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.channels.email import SandboxEmailSender
from core.outreach.dispatcher import DispatchOptions, DispatchReport, dispatch
from core.outreach.models import Message
from core.tracks.config import load_tracks
from tests.fakes.twilio_api import FakeTwilio
from tests.inbound.texting import sms_form, twiml_message
from tests.outreach import NOW, dispatch_options, live_settings, sessions_for, twilio_sender
from tests.outreach import seed_due_texts as seed
from tests.web import LiveWeb, live_web

TEXT_ONLY = load_tracks(
    {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "intro"}]}}
)
WAIT = 30.0  # how long a paused party waits for the test before giving up (never reached)


class GatedTwilio(FakeTwilio):
    """The fake Twilio, noting when each text arrives; it can hold the first one."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.arrivals: list[tuple[float, str]] = []  # (time.monotonic(), To)
        self.hold_first = False
        self.first_arrived = threading.Event()
        self.release = threading.Event()

    def _answer_for(self, to: str) -> Any:
        with self._lock:
            self.arrivals.append((time.monotonic(), to))
            first = len(self.arrivals) == 1
        if first and self.hold_first:
            self.first_arrived.set()
            self.release.wait(WAIT)
        return super()._answer_for(to)

    def to(self, phone: str) -> list[float]:
        """When the texts to `phone` arrived."""
        with self._lock:
            return [at for at, to in self.arrivals if to == phone]


@pytest.fixture
def twilio() -> Iterator[GatedTwilio]:
    """A running gated fake Twilio; the test fails if it saw a request it did not expect."""
    fake = GatedTwilio().start()
    try:
        yield fake
    finally:
        fake.release.set()
        fake.stop()
    assert fake.take_errors() == []


@pytest.fixture
def web(database_url: str) -> Iterator[LiveWeb]:
    """`winback web` on the test's database (SQLite and PostgreSQL)."""
    yield from live_web(database_url)


@pytest.fixture
def worker_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """The dispatcher's own engine on the same database, as a worker process has."""
    factory = sessions_for(database_url)
    yield factory
    factory.kw["bind"].dispose()


@dataclass
class Stop:
    """A STOP texted to the live web process, with the moment its transaction committed."""

    web: LiveWeb
    phone: str
    commits: list[float] = field(default_factory=list)
    response: httpx.Response | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def send(self) -> Stop:
        """Text STOP (intent wording, so Twilio itself would not block the number)."""

        def committed(_session: Session) -> None:
            self.commits.append(time.monotonic())

        event.listen(self.web.sessions, "after_commit", committed)
        try:
            form = sms_form("please stop texting me", self.phone)
            self.response = self.web.twilio_post("/twilio/sms", form)
        finally:
            event.remove(self.web.sessions, "after_commit", committed)
            self.done.set()
        return self

    def in_background(self) -> threading.Thread:
        """Send it from another thread (the webhook may have to wait for the worker's lock)."""
        thread = threading.Thread(target=self.send, daemon=True)
        thread.start()
        return thread

    @property
    def committed_at(self) -> float:
        """When the STOP's one transaction committed."""
        assert self.response is not None and self.response.status_code == 200
        assert twiml_message(self.response) is not None  # our one confirmation
        (at,) = self.commits
        return at


def phones(sessions: sessionmaker[Session]) -> list[str]:
    """The phone of each due text's person, in the order the worker sends them."""
    from core.book.models import Contact

    with sessions() as session:
        return list(
            session.scalars(
                select(Contact.phone)
                .join(Message, Message.contact_id == Contact.id)
                .order_by(Message.id)
            )
        )


def statuses(sessions: sessionmaker[Session]) -> list[tuple[str, str | None]]:
    """(status, rule) of every message, in send order."""
    with sessions() as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(Message.status, Message.rule).order_by(Message.id)
        )]  # fmt: skip


def run_pass(
    sessions: sessionmaker[Session], database_url: str, twilio: GatedTwilio, **extra: Any
) -> tuple[threading.Thread, list[DispatchReport]]:
    """Start one dispatch pass in a thread; the thread and where its report will be."""
    options: DispatchOptions = dispatch_options(
        live_settings(database_url, twilio), twilio_sender(twilio), SandboxEmailSender(),
        tracks=TEXT_ONLY, **extra,
    )  # fmt: skip
    reports: list[DispatchReport] = []

    def work() -> None:
        reports.append(dispatch(session_factory=sessions, now=NOW, options=options))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, reports


def finish(thread: threading.Thread, reports: list[DispatchReport]) -> DispatchReport:
    """Wait for the pass to end; its report."""
    thread.join(WAIT)
    assert not thread.is_alive(), "the dispatch pass did not finish"
    (report,) = reports
    return report


# --- 1. while the worker is in someone else's provider call ------------------------------------


def test_a_stop_during_anothers_send_stops_the_rest_of_the_pass(
    web: LiveWeb, worker_sessions: sessionmaker[Session], database_url: str, twilio: GatedTwilio
) -> None:
    seed(web.sessions, 4)
    first, second, third, fourth = phones(web.sessions)
    twilio.hold_first = True
    thread, reports = run_pass(worker_sessions, database_url, twilio)
    assert twilio.first_arrived.wait(WAIT)

    stops = [Stop(web, second).send(), Stop(web, fourth).send()]  # the worker is mid-call
    twilio.release.set()
    report = finish(thread, reports)

    assert report.sent == 2 and report.cancelled == 2
    for stop in stops:
        assert twilio.to(stop.phone) == []
    assert len(twilio.to(first)) == 1 and len(twilio.to(third)) == 1
    assert statuses(web.sessions) == [
        ("sent", None), ("cancelled", "opted_out"), ("sent", None), ("cancelled", "opted_out"),
    ]  # fmt: skip


def test_a_stop_from_a_shared_number_during_the_send_to_one_holder_spares_the_other(
    web: LiveWeb, worker_sessions: sessionmaker[Session], database_url: str, twilio: GatedTwilio
) -> None:
    seed(web.sessions, 3)
    with web.sessions() as session, session.begin():  # the third person shares the first's phone
        shared, _, other = (m.contact_id for m in session.scalars(select(Message)))
        session.execute(
            text("UPDATE contacts SET phone = (SELECT phone FROM contacts WHERE id = :a) "
                 "WHERE id = :b"),
            {"a": shared, "b": other},
        )  # fmt: skip
    number, second, _ = phones(web.sessions)
    twilio.hold_first = True
    thread, reports = run_pass(worker_sessions, database_url, twilio)
    assert twilio.first_arrived.wait(WAIT)  # the text to the first holder is at Twilio

    stop = Stop(web, number).send()
    twilio.release.set()
    report = finish(thread, reports)

    (arrived,) = twilio.to(number)  # the one in flight when the STOP came; no second one
    assert arrived < stop.committed_at
    assert len(twilio.to(second)) == 1
    assert report.sent == 2 and report.cancelled == 1
    assert statuses(web.sessions)[2] == ("cancelled", "opted_out")


# --- 2. between reading the person and handing their text over ---------------------------------


def _is_hand_over(multiparams: Any, params: Any, message_id: int) -> bool:
    rows = multiparams if isinstance(multiparams, list | tuple) else [multiparams]
    for row in [*rows, params]:
        if isinstance(row, dict) and "set_sent_at" in row and row.get("guard_id") == message_id:
            return True
    return False


def _waiting_for_a_lock(engine: Engine) -> bool:
    """PostgreSQL: some backend waits for a lock (the STOP, behind the worker's row lock)."""
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            )
        )


def _until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait until `condition` holds or `seconds` passed (no assertion on how long it took)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.02)


def test_a_stop_between_the_decision_and_the_hand_over_is_seen(
    web: LiveWeb, worker_sessions: sessionmaker[Session], database_url: str, twilio: GatedTwilio
) -> None:
    seed(web.sessions, 3)
    _, target_phone, _ = phones(web.sessions)
    with web.sessions() as session:
        target = session.scalars(select(Message.id).order_by(Message.id)).all()[1]
    engine = worker_sessions.kw["bind"]
    stop = Stop(web, target_phone)
    handed_over: list[float] = []  # when the worker's hand-over of the target began to commit
    armed = threading.Event()

    def stop_arrives(
        conn: Any, clauseelement: Any, multiparams: Any, params: Any, execution_options: Any
    ) -> None:
        if not _is_hand_over(multiparams, params, target) or armed.is_set():
            return
        armed.set()
        stop.in_background()
        # The STOP lands now: it commits at once, or waits for the lock the worker holds on
        # the person while it decides (PostgreSQL shows the wait; SQLite's busy wait does not).
        postgres = engine.dialect.name == "postgresql"
        _until(lambda: stop.done.is_set() or (postgres and _waiting_for_a_lock(engine)), 3.0)

    def noted(conn: Any) -> None:
        if armed.is_set() and not handed_over:
            handed_over.append(time.monotonic())

    event.listen(engine, "before_execute", stop_arrives)
    event.listen(engine, "commit", noted)
    try:
        thread, reports = run_pass(worker_sessions, database_url, twilio)
        report = finish(thread, reports)
    finally:
        event.remove(engine, "before_execute", stop_arrives)
        event.remove(engine, "commit", noted)
    assert stop.done.wait(WAIT)

    arrived = twilio.to(target_phone)
    if arrived:  # the worker decided first: its hand-over committed before the STOP did
        assert len(arrived) == 1 and report.sent == 3
        assert handed_over and handed_over[0] < stop.committed_at
    else:  # the STOP came first and the worker saw it
        assert report.sent == 2
        assert statuses(web.sessions)[1][0] in ("cancelled", "suppressed")
    assert all(at < stop.committed_at for at in arrived[1:])


# --- 3. while the worker waits for the carrier's pacing token -----------------------------------


class PausingBucket:
    """A pacing token bucket drained at the `nth` text: that one waits for the test."""

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.calls = 0
        self.waiting = threading.Event()
        self.release = threading.Event()

    def try_acquire(self) -> bool:
        """A token at once, except for the nth text."""
        self.calls += 1
        return self.calls != self.nth

    def acquire(self) -> None:
        """Wait for a token: until the test releases it."""
        self.waiting.set()
        self.release.wait(WAIT)


def test_a_stop_while_the_worker_waits_for_a_pacing_token_is_honored(
    web: LiveWeb, worker_sessions: sessionmaker[Session], database_url: str, twilio: GatedTwilio
) -> None:
    seed(web.sessions, 3)
    _, target_phone, _ = phones(web.sessions)
    bucket = PausingBucket(nth=2)
    thread, reports = run_pass(worker_sessions, database_url, twilio, rate_limiter=bucket)
    assert bucket.waiting.wait(WAIT)  # the worker waits to send to the second person

    stop = Stop(web, target_phone)
    stop.in_background()
    _until(stop.done.is_set, 3.0)  # nothing of the worker's should hold it up
    bucket.release.set()
    report = finish(thread, reports)
    assert stop.done.wait(WAIT)

    assert [at for at in twilio.to(target_phone) if at > stop.committed_at] == []
    assert twilio.to(target_phone) == []  # and nothing was in flight for them either
    assert report.sent == 2
    assert statuses(web.sessions)[1][0] in ("cancelled", "suppressed")
