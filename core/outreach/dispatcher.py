"""The outbox dispatcher: every due touch goes out exactly once, or is held, or is suppressed.

How exactly-once holds (SPEC §2.6, §8), with the guards in the database (`claims`):

1. **Claim** a chunk in a short transaction of its own, committed before any provider call.
   Workers share the queue with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite (one
   worker: the documented limit) the ``status = 'scheduled'`` guard makes a double claim
   impossible. Nothing ever picks a ``sending`` message again by itself.
2. **Decide and hand over**, one message at a time: the person's row is re-read (row-locked
   on PostgreSQL, so two workers never decide for the same person at once and an opt-out
   recorded meanwhile is seen), compliance decides, and a send first commits the hand-over
   mark before the provider is called. The outcome (`outcomes`) is committed right after the
   call. Every write is guarded by the claim, so a worker whose claim was recovered and taken
   by another changes nothing. A crash leaves at most one message in flight.
3. **Recover** (`claims.recover_in_flight`): handed over and never settled → ``unknown``,
   never resent; claimed and never handed over → back to the queue.

SMS pacing: the options' token bucket (WINBACK_SMS_PER_SECOND, 10 messages/s by default) is
taken before each SMS sent through a carrier, with no lock held, and the text is decided again
after the wait, so a STOP that landed meanwhile is seen; the sandbox is not paced.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.bulk import bulk_insert
from core.channels.base import EmailSender, SmsSender
from core.channels.email import SandboxEmailSender
from core.channels.ratelimit import TokenBucket
from core.channels.sms import SandboxSmsSender
from core.compliance.caps import RecentSends
from core.compliance.engine import Verdict
from core.config import Config
from core.outreach import models as outbox
from core.outreach.chunks import Chunk, Fresh, fresh, load_chunk
from core.outreach.claims import CHUNK, claim_due, hand_over, release
from core.outreach.context import token_secret
from core.outreach.emails import EmailComposer
from core.outreach.models import Enrollment, Message
from core.outreach.outcomes import DispatchReport, Outcomes
from core.outreach.switches import is_paused
from core.outreach.touch import Sender, decide_touch, render_touch
from core.outreach.versions import TemplateVersions
from core.privacy import mask_email, mask_phone
from core.settings import Settings
from core.tracks.config import Step, Track
from core.tracks.render import Rendered, RenderError

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]

__all__ = ["DispatchOptions", "DispatchReport", "dispatch"]


@dataclass(frozen=True)
class DispatchOptions:
    """Everything a dispatch pass needs besides the database and the time."""

    settings: Settings
    config: Config
    tracks: Mapping[str, Track]
    sms: SmsSender
    email: EmailSender
    worker_id: str
    limit: int = 1000
    rate_limiter: TokenBucket | None = None  # carrier pacing; the sandbox is never paced
    stop: threading.Event | None = None
    # With a clock every claim and decision reads it afresh (a long pass never judges quiet
    # hours by its start time); without one the whole pass happens at `now`.
    clock: Callable[[], datetime] | None = None


def dispatch(
    *, session_factory: SessionFactory, now: datetime, options: DispatchOptions
) -> DispatchReport:
    """Send every due touch (up to `options.limit`), each exactly once, in compliance.

    Setting `options.stop` (a worker shutting down) ends the pass after the message in
    flight; the rest of its claim goes back to the queue.
    """
    run = _Pass(session_factory, now, options)
    run.run(options.limit)
    return run.outcomes.report


class _Pass:
    """One dispatch pass: claims chunk by chunk and settles each message on its own."""

    def __init__(self, session_factory: SessionFactory, now: datetime, options: DispatchOptions):
        self.session_factory = session_factory
        self.now = now
        self.options = options
        settings = options.settings
        # Unique per pass: a claim released by recovery and taken again is not mistaken for ours.
        self.worker_id = f"{options.worker_id[:60]}#{uuid.uuid4().hex[:12]}"
        self.sender = Sender.from_settings(settings)
        self.emails = EmailComposer.from_settings(settings, self.sender, token_secret(settings))
        self.status_callback = f"{settings.PUBLIC_BASE_URL.rstrip('/')}/twilio/status"
        self.versions = TemplateVersions()
        self.outcomes = Outcomes(
            worker_id=self.worker_id, tracks=options.tracks, now=now, on_lost=self.versions.clear
        )
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
            chunk = load_chunk(session, ids, self.now)
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
            # The one in flight may have reached the provider: it stays 'sending' for recovery
            # (release would leave it alone anyway: it carries the hand-over mark).
            unsent = sorted(pending - {self.in_flight})
            with self.session_factory() as cleanup:
                release(session=cleanup, ids=unsent, worker_id=self.worker_id, now=self.now)
                cleanup.commit()
            raise
        if pending:
            release(session=session, ids=sorted(pending), worker_id=self.worker_id, now=self.now)
            session.commit()

    def _tick(self) -> None:
        if self.options.clock is not None:
            self.now = self.options.clock()
            self.outcomes.now = self.now

    def _stopping(self) -> bool:
        return self.options.stop is not None and self.options.stop.is_set()

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
            self.outcomes.report.held["paused"] = total

    # --- one message ---------------------------------------------------------------------------
    def _settle(self, session: Session, message: Message, chunk: Chunk, shared: bool) -> None:
        enrollment = chunk.enrollments[message.enrollment_id]
        person = fresh(session, message, self.now, with_recent=shared)
        outcomes = self.outcomes
        if person.enrollment_status != outbox.ACTIVE:
            reason = person.stop_reason or f"sequence_{person.enrollment_status}"
            outcomes.cancel(session, message, reason)
            return
        step = self._step(enrollment.track, message)
        if step is None:
            outcomes.render_failed(session, message, f"track {enrollment.track} has no such step")
            return
        try:
            context, rendered = self._render(person, enrollment, chunk, step)
        except RenderError as exc:
            outcomes.render_failed(session, message, str(exc))
            return
        outcomes.rendering[message.id] = self._rendering(session, rendered)
        if person.recent is not None:  # other workers may have messaged this person meanwhile
            chunk.recent[message.contact_id] = person.recent
        recent = chunk.recent.setdefault(message.contact_id, RecentSends())
        verdict = self._decide(person, step, rendered, recent)
        if verdict.action == "hold":
            outcomes.hold(session, message, verdict)
        elif verdict.action == "suppress":
            outcomes.suppress(session, message, verdict.rule or "suppressed")
        elif step.channel == "call_task":
            outcomes.open_task(session, message, enrollment)
        else:
            self._send(session, message, person, enrollment, step, rendered, context, recent)

    def _step(self, track_name: str, message: Message) -> Step | None:
        track = self.options.tracks.get(track_name)
        if track is None or not 1 <= message.step <= len(track.steps):
            return None
        step = track.steps[message.step - 1]
        return step if step.channel == message.channel else None

    def _render(
        self, person: Fresh, enrollment: Enrollment, chunk: Chunk, step: Step
    ) -> tuple[dict[str, Any], Rendered]:
        member = chunk.members[enrollment.batch_member_id]
        contact = person.contact
        return render_touch(
            sender=self.sender, contact=contact,
            officer=chunk.officers.get(contact.lo_id) if contact.lo_id else None,
            member=member, loan=chunk.loans.get(member.loan_id), track=enrollment.track,
            step=step, now=self.now,
        )  # fmt: skip

    def _decide(
        self, person: Fresh, step: Step, rendered: Rendered, recent: RecentSends
    ) -> Verdict:
        return decide_touch(
            sender=self.sender, contact=person.contact, suppressed=person.suppressed, step=step,
            rendered=rendered, recent=recent, paused=person.paused,
            compliance=self.options.config.compliance, now=self.now,
        )  # fmt: skip

    def _rendering(self, session: Session, rendered: Rendered) -> dict[str, Any]:
        """The text (and its template version, kept 24 months) to store with the message."""
        return {
            "template_version_id": self.versions.id_for(session, rendered, self.now),
            "subject": rendered.email_subject[:300] if rendered.email_subject else None,
            "body": rendered.sms_body or rendered.email_text or rendered.task_text,
            "variant": rendered.variant,  # the A/B arm, for core.stats.variants
        }

    # --- the provider call ----------------------------------------------------------------------
    def _send(
        self,
        session: Session,
        message: Message,
        person: Fresh,
        enrollment: Enrollment,
        step: Step,
        rendered: Rendered,
        context: dict[str, Any],
        recent: RecentSends,
    ) -> None:
        contact = person.contact
        rendering = self.outcomes.rendering.pop(message.id, {})
        if not self._wait_for_pacing(session, message, step, rendered, recent):
            return
        if not hand_over(
            session=session, message=message, worker_id=self.worker_id, now=self.now, **rendering
        ):
            session.rollback()
            self.versions.clear()  # the rollback may have undone a new template version
            self.outcomes.report.lost_claims += 1
            logger.warning("message %d: claim lost before sending, left alone", message.id)
            return
        session.commit()  # no lock is held while the provider call is in flight
        self.in_flight = message.id
        options = self.options
        if message.channel == "sms":
            sandbox = isinstance(options.sms, SandboxSmsSender)
            to = mask_phone(contact.phone or "")
            result = options.sms.send(
                to=contact.phone or "",
                body=rendered.sms_body or "",
                status_callback=self.status_callback,
            )
        else:
            to = mask_email(contact.email or "")
            email = self.emails.compose(
                message_id=message.id, contact=contact, rendered=rendered,
                unsubscribe_url=context["links"]["unsubscribe"], now=self.now,
            )  # fmt: skip
            result = options.email.send(email)
            sandbox = isinstance(options.email, SandboxEmailSender)
        self.outcomes.provider_answered(
            session, message, contact, enrollment, result, sandbox=sandbox, recent=recent, to=to
        )

    def _wait_for_pacing(
        self, session: Session, message: Message, step: Step, rendered: Rendered,
        recent: RecentSends,
    ) -> bool:  # fmt: skip
        """Wait for a carrier text's pacing token with no lock held, then decide it again under
        the person's lock; False (settled, not sent) when a STOP or a reply landed meanwhile.
        Waiting after the hand-over let a text decided before a STOP go out after it."""
        limiter = self.options.rate_limiter
        sandbox = isinstance(self.options.sms, SandboxSmsSender)  # the sandbox is not paced
        if limiter is None or message.channel != "sms" or sandbox or limiter.try_acquire():
            return True  # no wait: the decision just made under the lock stands
        session.commit()  # nothing to keep: the decision is made again below
        limiter.acquire()
        shared = session.get_bind().dialect.name == "postgresql"
        again = fresh(session, message, self.now, with_recent=shared)
        if again.enrollment_status != outbox.ACTIVE:
            reason = again.stop_reason or f"sequence_{again.enrollment_status}"
            self.outcomes.cancel(session, message, reason)
            return False
        verdict = self._decide(again, step, rendered, again.recent or recent)
        if verdict.action == "hold":
            self.outcomes.hold(session, message, verdict)
        elif verdict.action == "suppress":
            self.outcomes.suppress(session, message, verdict.rule or "suppressed")
        return verdict.action == "send"
