"""What happened to a claimed message, written once: provider answers and rule decisions to a
status, an audit event and a count in the pass's report.

Each write is guarded by the claim (`claims.settle`); when the claim was lost (recovery gave
the message to another worker) nothing is written, nothing is counted or audited, and the
loss itself is counted (`lost_claims`) and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import Contact
from core.channels.base import BAD_ADDRESS, OPTED_OUT, RETRY, SENT, SendResult
from core.channels.base import UNKNOWN as UNKNOWN_OUTCOME
from core.compliance.caps import RecentSends
from core.compliance.engine import Verdict
from core.outreach import models as outbox
from core.outreach.claims import settle
from core.outreach.models import Enrollment, Message
from core.outreach.optout import add_suppression, record_opt_out
from core.privacy import mask_email, mask_phone
from core.tracks.config import Track

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A hold "until further notice" (a declared emergency, a cap of 0) is looked at again after
# this long instead of staying due: due forever, such messages filled every pass's limit and
# starved everyone else's outreach.
HOLD_RECHECK = timedelta(hours=1)


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
    lost_claims: int = 0

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
            "lost_claims": self.lost_claims,
        }


class Outcomes:
    """Writes the outcome of each message this worker claimed, and keeps the report."""

    def __init__(
        self,
        *,
        worker_id: str,
        tracks: Mapping[str, Track],
        now: datetime,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.worker_id = worker_id
        self.tracks = tracks
        self.now = now
        self.on_lost = on_lost
        self.report = DispatchReport()
        # What was rendered for a message, stored with whatever outcome it gets.
        self.rendering: dict[int, dict[str, Any]] = {}

    # --- the guarded write ----------------------------------------------------------------------
    def _write(
        self, session: Session, message: Message, values: dict[str, Any], after_call: bool = False
    ) -> bool:
        values = {**self.rendering.pop(message.id, {}), **values, "updated_at": self.now}
        if settle(
            session=session,
            message=message,
            worker_id=self.worker_id,
            values=values,
            after_call=after_call,
        ):
            return True
        session.rollback()
        self.on_lost()
        self.report.lost_claims += 1
        logger.warning("message %d: claim lost before its outcome, left alone", message.id)
        return False

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

    # --- outcomes without a provider call -------------------------------------------------------
    def cancel(self, session: Session, message: Message, reason: str) -> None:
        """The sequence ended before this touch: cancelled, no provider call made."""
        values = {"status": outbox.CANCELLED, "rule": reason[:60], "attempts": message.attempts - 1}
        if self._write(session, message, values):
            self.report.cancelled += 1
            self._audit(session, message, "message.cancelled", reason=reason)

    def render_failed(self, session: Session, message: Message, problem: str) -> None:
        """The template could not be rendered for this person: nothing is sent."""
        values = {
            "status": outbox.RENDER_FAILED,
            "rule": "render_failed",
            "attempts": message.attempts - 1,
            "details": {"error": problem},
        }
        if self._write(session, message, values):
            self.report.render_failed += 1
            logger.warning("message %d not rendered: %s", message.id, problem)
            self._audit(session, message, "message.render_failed", reason=problem[:500])

    def hold(self, session: Session, message: Message, verdict: Verdict) -> None:
        """Back to the queue until the rule lets it go (or, open-ended, until re-checked)."""
        rule = verdict.rule or "held"
        # Held "until further notice" by the same rule as last time: nothing new to audit.
        unchanged = verdict.until is None and message.rule == rule
        until = verdict.until or self.now + HOLD_RECHECK
        values = {
            "status": outbox.SCHEDULED,
            "rule": rule,
            "attempts": message.attempts - 1,
            "due_at": until,
        }
        if not self._write(session, message, values):
            return
        self.report.count(self.report.held, rule)
        if not unchanged:
            told = verdict.until.isoformat() if verdict.until else None
            self._audit(
                session, message, "message.held", reason=rule, until=told,
                recheck_at=None if verdict.until else until.isoformat(),
            )  # fmt: skip

    def suppress(self, session: Session, message: Message, rule: str) -> None:
        """A rule forbids this touch for good."""
        if self._write(session, message, {"status": outbox.SUPPRESSED, "rule": rule}):
            self._suppressed(session, message, rule)

    def _suppressed(self, session: Session, message: Message, rule: str) -> None:
        self.report.count(self.report.suppressed, rule)
        self._audit(session, message, "message.suppressed", reason=rule)

    def open_task(self, session: Session, message: Message, enrollment: Enrollment) -> None:
        """A call task: handed to the loan officer, visible in the outbox."""
        values = {"status": outbox.TASK_OPEN, "rule": None, "attempts": message.attempts - 1}
        if self._write(session, message, values):
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

    # --- what the provider said ----------------------------------------------------------------
    def provider_answered(
        self,
        session: Session,
        message: Message,
        contact: Contact,
        enrollment: Enrollment,
        result: SendResult,
        *,
        sandbox: bool,
        recent: RecentSends,
        to: str,
    ) -> None:
        """Record what the provider said; exactly one outcome per call."""
        values: dict[str, Any] = {
            "provider_id": result.provider_id[:80] if result.provider_id else None,
            "error_code": result.error_code,
        }
        if result.outcome not in (SENT, UNKNOWN_OUTCOME):
            values["sent_at"] = None  # nothing reached the borrower: no cap counts it
        if result.detail:
            values["details"] = {"provider": result.detail[:500]}
        audit = {"to": to, "provider_id": values["provider_id"], "error_code": result.error_code}
        if result.outcome == SENT:
            values |= {"status": outbox.SANDBOX if sandbox else outbox.SENT, "rule": None}
        elif result.outcome == UNKNOWN_OUTCOME:
            values |= {"status": outbox.UNKNOWN, "rule": "answer_lost"}
        elif result.outcome == RETRY:
            values |= self._retry_values(message, result)
        elif result.outcome in (OPTED_OUT, BAD_ADDRESS):
            rule = "opted_out" if result.outcome == OPTED_OUT else _bad_rule(message)
            values |= {"status": outbox.SUPPRESSED, "rule": rule}
        else:
            values |= {"status": outbox.FAILED, "rule": "provider_refused"}
        if not self._write(session, message, values, after_call=True):
            return
        self._account(session, message, contact, enrollment, result, audit, recent)

    def _account(
        self,
        session: Session,
        message: Message,
        contact: Contact,
        enrollment: Enrollment,
        result: SendResult,
        audit: dict[str, Any],
        recent: RecentSends,
    ) -> None:
        """Count, audit and follow up the outcome just written."""
        status = message.status
        if status in (outbox.SENT, outbox.SANDBOX, outbox.UNKNOWN):
            recent.record(self.now)  # the next message to this person in this pass sees it
        if status in (outbox.SENT, outbox.SANDBOX):
            self.report.sent += 1
            sandbox = status == outbox.SANDBOX
            self._audit(session, message, "message.sent", sandbox=sandbox, **audit)
        elif status == outbox.UNKNOWN:
            self.report.unknown += 1
            self._audit(session, message, "message.unknown", reason="answer_lost", **audit)
        elif status == outbox.SCHEDULED:
            self.report.retrying += 1
            until = message.due_at.isoformat()
            self._audit(
                session, message, "message.retry", reason=result.detail, until=until, **audit
            )
            return
        elif status == outbox.SUPPRESSED:
            self._provider_suppressed(session, message, contact, result)
            self._suppressed(session, message, message.rule or "suppressed")
        else:
            self.report.failed += 1
            reason = message.rule if message.rule == "retries_exhausted" else result.detail
            self._audit(session, message, "message.failed", reason=reason, **audit)
        self._complete_if_last(session, message, enrollment)

    def _retry_values(self, message: Message, result: SendResult) -> dict[str, Any]:
        if message.attempts >= MAX_ATTEMPTS:
            return {"status": outbox.FAILED, "rule": "retries_exhausted"}
        backoff = timedelta(minutes=2**message.attempts)
        if result.retry_after:
            backoff = max(backoff, timedelta(seconds=result.retry_after))
        return {"status": outbox.SCHEDULED, "rule": "provider_retry", "due_at": self.now + backoff}

    def _provider_suppressed(
        self, session: Session, message: Message, contact: Contact, result: SendResult
    ) -> None:
        """Twilio 21610 is an opt-out; an invalid number or address is marked bad."""
        if result.outcome == OPTED_OUT:
            record_opt_out(
                session=session, contact=contact, channel=message.channel,
                source=f"provider_{result.error_code or 'opted_out'}", by="twilio",
                now=self.now, evidence=result.detail,
            )  # fmt: skip
            return
        if message.channel == "sms":
            contact.phone_status = "bad"
            contact.updated_at = self.now
            masked = mask_phone(contact.phone or "")
        else:
            masked = mask_email(contact.email or "")
            add_suppression(
                session=session, kind="email", value=(contact.email or "").strip().lower(),
                reason="bad_address", by="dispatcher", now=self.now,
            )  # fmt: skip
        record(
            session=session, at=self.now, actor="dispatcher", action=f"contact.{message.rule}",
            subject_type="contact", subject_id=contact.id, details={"address": masked},
        )  # fmt: skip


def _bad_rule(message: Message) -> str:
    return "bad_number" if message.channel == "sms" else "bad_address"
