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
        self,
        session: Session,
        message: Message,
        values: dict[str, Any],
        *,
        action: str | None,
        after_call: bool = False,
        completes: Enrollment | None = None,
        **details: Any,
    ) -> bool:
        """The outcome, its audit event (`action`, unless None) and the enrollment's completion
        when this was its track's last touch, written together only if the claim is ours."""
        values = {**self.rendering.pop(message.id, {}), **values, "updated_at": self.now}
        reason = details.pop("reason", None)
        audit = None
        if action is not None:
            audit = {
                "at": self.now, "actor": "dispatcher", "action": action,
                "subject_type": "message", "subject_id": str(message.id), "reason": reason,
                "details": {"channel": message.channel, "step": message.step, **details},
            }  # fmt: skip
        if settle(
            session=session,
            message=message,
            worker_id=self.worker_id,
            values=values,
            after_call=after_call,
            audit=audit,
            completes=self._completes(message, completes),
        ):
            return True
        session.rollback()
        self.on_lost()
        self.report.lost_claims += 1
        logger.warning("message %d: claim lost before its outcome, left alone", message.id)
        return False

    def _completes(self, message: Message, enrollment: Enrollment | None) -> int | None:
        if enrollment is None:
            return None
        track = self.tracks.get(enrollment.track)
        return enrollment.id if track is not None and message.step >= len(track.steps) else None

    # --- outcomes without a provider call -------------------------------------------------------
    def cancel(self, session: Session, message: Message, reason: str) -> None:
        """The sequence ended before this touch: cancelled, no provider call made."""
        values = {"status": outbox.CANCELLED, "rule": reason[:60], "attempts": message.attempts - 1}
        if self._write(session, message, values, action="message.cancelled", reason=reason):
            self.report.cancelled += 1

    def render_failed(self, session: Session, message: Message, problem: str) -> None:
        """The template could not be rendered for this person: nothing is sent."""
        values = {
            "status": outbox.RENDER_FAILED,
            "rule": "render_failed",
            "attempts": message.attempts - 1,
            "details": {"error": problem},
        }
        if self._write(
            session, message, values, action="message.render_failed", reason=problem[:500]
        ):
            self.report.render_failed += 1
            logger.warning("message %d not rendered: %s", message.id, problem)

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
        told = verdict.until.isoformat() if verdict.until else None
        recheck = None if verdict.until else until.isoformat()
        action = None if unchanged else "message.held"
        if self._write(
            session, message, values, action=action, reason=rule, until=told, recheck_at=recheck
        ):
            self.report.count(self.report.held, rule)

    def suppress(self, session: Session, message: Message, rule: str) -> None:
        """A rule forbids this touch for good."""
        values = {"status": outbox.SUPPRESSED, "rule": rule}
        if self._write(session, message, values, action="message.suppressed", reason=rule):
            self.report.count(self.report.suppressed, rule)

    def open_task(self, session: Session, message: Message, enrollment: Enrollment) -> None:
        """A call task: handed to the loan officer, visible in the outbox."""
        values = {"status": outbox.TASK_OPEN, "rule": None, "attempts": message.attempts - 1}
        if self._write(
            session, message, values, action="message.task_opened", completes=enrollment
        ):
            self.report.tasks += 1

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
        status, rule, action, reason = self._outcome(message, result, sandbox)
        values |= {"status": status, "rule": rule}
        if status == outbox.SCHEDULED:
            values["due_at"] = self.now + self._backoff(message, result)
            audit["until"] = values["due_at"].isoformat()
        elif action == "message.sent":
            audit["sandbox"] = sandbox
        last = None if status == outbox.SCHEDULED else enrollment
        if not self._write(
            session, message, values, action=action, after_call=True, completes=last,
            reason=reason, **audit,
        ):  # fmt: skip
            return
        if status in (outbox.SENT, outbox.SANDBOX, outbox.UNKNOWN):
            recent.record(self.now)  # the next message to this person in this pass sees it
        self._count(status, rule)
        if status == outbox.SUPPRESSED:
            self._provider_suppressed(session, message, contact, result)

    def _outcome(
        self, message: Message, result: SendResult, sandbox: bool
    ) -> tuple[str, str | None, str, str | None]:
        """(status, rule, audit action, audit reason) for a provider's answer."""
        if result.outcome == SENT:
            return (outbox.SANDBOX if sandbox else outbox.SENT), None, "message.sent", None
        if result.outcome == UNKNOWN_OUTCOME:
            return outbox.UNKNOWN, "answer_lost", "message.unknown", "answer_lost"
        if result.outcome == RETRY:
            if message.attempts >= MAX_ATTEMPTS:
                return outbox.FAILED, "retries_exhausted", "message.failed", "retries_exhausted"
            return outbox.SCHEDULED, "provider_retry", "message.retry", result.detail
        if result.outcome in (OPTED_OUT, BAD_ADDRESS):
            rule = "opted_out" if result.outcome == OPTED_OUT else _bad_rule(message)
            return outbox.SUPPRESSED, rule, "message.suppressed", rule
        return outbox.FAILED, "provider_refused", "message.failed", result.detail

    def _backoff(self, message: Message, result: SendResult) -> timedelta:
        backoff = timedelta(minutes=2**message.attempts)
        if result.retry_after:
            backoff = max(backoff, timedelta(seconds=result.retry_after))
        return backoff

    def _count(self, status: str, rule: str | None) -> None:
        report = self.report
        if status in (outbox.SENT, outbox.SANDBOX):
            report.sent += 1
        elif status == outbox.UNKNOWN:
            report.unknown += 1
        elif status == outbox.SCHEDULED:
            report.retrying += 1
        elif status == outbox.SUPPRESSED:
            report.count(report.suppressed, rule or "suppressed")
        else:
            report.failed += 1

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
