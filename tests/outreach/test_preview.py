"""Previews render and decide a touch exactly as the dispatcher will, and write nothing."""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.audit.models import AuditEvent
from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.outreach import models as outbox
from core.outreach.batch_details import batch_details
from core.outreach.models import Message
from core.outreach.optout import add_suppression
from core.outreach.preview import Sender, next_touches
from tests.outreach import NOW, approved_book, run_dispatch, sandbox_settings, sessions  # noqa: F401
from tests.triggers.factories import default_config, shipped_tracks


def _written(session: Session) -> tuple[int, int, int]:
    """Audit events, messages no longer scheduled, template versions: what a send writes."""
    audit = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    settled = session.scalar(
        select(func.count()).select_from(Message).where(Message.status != outbox.SCHEDULED)
    )
    versions = session.scalar(select(func.count()).select_from(outbox.TemplateVersion))
    return audit, settled or 0, versions or 0


def test_the_preview_is_the_text_the_dispatcher_sends_and_writes_nothing(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{}, {}])
    first, listed = (book.contact(contact_id) for contact_id in book.contacts)
    with sessions() as session, session.begin():
        add_suppression(session=session, kind="phone", value=listed.phone or "", reason="manual",
                        by="t", now=NOW - timedelta(minutes=1))  # fmt: skip
    settings = sandbox_settings(database_url)
    sender = Sender.from_settings(settings)
    config, tracks = default_config(), shipped_tracks()
    with sessions() as session:
        before = _written(session)
        (texted,) = next_touches(session=session, target=first.phone or "", now=NOW,
                                 config=config, tracks=tracks, sender=sender)  # fmt: skip
        (blocked,) = next_touches(session=session, target=listed.email or "", now=NOW,
                                  config=config, tracks=tracks, sender=sender)  # fmt: skip
        preview = texted.as_json()
        assert _written(session) == before
        session.rollback()
    assert (texted.outcome, texted.planned.step.number, texted.planned.step.channel) == (
        "send", 1, "sms",
    )  # fmt: skip
    assert (blocked.outcome, blocked.rule) == ("suppress", "suppression_list")
    with sessions() as session:
        assert _written(session) == before

    run_dispatch(sessions, settings, SandboxSmsSender(), SandboxEmailSender())
    sent = book.messages(first.id)[0]
    assert (sent.status, sent.body) == (outbox.SANDBOX, preview["body"])
    assert (book.messages(listed.id)[0].status, book.messages(listed.id)[0].rule) == (
        outbox.SUPPRESSED, "suppression_list",
    )  # fmt: skip


def test_batch_details_show_the_top_members_and_count_everyone(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    book = approved_book(sessions, [{}, {}, {"sms_consent": "unknown"}])
    sender = Sender.from_settings(sandbox_settings(database_url))
    assert book.batch_id is not None
    with sessions() as session:
        details = batch_details(session=session, batch_id=book.batch_id, now=NOW,
                                config=default_config(), tracks=shipped_tracks(), sender=sender,
                                limit=2)  # fmt: skip
        shown = details.as_json()
    assert len(shown["members"]) == 2 and shown["size"] == 3
    assert all(m["monthly_savings"] and m["note_rate"] for m in shown["members"])
    assert shown["today"]["send"] == 2
    assert shown["today"]["suppressed"] == {"no_sms_consent": 1}
    assert [s["channel"] for s in shown["samples"]] == ["sms", "email"]
