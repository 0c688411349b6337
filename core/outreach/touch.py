"""One touch for one person: rendered and decided the one way the dispatcher sends it and the
previews (`batch show`, `preview`) show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.batches.models import BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.compliance.caps import RecentSends
from core.compliance.engine import Recipient, Verdict, decide
from core.config import ComplianceConfig
from core.outreach.context import (
    Company,
    Links,
    company_from_settings,
    render_context,
    token_secret,
)
from core.settings import Settings
from core.tracks.config import Step
from core.tracks.render import Rendered, render_step
from core.tracks.variants import variant_for


@dataclass(frozen=True)
class Sender:
    """Who messages go out as: the brokerage's disclosures, the signed links, the From line."""

    company: Company
    links: Links
    email_from: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        """The sender built from the settings (the dispatcher and the previews alike)."""
        links = Links(settings.PUBLIC_BASE_URL, token_secret(settings))
        return cls(company_from_settings(settings), links, settings.EMAIL_FROM)


def render_touch(
    *,
    sender: Sender,
    contact: Contact,
    officer: LoanOfficer | None,
    member: BatchMember,
    loan: Loan | None,
    track: str,
    step: Step,
    now: datetime,
) -> tuple[dict[str, Any], Rendered]:
    """The template context and the rendered step, as the person's A/B variant when the step
    runs an experiment (raises RenderError)."""
    context = render_context(
        contact=contact,
        officer=officer,
        batch_member_id=member.id,
        trigger=member.trigger,
        snapshot=member.snapshot or {},
        loan=loan,
        step=step,
        company=sender.company,
        links=sender.links,
        email_from=sender.email_from,
        now=now,
    )
    rendered = render_step(
        track=track, template=step.template, channel=step.channel, context=context,
        variant=variant_for(track, step, contact.id),
    )  # fmt: skip
    return context, rendered


def decide_touch(
    *,
    sender: Sender,
    contact: Contact,
    suppressed: frozenset[tuple[str, str]],
    step: Step,
    rendered: Rendered,
    recent: RecentSends,
    paused: bool,
    compliance: ComplianceConfig,
    now: datetime,
) -> Verdict:
    """The send-time decision for a rendered touch (COMPLIANCE §0, in order)."""
    company = sender.company
    return decide(
        recipient=Recipient.from_contact(contact, suppressed),
        channel=step.channel,
        at=now,
        recent_sends=recent,
        paused=paused,
        config=compliance,
        rendered_text=rendered.sms_body or rendered.email_text or rendered.task_text,
        first_of_track=step.include_stop,
        company_name=company.name if step.channel == "sms" else None,
        required=company.required_lines(step.channel),
    )
