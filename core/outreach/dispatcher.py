"""The outbox dispatcher: every due touch goes out exactly once, or is held, or is suppressed.

How exactly-once holds (SPEC §2.6, §8), with the guards in the database:

1. **Claim** in a short transaction of its own: due ``scheduled`` messages become ``sending``
   (claimed_by, claimed_at, attempts + 1) and the claim is committed before any provider call.
   On PostgreSQL the candidates are picked with ``FOR UPDATE SKIP LOCKED``, so any number of
   workers share the queue without overlap; on SQLite (one worker: the documented limit) the
   ``status = 'scheduled'`` condition inside the UPDATE still makes a double claim impossible.
   Nothing ever picks a ``sending`` message again by itself.
2. **Decide and hand over**, one message at a time: the person's row is re-read (row-locked
   on PostgreSQL, so two workers never decide for the same person at once and an opt-out
   recorded meanwhile is seen), compliance decides, and a send first commits the hand-over
   mark (``sent_at``, guarded by status and claim) before the provider is called. The outcome
   is committed right after the call. A crash therefore leaves at most one message in flight.
3. **Recover**: a message still ``sending`` after ``IN_FLIGHT_TIMEOUT`` was interrupted. With
   the hand-over mark it was interrupted between the provider call and the commit: it may
   have reached the borrower, so it becomes ``unknown`` (rule ``crashed_in_flight``), surfaced
   in the audit trail, never resent. Without the mark it never reached the provider and goes
   back to the queue.

SMS pacing: a token bucket (``DEFAULT_SMS_PER_SECOND`` = 10 messages/s unless the caller
passes another) is taken before each SMS. Twilio queues what a long code cannot carry at once;
10/s keeps that queue short for a single number, and a Messaging Service pool can go higher.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr, parseaddr
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, Select, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.audit.models import AuditEvent
from core.audit.service import record
from core.batches.models import BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.bulk import bulk_insert
from core.channels.base import (
    BAD_ADDRESS,
    OPTED_OUT,
    RETRY,
    SENT,
    EmailSender,
    OutboundEmail,
    SendResult,
    SmsSender,
)
from core.channels.base import UNKNOWN as UNKNOWN_OUTCOME
from core.channels.email import SandboxEmailSender
from core.channels.ratelimit import TokenBucket
from core.channels.sms import SandboxSmsSender
from core.compliance.caps import COUNTED_STATUSES, WEEK, RecentSends, recent_sends_for
from core.compliance.engine import Recipient, Verdict, decide
from core.config import Config
from core.consent.models import Suppression
from core.outreach import models as outbox
from core.outreach.context import (
    Company,
    Links,
    company_from_settings,
    render_context,
    token_secret,
)
from core.outreach.models import Enrollment, Message, TemplateVersion
from core.outreach.optout import add_suppression, record_opt_out
from core.outreach.switches import is_paused, paused_flag
from core.privacy import mask_email, mask_phone
from core.settings import Settings
from core.tokens import REPLY, sign
from core.tracks.config import Step, Track
from core.tracks.render import Rendered, RenderError, render_step

logger = logging.getLogger(__name__)

DEFAULT_SMS_PER_SECOND = 10.0
MAX_ATTEMPTS = 5
IN_FLIGHT_TIMEOUT = timedelta(minutes=10)
CHUNK = 200  # messages claimed per short claim transaction
SessionFactory = Callable[[], Session]
_RENDERING = ("template_version_id", "subject", "body")


@dataclass
class DispatchReport:
    """What one dispatch pass did; `as_json()` is the CLI's contract shape."""

    sent: int = 0
    held: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    unknown: int = 0
    tasks: int = 0
    cancelled: int = 0
    render_failed: int = 0
    retrying: int = 0

    @property
    def handled(self) -> int:
        """How many messages this pass settled one way or another."""
        singles = (self.sent, self.failed, self.unknown, self.tasks, self.cancelled)
        return (
            sum(singles)
            + self.render_failed
            + self.retrying
            + sum(self.suppressed.values())
            + sum(self.held.values())
        )

    def count(self, bucket: dict[str, int], rule: str) -> None:
        """Add one to `rule` in the held or suppressed tally."""
        bucket[rule] = bucket.get(rule, 0) + 1

    def as_json(self) -> dict[str, Any]:
        """{"sent", "held", "suppressed", "failed"} first, then the extra counts."""
        return {
            "sent": self.sent,
            "held": dict(sorted(self.held.items())),
            "suppressed": dict(sorted(self.suppressed.items())),
            "failed": self.failed,
            "unknown": self.unknown,
            "tasks": self.tasks,
            "cancelled": self.cancelled,
            "render_failed": self.render_failed,
            "retrying": self.retrying,
        }


