"""`winback demo` tells the whole story on its own SQLite file, in sandbox mode: outreach, a
dozen replies through the real /twilio/sms, their cards, the claims, the funnel."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.cli import app
from core.audit.models import AuditEvent
from core.book.models import OPTED_OUT, Contact
from core.cards.models import PENDING, POSTED, REPLY, Card
from core.consent.models import Suppression
from core.db import make_engine, make_sessionmaker
from core.inbound.models import TWILIO_SMS, InboundEvent, Reply
from core.outreach.models import Message

KEYS = ["book", "eligible", "batch_size", "sent", "held", "replies", "cards", "claimed"]
NOW = "2026-09-25T15:00:00Z"  # a Friday afternoon on the East Coast
NOWHERE = "http://127.0.0.1:9"  # the discard port: any real call would fail loudly
# An operator's live environment: the demo must still send nothing and post nothing.
LIVE_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-not-for-the-demo",
    "SLACK_SIGNING_SECRET": "not-for-the-demo",
    "SLACK_APPROVALS_CHANNEL": "C0APPROVALS",
    "SLACK_API_URL": NOWHERE,
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "not-for-the-demo",
    "TWILIO_FROM_NUMBER": "+14155550100",
    "TWILIO_API_URL": NOWHERE,
    "SMTP_URL": "smtp://127.0.0.1:9",
    "EMAIL_FROM": "loans@example.com",
    "WINBACK_SECRET_KEY": "test-signing-key",
    "COMPANY_NAME": "Harborline Lending",
    "COMPANY_NMLS_ID": "123456",
    "COMPANY_ADDRESS": "1 Harbor Way, Oakland, CA 94607",
    "COMPANY_LICENSING": "Licensed by the DFPI under the CRMLA",
    "COMPANY_SUPPORT": "support@example.com",
}


def demo(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, ["demo", *args, "--now", NOW], env=env,
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


def test_demo_json_reports_what_the_kept_database_holds(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    env = {**LIVE_ENV, "DATABASE_URL": f"sqlite:///{tmp_path / 'untouched.db'}"}
    (line,) = [line for line in demo("--json", "--keep", "--database", str(database),
                                     env=env).splitlines() if line.strip()]  # fmt: skip
    story = json.loads(line)
    assert list(story)[: len(KEYS)] == KEYS
    assert 700 <= story["book"] <= 900
    assert 80 <= story["eligible"] <= 130  # "about 100 now hold a loan worth refinancing"
    assert story["batch_size"] == story["eligible"]
    assert 0 < story["sent"] <= story["batch_size"]
    assert story["replies"] == 11 and story["cards"] == 11 and story["claimed"] == 8
    assert not (tmp_path / "untouched.db").exists()

    engine = make_engine(f"sqlite:///{database}")
    try:
        with make_sessionmaker(engine)() as session:
            check_the_database(session, story)
    finally:
        engine.dispose()


def check_the_database(session: Session, story: dict[str, int]) -> None:
    def count(model: type, *where: object) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    # Nothing left the machine: every touch that passed is in the outbox as sandbox.
    assert count(Message, Message.status == "sandbox") == story["sent"]
    assert count(Message, Message.status == "sent") == 0
    # The numbers are the stored rows, not the script.
    assert count(Reply) == story["replies"]
    assert count(Card, Card.kind == REPLY, Card.status == POSTED) == story["cards"]
    assert count(Reply, Reply.claimed_by.is_not(None)) == story["claimed"]
    assert count(Card, Card.status == PENDING) == 0  # every card posted, none left pending
    assert count(Reply, Reply.routed_at.is_(None)) == 0
    assert count(Reply, Reply.contact_id.is_(None)) == 1  # the number not in the book
    # Every text came in through /twilio/sms with Twilio's signature header, kept in the ledger.
    events = list(session.scalars(select(InboundEvent).where(InboundEvent.source == TWILIO_SMS)))
    assert len(events) == 12
    assert all(event.headers.get("x-twilio-signature") for event in events)
    # The STOP: one opt-out, one confirmation, the person and number out of every channel.
    (stop,) = [event for event in events if event.form["Body"] == "STOP please"]
    (received,) = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "sms.opt_out_received")
    )
    assert received.details["confirmation_sent"] is True
    person = session.get(Contact, stop.contact_id)
    assert person is not None and person.sms_consent == OPTED_OUT
    phone = stop.form["From"]
    assert count(Suppression, Suppression.kind == "phone", Suppression.value == phone) == 1
    assert count(Message, Message.contact_id == person.id, Message.status == "scheduled") == 0
    assert story["opt_outs"] == 1 and story["confirmations"] == 1


def test_demo_prints_the_story_and_removes_its_database(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    out = demo("--database", str(database))
    for phrase in ("Imported the brokerage's book", "Rates dip", "waiting for a manager",
                   "approved batch", "One worker pass", "Held for later", "The first text",
                   "The first email", "Subject:", "people text back", "POST /twilio/sms",
                   "warm reply (Interested)", "the team channel", "opted out of every channel",
                   "no second confirmation", "press Claim on 8 cards", "Claimed by @",
                   "All 11 cards reached their channels (0 pending"):  # fmt: skip
        assert phrase in out, phrase
    # One card in full, with its four buttons; the STOP's confirmation shown once.
    assert out.count("[Claim]  [Snooze 1 hour]  [Not interested]  [Stop outreach]") == 11
    assert out.count("you are unsubscribed") == 1
    # It ends with the funnel, printed by `winback stats`' own table.
    funnel = out[out.index("Funnel all time") :]
    assert funnel.splitlines()[1].split()[:3] == ["group", "enrolled", "sent"]
    total = next(line for line in funnel.splitlines() if line.startswith("total")).split()
    assert total[8:10] == ["10", "8"]  # replied (the batch's people), claimed
    assert "database was removed" in out
    assert not database.exists()
