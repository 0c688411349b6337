"""A touch rendered and decided exactly as the dispatcher would, without sending or writing.

`preview_touches` is the one place `winback batch show` (the samples and the counts of who
would be held or suppressed today) and `winback preview` (a person's next touch) render and
decide: the dispatcher's context (`render_context`), its renderer (`render_step`) and the
send-time decision (`core.compliance.engine.decide`) with the inputs the dispatcher gives it.
Nothing here claims, locks or writes a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.batches.models import BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.bulk import any_of
from core.compliance.caps import RecentSends
from core.compliance.engine import Verdict
from core.config import Config
from core.consent.models import Suppression
from core.outreach import models as outbox
from core.outreach.chunks import recent_sends_for
from core.outreach.models import Enrollment, Message
from core.outreach.optout import OptOutError, address_kind, contacts_with
from core.outreach.switches import is_paused
from core.outreach.touch import Sender, decide_touch, render_touch
from core.tracks.config import Step, Track
from core.tracks.render import Rendered, RenderError

RENDER_FAILED = "render_failed"


class PreviewError(ValueError):
    """Nothing to preview for what was asked; the message says why, for the user."""


@dataclass(frozen=True)
class Planned:
    """One touch to preview: whose, which batch membership, which track step, when due."""

    member: BatchMember
    track: str
    step: Step
    due_at: datetime | None = None
    enrollment_id: int | None = None


@dataclass(frozen=True)
class TouchPreview:
    """A touch as it would go out now: the rendered text, and send / hold / suppress and why."""

    planned: Planned
    contact: Contact
    rendered: Rendered | None
    verdict: Verdict | None  # None when the render failed
    render_error: str | None = None

    @property
    def outcome(self) -> str:
        """'send', 'hold', 'suppress' or 'render_failed'."""
        return self.verdict.action if self.verdict else RENDER_FAILED

    @property
    def rule(self) -> str | None:
        """The hold or suppression rule (or `render_failed`), None when it would be sent."""
        return self.verdict.rule if self.verdict else RENDER_FAILED

    def as_json(self) -> dict[str, Any]:
        """The preview as one JSON-ready dict."""
        rendered, planned = self.rendered, self.planned
        return {
            "enrollment_id": planned.enrollment_id,
            "contact_id": self.contact.id,
            "name": self.contact.display_name,
            "track": planned.track,
            "step": planned.step.number,
            "channel": planned.step.channel,
            "template": planned.step.template,
            "delay_days": planned.step.delay_days,
            "due_at": planned.due_at.isoformat() if planned.due_at else None,
            "decision": self.outcome,
            "rule": self.rule,
            "until": self.verdict.until.isoformat()
            if self.verdict and self.verdict.until
            else None,
            "render_error": self.render_error,
            "subject": rendered.email_subject if rendered else None,
            "body": (rendered.sms_body or rendered.email_text or rendered.task_text)
            if rendered
            else None,
        }


@dataclass(frozen=True)
class _People:
    """What rendering and deciding for a set of batch members needs, loaded in bulk."""

    contacts: dict[int, Contact]
    officers: dict[int, LoanOfficer]
    loans: dict[int, Loan]
    recent: dict[int, RecentSends]
    suppressed: dict[int, frozenset[tuple[str, str]]]
    paused: bool


def preview_touches(
    *,
    session: Session,
    planned: Sequence[Planned],
    now: datetime,
    config: Config,
    sender: Sender,
) -> list[TouchPreview]:
    """Render and decide each planned touch at `now`, as the dispatcher would; writes nothing."""
    people = _load_people(session, [p.member for p in planned], now)
    return [_preview(p, people, now, config, sender) for p in planned]


def _preview(
    planned: Planned, people: _People, now: datetime, config: Config, sender: Sender
) -> TouchPreview:
    member, step = planned.member, planned.step
    contact = people.contacts[member.contact_id]
    try:
        _, rendered = render_touch(
            sender=sender, contact=contact,
            officer=people.officers.get(contact.lo_id) if contact.lo_id else None,
            member=member, loan=people.loans.get(member.loan_id), track=planned.track,
            step=step, now=now,
        )  # fmt: skip
    except RenderError as exc:
        return TouchPreview(planned, contact, None, None, str(exc))
    verdict = decide_touch(
        sender=sender, contact=contact, suppressed=people.suppressed.get(contact.id, frozenset()),
        step=step, rendered=rendered, recent=people.recent.get(contact.id) or RecentSends(),
        paused=people.paused, compliance=config.compliance, now=now,
    )  # fmt: skip
    return TouchPreview(planned, contact, rendered, verdict)


def rows_by_id(session: Session, model: Any, ids: Iterable[int]) -> dict[int, Any]:
    """The rows of `model` with these ids, by id (one query)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.scalars(select(model).where(any_of(session, model.id, wanted)))
    return {row.id: row for row in rows}