def claim_due(
    *, session: Session, now: datetime, worker_id: str, limit: int, after_id: int = 0
) -> list[int]:
    """Mark up to `limit` due messages (id > after_id) as sending for this worker; their ids.

    The caller commits at once, before any provider call.
    """
    candidates = (
        select(Message.id)
        .where(
            Message.status == outbox.SCHEDULED,
            Message.due_at <= now,
            Message.id > after_id,
        )
        .order_by(Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        update(Message)
        .where(Message.id.in_(candidates.scalar_subquery()), Message.status == outbox.SCHEDULED)
        .values(
            status=outbox.SENDING,
            claimed_by=worker_id[:80],
            claimed_at=now,
            attempts=Message.attempts + 1,
            updated_at=now,
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars())


def release(*, session: Session, ids: list[int], worker_id: str, now: datetime) -> int:
    """Put claimed messages that never reached the provider back in the queue."""
    if not ids:
        return 0
    return session.execute(
        update(Message)
        .where(
            Message.id.in_(ids),
            Message.status == outbox.SENDING,
            Message.claimed_by == worker_id[:80],
        )
        .values(status=outbox.SCHEDULED, attempts=Message.attempts - 1, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def recover_in_flight(
    *, session: Session, now: datetime, older_than: timedelta = IN_FLIGHT_TIMEOUT
) -> list[int]:
    """Settle messages a crashed worker left in 'sending'; the ids now 'unknown'.

    Handed to the provider (``sent_at`` set): 'unknown', surfaced, never resent. Only claimed:
    back to the queue, since no provider ever saw them.
    """
    stuck = list(
        session.scalars(
            select(Message)
            .where(Message.status == outbox.SENDING, Message.claimed_at < now - older_than)
            .order_by(Message.id)
            .with_for_update(skip_locked=True)
        )
    )
    unknown = []
    for message in stuck:
        message.updated_at = now
        if message.sent_at is None:
            message.status = outbox.SCHEDULED
            message.attempts = max(0, message.attempts - 1)
            action, reason = "message.released", "claimed_by_a_crashed_worker"
        else:
            message.status = outbox.UNKNOWN
            message.rule = "crashed_in_flight"
            unknown.append(message.id)
            action, reason = "message.unknown", "crashed_in_flight"
        record(
            session=session,
            at=now,
            actor="recovery",
            action=action,
            subject_type="message",
            subject_id=message.id,
            reason=reason,
            details={"claimed_by": message.claimed_by, "channel": message.channel},
        )
    session.flush()
    return unknown


def dispatch(
    *,
    session_factory: SessionFactory,
    now: datetime,
    settings: Settings,
    config: Config,
    tracks: Mapping[str, Track],
    sms: SmsSender,
    email: EmailSender,
    worker_id: str,
    limit: int = 1000,
    rate_limiter: TokenBucket | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DispatchReport:
    """Send every due touch (up to `limit`), each exactly once, in compliance; a report.

    With a `clock`, every claim and decision reads it afresh (a long pass never judges quiet
    hours by its start time); without one, the whole pass happens at `now`. Setting `stop` (a
    worker shutting down) ends the pass after the message in flight; the rest of its claim goes
    back to the queue.
    """
    run = _Pass(
        session_factory=session_factory,
        now=now,
        settings=settings,
        config=config,
        tracks=tracks,
        sms=sms,
        email=email,
        worker_id=worker_id,
        rate_limiter=rate_limiter,
        stop=stop,
        clock=clock,
    )
    run.run(limit)
    return run.report


@dataclass
class _Chunk:
    """The claimed messages of one chunk and what deciding them needs, loaded in bulk."""

    messages: list[Message]
    enrollments: dict[int, Enrollment]
    members: dict[int, BatchMember]
    contacts: dict[int, Contact]
    officers: dict[int, LoanOfficer]
    loans: dict[int, Loan]
    recent: dict[int, RecentSends]


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


def _load_chunk(session: Session, ids: list[int], now: datetime) -> _Chunk:
    messages = list(
        session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id))
    )
    enrollments = _by_id(session, Enrollment, {m.enrollment_id for m in messages})
    members = _by_id(session, BatchMember, {e.batch_member_id for e in enrollments.values()})
    contacts = _by_id(session, Contact, {m.contact_id for m in messages})
    return _Chunk(
        messages=messages,
        enrollments=enrollments,
        members=members,
        contacts=contacts,
        officers=_by_id(session, LoanOfficer, {c.lo_id for c in contacts.values() if c.lo_id}),
        loans=_by_id(session, Loan, {m.loan_id for m in members.values()}),
        recent=recent_sends_for(session=session, contact_ids=sorted(contacts), now=now),
    )


@dataclass(frozen=True)
class _Fresh:
    """The person as the database holds them right now, read under their row lock."""

    contact: Contact
    enrollment_status: str
    stop_reason: str | None
    suppressed: frozenset[tuple[str, str]]
    paused: bool
    recent: RecentSends | None  # read with the lock when other workers may share the queue


@lru_cache(maxsize=2)
def _fresh_statement(with_recent: bool) -> Select[Any]:
    """One statement for everything a decision needs, built once (bind parameters vary)."""
    phone_listed = exists().where(Suppression.kind == "phone", Suppression.value == Contact.phone)
    email_listed = exists().where(
        Suppression.kind == "email", Suppression.value == func.lower(Contact.email)
    )
    columns: list[Any] = [
        Contact,
        Enrollment.status,
        Enrollment.stop_reason,
        phone_listed,
        email_listed,
        paused_flag(),
    ]
    if with_recent:  # PostgreSQL: the person's counted sends, in flight included, in one go
        columns.append(
            select(func.array_agg(Message.sent_at))
            .where(
                Message.contact_id == Contact.id,
                Message.sent_at > bindparam("since"),
                Message.status.in_((*COUNTED_STATUSES, outbox.SENDING)),
            )
            .scalar_subquery()
        )
    return (
        select(*columns)
        .select_from(Contact)
        .join(Enrollment, Enrollment.contact_id == Contact.id)
        .where(Contact.id == bindparam("contact_id"), Enrollment.id == bindparam("enrollment_id"))
        .with_for_update(of=Contact)
        .execution_options(populate_existing=True)
    )


def _fresh(session: Session, message: Message, now: datetime, with_recent: bool) -> _Fresh:
    parameters = {"contact_id": message.contact_id, "enrollment_id": message.enrollment_id}
    if with_recent:
        parameters["since"] = now - WEEK
    row = session.execute(_fresh_statement(with_recent), parameters).one()
    contact, status, stop_reason, phone_on_list, email_on_list, paused = row[:6]
    suppressed = set()
    if phone_on_list and contact.phone:
        suppressed.add(("phone", contact.phone))
    if email_on_list and contact.email:
        suppressed.add(("email", contact.email.strip().lower()))
    recent = RecentSends(list(row[6] or [])) if with_recent else None
    return _Fresh(contact, status, stop_reason, frozenset(suppressed), bool(paused), recent)


class _Pass:
    """One dispatch pass: claims chunk by chunk and settles each message on its own."""

    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        now: datetime,
        settings: Settings,
        config: Config,
        tracks: Mapping[str, Track],
        sms: SmsSender,
        email: EmailSender,
        worker_id: str,
        rate_limiter: TokenBucket | None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.stop = stop
        self.clock = clock
        self.session_factory = session_factory
        self.now = now
        self.settings = settings
        self.config = config
        self.tracks = tracks
        self.sms = sms
        self.email = email
        # Unique per pass: a claim released by recovery and taken again is not mistaken for ours.
        self.worker_id = f"{worker_id[:60]}#{uuid.uuid4().hex[:12]}"
        self.rate_limiter = rate_limiter
        self.company: Company = company_from_settings(settings)
        self.secret = token_secret(settings)
        self.links = Links(settings.PUBLIC_BASE_URL, self.secret)
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        self.status_callback = f"{base}/twilio/status"
        self.email_from = settings.EMAIL_FROM or f"{self.company.name} <outreach@winback.invalid>"
        self.email_domain = parseaddr(self.email_from)[1].rpartition("@")[2] or "winback.invalid"
        self.versions: dict[str, int] = {}
        self.report = DispatchReport()
        self.in_flight: int | None = None

    # --- the pass ----------------------------------------------------------------------------
    def run(self, limit: int) -> None:
        """Claim and settle chunks until `limit` messages were handled or none is due."""
        after_id = 0
        handled = 0
        while handled < limit and not self._stopping():
            self._tick()
            with self._session() as session:
                if is_paused(session):
                    self._hold_everything_paused(session)
                    session.commit()
                    return
                ids = claim_due(
                    session=session,
                    now=self.now,
                    worker_id=self.worker_id,
                    limit=min(CHUNK, limit - handled),
                    after_id=after_id,
                )
                session.commit()
                if not ids:
                    return
                after_id = ids[-1]
                handled += len(ids)
                self._settle_chunk(session, ids)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session that keeps one connection across its many short transactions.

        A session normally hands its connection back to the pool at each commit; taking it
        again costs a ping and a reset, several round trips per message.
        """
        with self.session_factory() as probe:
            bind = probe.get_bind()
        if not isinstance(bind, Engine):
            with self.session_factory() as session:
                yield session
            return
        with (
            bind.connect() as connection,
            Session(bind=connection, expire_on_commit=False) as session,
        ):
            yield session

    def _settle_chunk(self, session: Session, ids: list[int]) -> None:
        pending = set(ids)
        try:
            chunk = _load_chunk(session, ids, self.now)
            shared = session.get_bind().dialect.name == "postgresql"
            for message in chunk.messages:
                if self._stopping():
                    break
                self._tick()
                self._settle(session, message, chunk, shared)
                session.commit()
                pending.discard(message.id)
                self.in_flight = None
        except BaseException:
            session.rollback()
            # The one in flight may have reached the provider: it stays 'sending' for recovery.
            unsent = sorted((pending - {self.in_flight}) if self.in_flight else pending)
            with self.session_factory() as cleanup:
                release(session=cleanup, ids=unsent, worker_id=self.worker_id, now=self.now)
                cleanup.commit()
            raise
        if pending:
            release(session=session, ids=sorted(pending), worker_id=self.worker_id, now=self.now)
            session.commit()

    def _tick(self) -> None:
        if self.clock is not None:
            self.now = self.clock()

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _hold_everything_paused(self, session: Session) -> None:
        """Outreach is paused: nothing is claimed; due messages are marked held by 'paused'."""
        due = (Message.status == outbox.SCHEDULED, Message.due_at <= self.now)
        total = session.scalar(select(func.count()).select_from(Message).where(*due)) or 0
        newly = list(
            session.scalars(
                update(Message)
                .where(*due, Message.rule.is_distinct_from("paused"))
                .values(rule="paused", updated_at=self.now)
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            )
        )
        bulk_insert(
            session,
            AuditEvent.__table__,
            [
                {"at": self.now, "actor": "dispatcher", "action": "message.held",
                 "subject_type": "message", "subject_id": str(message_id), "reason": "paused"}
                for message_id in newly
            ],
        )  # fmt: skip
        if total:
            self.report.held["paused"] = total

    # --- one message ---------------------------------------------------------------------------
    def _settle(self, session: Session, message: Message, chunk: _Chunk, shared: bool) -> None:
        enrollment = chunk.enrollments[message.enrollment_id]
        fresh = _fresh(session, message, self.now, with_recent=shared)
        if fresh.enrollment_status != outbox.ACTIVE:
            reason = fresh.stop_reason or f"sequence_{fresh.enrollment_status}"
            self._cancel(session, message, reason)
            return
        step = self._step(enrollment.track, message)
        if step is None:
            self._render_failed(session, message, f"track {enrollment.track} has no such step")
            return
        try:
            context = self._context(fresh.contact, enrollment, chunk, step)
            rendered = render_step(
                track=enrollment.track, template=step.template, channel=step.channel,
                context=context,
            )  # fmt: skip
        except RenderError as exc:
            self._render_failed(session, message, str(exc))
            return
        self._keep_rendering(session, message, rendered)
        if fresh.recent is not None:  # other workers may have messaged this person meanwhile
            chunk.recent[message.contact_id] = fresh.recent
        recent = chunk.recent.setdefault(message.contact_id, RecentSends())
        verdict = self._decide(fresh, step, rendered, recent)
        if verdict.action == "hold":
            self._hold(session, message, verdict)
        elif verdict.action == "suppress":
            self._suppress(session, message, verdict.rule or "suppressed")
        elif step.channel == "call_task":
            self._open_task(session, message, enrollment)
        else:
            self._send(session, message, fresh.contact, enrollment, rendered, context, recent)

    def _step(self, track_name: str, message: Message) -> Step | None:
        track = self.tracks.get(track_name)
        if track is None or not 1 <= message.step <= len(track.steps):
            return None
        step = track.steps[message.step - 1]
        return step if step.channel == message.channel else None

    def _context(
        self, contact: Contact, enrollment: Enrollment, chunk: _Chunk, step: Step
    ) -> dict[str, Any]:
        member = chunk.members[enrollment.batch_member_id]
        return render_context(
            contact=contact,
            officer=chunk.officers.get(contact.lo_id) if contact.lo_id else None,
            batch_member_id=member.id,
            trigger=member.trigger,
            snapshot=member.snapshot or {},
            loan=chunk.loans.get(member.loan_id),
            step=step,
            company=self.company,
            links=self.links,
            email_from=self.settings.EMAIL_FROM,
            now=self.now,
        )

    def _decide(
        self, fresh: _Fresh, step: Step, rendered: Rendered, recent: RecentSends
    ) -> Verdict:
        text = rendered.sms_body or rendered.email_text or rendered.task_text
        return decide(
            recipient=Recipient.from_contact(fresh.contact, fresh.suppressed),
            channel=step.channel,
            at=self.now,
            recent_sends=recent,
            paused=fresh.paused,
            config=self.config.compliance,
            rendered_text=text,
            first_of_track=step.include_stop,
            company_name=self.company.name if step.channel == "sms" else None,
        )

    def _keep_rendering(self, session: Session, message: Message, rendered: Rendered) -> None:
        """Store the text (and its template version, kept 24 months) with the message."""
        message.template_version_id = self._version_id(session, rendered)
        message.subject = rendered.email_subject[:300] if rendered.email_subject else None
        message.body = rendered.sms_body or rendered.email_text or rendered.task_text

    def _version_id(self, session: Session, rendered: Rendered) -> int:
        if rendered.version_hash not in self.versions:
            dialect = session.get_bind().dialect.name
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            session.execute(
                insert(TemplateVersion)
                .values(
                    hash=rendered.version_hash,
                    track=rendered.track,
                    template=rendered.template,
                    channel=rendered.channel,
                    source=rendered.source,
                    created_at=self.now,
                )
                .on_conflict_do_nothing(index_elements=["hash"])
            )
            self.versions[rendered.version_hash] = session.scalars(
                select(TemplateVersion.id).where(TemplateVersion.hash == rendered.version_hash)
            ).one()
        return self.versions[rendered.version_hash]

    # --- outcomes without a provider call -------------------------------------------------------
    def _settled(self, message: Message, status: str, rule: str | None) -> None:
        message.status = status
        message.rule = rule
        message.updated_at = self.now

    def _audit(self, session: Session, message: Message, action: str, **details: Any) -> None:
        reason = details.pop("reason", None)
        record(
            session=session,
            at=self.now,
            actor="dispatcher",
            action=action,
            subject_type="message",
            subject_id=message.id,
            reason=reason,
            details={"channel": message.channel, "step": message.step, **details},
        )

    def _cancel(self, session: Session, message: Message, reason: str) -> None:
        message.attempts -= 1  # no provider call was made
        self._settled(message, outbox.CANCELLED, reason[:60])
        self.report.cancelled += 1
        self._audit(session, message, "message.cancelled", reason=reason)

    def _render_failed(self, session: Session, message: Message, problem: str) -> None:
        message.attempts -= 1
        self._settled(message, outbox.RENDER_FAILED, "render_failed")
        message.details = {"error": problem}
        self.report.render_failed += 1
        logger.warning("message %d not rendered: %s", message.id, problem)
        self._audit(session, message, "message.render_failed", reason=problem[:500])

    def _hold(self, session: Session, message: Message, verdict: Verdict) -> None:
        rule = verdict.rule or "held"
        # Held "until further notice" by the same rule as last time: nothing new to audit.
        unchanged = verdict.until is None and message.rule == rule
        message.attempts -= 1
        self._settled(message, outbox.SCHEDULED, rule)
        if verdict.until is not None:
            message.due_at = verdict.until
        self.report.count(self.report.held, rule)
        if not unchanged:
            until = verdict.until.isoformat() if verdict.until else None
            self._audit(session, message, "message.held", reason=rule, until=until)

    def _suppress(self, session: Session, message: Message, rule: str) -> None:
        self._settled(message, outbox.SUPPRESSED, rule)
        self.report.count(self.report.suppressed, rule)
        self._audit(session, message, "message.suppressed", reason=rule)

    def _open_task(self, session: Session, message: Message, enrollment: Enrollment) -> None:
        """A call task: handed to the loan officer, visible in the outbox."""
        message.attempts -= 1
        self._settled(message, outbox.TASK_OPEN, None)
        self.report.tasks += 1
        self._audit(session, message, "message.task_opened")
        self._complete_if_last(session, message, enrollment)

    def _complete_if_last(self, session: Session, message: Message, enrollment: Enrollment) -> None:
        track = self.tracks.get(enrollment.track)
        if track is None or message.step < len(track.steps):
            return
        table = Enrollment.__table__
        session.execute(
            table.update()
            .where(table.c.id == enrollment.id, table.c.status == outbox.ACTIVE)
            .values(status=outbox.COMPLETED, ended_at=self.now)
        )

    # --- the provider call ----------------------------------------------------------------------
    def _send(
        self,
        session: Session,
        message: Message,
        contact: Contact,
        enrollment: Enrollment,
        rendered: Rendered,
        context: dict[str, Any],
        recent: RecentSends,
    ) -> None:
        if not self._hand_over(session, message):
            return
        if message.channel == "sms":
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            to = mask_phone(contact.phone or "")
            result = self.sms.send(
                to=contact.phone or "",
                body=rendered.sms_body or "",
                status_callback=self.status_callback,
            )
            sandbox = isinstance(self.sms, SandboxSmsSender)
        else:
            to = mask_email(contact.email or "")
            result = self.email.send(self._email(message, contact, rendered, context))
            sandbox = isinstance(self.email, SandboxEmailSender)
        self._apply(session, message, contact, enrollment, result, sandbox, recent, to)

    def _hand_over(self, session: Session, message: Message) -> bool:
        """Commit the mark that the provider is about to get this message; False if the claim
        was lost (recovery took it back), and then nothing is sent."""
        table = Message.__table__
        rendering = {name: getattr(message, name) for name in _RENDERING}
        marked = session.execute(
            table.update()
            .where(
                table.c.id == message.id,
                table.c.status == outbox.SENDING,
                table.c.claimed_by == self.worker_id,
                table.c.sent_at.is_(None),
            )
            .values(sent_at=self.now, updated_at=self.now, **rendering)
        ).rowcount
        if marked != 1:
            session.rollback()
            logger.warning("message %d: claim lost before sending, left alone", message.id)
            return False
        for name, value in (*rendering.items(), ("sent_at", self.now)):
            set_committed_value(message, name, value)  # written above, not to be flushed again
        session.commit()  # no lock is held while the provider call is in flight
        self.in_flight = message.id
        return True

    def _email(
        self, message: Message, contact: Contact, rendered: Rendered, context: dict[str, Any]
    ) -> OutboundEmail:
        reply = sign(secret=self.secret, purpose=REPLY, subject=message.id, issued_at=self.now)
        address = (contact.email or "").strip()
        name = f"{contact.first_name} {contact.last_name}".strip()
        return OutboundEmail(
            to=formataddr((name, address)) if name else address,
            from_addr=self.email_from,
            reply_to=f"reply+{reply}@{self.email_domain}",
            subject=rendered.email_subject or "",
            text=rendered.email_text or "",
            html=rendered.email_html,
            message_id=f"<winback.{message.id}@{self.email_domain}>",
            list_unsubscribe_url=context["links"]["unsubscribe"],
        )

    def _apply(
        self,
        session: Session,
        message: Message,
        contact: Contact,
        enrollment: Enrollment,
        result: SendResult,
        sandbox: bool,
        recent: RecentSends,
        to: str,
    ) -> None:
        """Record what the provider said; exactly one outcome per call."""
        message.provider_id = result.provider_id[:80] if result.provider_id else None
        message.error_code = result.error_code
        if result.outcome not in (SENT, UNKNOWN_OUTCOME):
            message.sent_at = None  # nothing reached the borrower: no cap counts it
        if result.detail:
            message.details = {"provider": result.detail[:500]}
        audit = {"to": to, "provider_id": message.provider_id, "error_code": result.error_code}
        if result.outcome == SENT:
            self._delivered(message, outbox.SANDBOX if sandbox else outbox.SENT, recent)
            self.report.sent += 1
            self._audit(session, message, "message.sent", sandbox=sandbox, **audit)
        elif result.outcome == RETRY:
            self._retry_later(session, message, result, audit)
            return
        elif result.outcome == UNKNOWN_OUTCOME:
            self._delivered(message, outbox.UNKNOWN, recent, rule="answer_lost")
            self.report.unknown += 1
            self._audit(session, message, "message.unknown", reason="answer_lost", **audit)
        elif result.outcome == OPTED_OUT:
            record_opt_out(
                session=session, contact=contact, channel=message.channel,
                source=f"provider_{result.error_code or 'opted_out'}", by="twilio",
                now=self.now, evidence=result.detail,
            )  # fmt: skip
            self._suppress(session, message, "opted_out")
        elif result.outcome == BAD_ADDRESS:
            self._bad_address(session, message, contact)
        else:
            self._settled(message, outbox.FAILED, "provider_refused")
            self.report.failed += 1
            self._audit(session, message, "message.failed", reason=result.detail, **audit)
        self._complete_if_last(session, message, enrollment)

    def _delivered(
        self, message: Message, status: str, recent: RecentSends, rule: str | None = None
    ) -> None:
        self._settled(message, status, rule)
        message.sent_at = self.now
        recent.record(self.now)  # the next message to this person in this pass sees it

    def _retry_later(
        self, session: Session, message: Message, result: SendResult, audit: dict[str, Any]
    ) -> None:
        if message.attempts >= MAX_ATTEMPTS:
            self._settled(message, outbox.FAILED, "retries_exhausted")
            self.report.failed += 1
            self._audit(session, message, "message.failed", reason="retries_exhausted", **audit)
            return
        backoff = timedelta(minutes=2**message.attempts)
        if result.retry_after:
            backoff = max(backoff, timedelta(seconds=result.retry_after))
        self._settled(message, outbox.SCHEDULED, "provider_retry")
        message.due_at = self.now + backoff
        self.report.retrying += 1
        until = message.due_at.isoformat()
        self._audit(session, message, "message.retry", reason=result.detail, until=until, **audit)

    def _bad_address(self, session: Session, message: Message, contact: Contact) -> None:
        if message.channel == "sms":
            contact.phone_status = "bad"
            contact.updated_at = self.now
            rule = "bad_number"
            masked = mask_phone(contact.phone or "")
        else:
            rule = "bad_address"
            masked = mask_email(contact.email or "")
            add_suppression(
                session=session, kind="email", value=(contact.email or "").strip().lower(),
                reason="bad_address", by="dispatcher", now=self.now,
            )  # fmt: skip
        record(
            session=session, at=self.now, actor="dispatcher", action=f"contact.{rule}",
            subject_type="contact", subject_id=contact.id, details={"address": masked},
        )  # fmt: skip
        self._suppress(session, message, rule)