def _load_people(session: Session, members: Sequence[BatchMember], now: datetime) -> _People:
    contacts = rows_by_id(session, Contact, (m.contact_id for m in members))
    return _People(
        contacts=contacts,
        officers=rows_by_id(session, LoanOfficer, (c.lo_id for c in contacts.values() if c.lo_id)),
        loans=rows_by_id(session, Loan, (m.loan_id for m in members)),
        recent=recent_sends_for(session=session, contact_ids=sorted(contacts), now=now),
        suppressed=_suppressed(session, list(contacts.values())),
        paused=is_paused(session),
    )


def _suppressed(
    session: Session, contacts: Sequence[Contact]
) -> dict[int, frozenset[tuple[str, str]]]:
    """Each contact's phone and email found on the suppression list, as {(kind, value)}."""
    phones = sorted({c.phone for c in contacts if c.phone})
    emails = sorted({c.email.strip().lower() for c in contacts if c.email})
    if not phones and not emails:
        return {}
    listed = set(
        session.execute(
            select(Suppression.kind, Suppression.value).where(
                or_(
                    (Suppression.kind == "phone") & any_of(session, Suppression.value, phones),
                    (Suppression.kind == "email") & any_of(session, Suppression.value, emails),
                )
            )
        ).all()
    )
    found = {}
    for contact in contacts:
        mine = {("phone", contact.phone or ""), ("email", (contact.email or "").strip().lower())}
        if mine & listed:
            found[contact.id] = frozenset(mine & listed)
    return found


# --- the next touch of an enrollment (`winback preview`) ------------------------------------


def next_touches(
    *,
    session: Session,
    target: str,
    now: datetime,
    config: Config,
    tracks: Mapping[str, Track],
    sender: Sender,
) -> list[TouchPreview]:
    """The next scheduled touch of an enrollment (an id) or of the active enrollments of the
    people holding a phone or email, each rendered and decided as the dispatcher would now."""
    enrollments = _enrollments_for(session, target)
    planned = [_next_planned(session, enrollment, tracks) for enrollment in enrollments]
    return preview_touches(session=session, planned=planned, now=now, config=config, sender=sender)


def _enrollments_for(session: Session, target: str) -> list[Enrollment]:
    raw = target.strip()
    if raw.isdigit() and len(raw) < 10:  # shorter than any phone number: an enrollment id
        enrollment = session.get(Enrollment, int(raw))
        if enrollment is None:
            raise PreviewError(f"there is no enrollment {raw}")
        if enrollment.status != outbox.ACTIVE:
            reason = f" ({enrollment.stop_reason})" if enrollment.stop_reason else ""
            raise PreviewError(f"enrollment {raw} is {enrollment.status}{reason}: nothing to send")
        return [enrollment]
    try:
        kind, value = address_kind(raw)
    except OptOutError as exc:
        raise PreviewError(f"{exc} (nor an enrollment id)") from None
    ids = [contact.id for contact in contacts_with(session=session, kind=kind, value=value)]
    if not ids:
        raise PreviewError(f"nobody in the book has this {kind}")
    found = list(
        session.scalars(
            select(Enrollment)
            .where(any_of(session, Enrollment.contact_id, ids), Enrollment.status == outbox.ACTIVE)
            .order_by(Enrollment.id)
        )
    )
    if not found:
        raise PreviewError(f"nobody with this {kind} walks a track: nothing to send")
    return found


def _next_planned(session: Session, enrollment: Enrollment, tracks: Mapping[str, Track]) -> Planned:
    message = session.scalar(
        select(Message)
        .where(Message.enrollment_id == enrollment.id, Message.status == outbox.SCHEDULED)
        .order_by(Message.step)
        .limit(1)
    )
    if message is None:
        raise PreviewError(f"enrollment {enrollment.id} has no touch left to send")
    track = tracks.get(enrollment.track)
    if track is None or not 1 <= message.step <= len(track.steps):
        raise PreviewError(f"track {enrollment.track} has no step {message.step}")
    member = session.get(BatchMember, enrollment.batch_member_id)
    if member is None:
        raise PreviewError(f"enrollment {enrollment.id} has no batch membership")
    step = track.steps[message.step - 1]
    return Planned(member, track.name, step, message.due_at, enrollment.id)
