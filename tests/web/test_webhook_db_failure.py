"""The database failing in the middle of a Twilio webhook: 503 (Twilio retries), nothing
half-written, and the same signed request retried lands exactly once.

Two real failures, both after the ledger row and part of the effect were written in the
webhook's transaction:

- the database refuses a write (a trigger raising, as a full disk or a broken constraint
  would): the statement fails, the transaction is rolled back;
- the connection dies (the driver's connection closed under the open transaction): the next
  statement fails with the driver's own error, and the process must recover for the retry.
"""

# Fixtures are imported by name, so every test argument "redefines" them.
# ruff: noqa: F811

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.audit.models import AuditEvent
from core.book.models import Contact
from core.consent.models import ConsentEvent, Suppression
from core.inbound.models import DeliveryEvent, InboundEvent, Reply
from core.outreach.models import Enrollment, Message
from tests.fakes.twilio_api import FakeTwilio, fake_twilio  # noqa: F401
from tests.inbound.texting import sms_form, twiml_message
from tests.outreach import approved_book
from tests.web import ACCOUNT_SID, FROM_NUMBER, LiveWeb, send_texts

REFUSED = "refused"  # the database refuses a write
DIED = "died"  # the connection dies mid-transaction


@dataclass(frozen=True)
class Snapshot:
    """Everything a webhook may write, as stored now."""

    rows: dict[str, int]
    consent: list[tuple[str, str, str]]
    enrollments: list[str]
    messages: list[tuple[str, str | None]]


def snapshot(sessions: sessionmaker[Session]) -> Snapshot:
    """Row counts of every table a webhook writes, and the states it changes."""
    tables = (InboundEvent, Reply, ConsentEvent, Suppression, AuditEvent, DeliveryEvent)
    with sessions() as session:
        rows = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in tables
        }
        consent = session.execute(
            select(Contact.sms_consent, Contact.email_consent, Contact.phone_status).order_by(
                Contact.id
            )
        ).all()
        enrollments = session.scalars(select(Enrollment.status).order_by(Enrollment.id)).all()
        messages = session.execute(
            select(Message.status, Message.error_code).order_by(Message.id)
        ).all()
    return Snapshot(
        rows=rows,
        consent=[tuple(row) for row in consent],  # type: ignore[misc]
        enrollments=list(enrollments),
        messages=[tuple(row) for row in messages],  # type: ignore[misc]
    )


def _touches(statement: str, table: str) -> bool:
    pattern = rf"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?{table}\b"
    return re.search(pattern, statement, re.IGNORECASE) is not None


@contextmanager
def database_refuses(web: LiveWeb, table: str) -> Iterator[None]:
    """A trigger on `table` makes the database refuse every write to it until the block ends."""
    engine = web.runtime.engine
    if engine.dialect.name == "postgresql":
        create = [
            "CREATE FUNCTION wb_test_refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file: No space left on device'; END; $$ "
            "LANGUAGE plpgsql",
            f"CREATE TRIGGER wb_test_refuse BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION wb_test_refuse()",
        ]
        drop = [f"DROP TRIGGER wb_test_refuse ON {table}", "DROP FUNCTION wb_test_refuse()"]
    else:
        create = [
            f"CREATE TRIGGER wb_test_refuse BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        ]
        drop = ["DROP TRIGGER wb_test_refuse"]
    with engine.begin() as connection:
        for statement in create:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with engine.begin() as connection:
            for statement in drop:
                connection.execute(text(statement))


@contextmanager
def connection_dies(web: LiveWeb, table: str) -> Iterator[list[str]]:
    """The web process's database connection dies right before its first write to `table`
    after the ledger row (so the transaction is well under way); yields what it killed."""
    engine = web.runtime.engine
    killed: list[str] = []
    ledger_written = False

    def die(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal ledger_written
        if _touches(statement, "inbound_events"):
            ledger_written = True
        elif ledger_written and not killed and _touches(statement, table):
            killed.append(statement.split("(")[0].strip())
            conn.connection.dbapi_connection.close()  # the statement now runs on a dead link

    event.listen(engine, "before_cursor_execute", die)
    try:
        yield killed
    finally:
        event.remove(engine, "before_cursor_execute", die)


@contextmanager
def failing(web: LiveWeb, how: str, table: str) -> Iterator[None]:
    """The database fails in one of the two ways while the block runs."""
    if how == REFUSED:
        with database_refuses(web, table):
            yield
        return
    with connection_dies(web, table) as killed:
        yield
    assert killed, f"no write to {table} came after the ledger row: nothing was killed"


def _borrower(web: LiveWeb) -> str:
    book = approved_book(web.sessions, [{}])
    return book.contact(book.contacts[0]).phone or ""


def _fails_then_lands_once(
    web: LiveWeb, how: str, table: str, path: str, form: dict[str, str], headers: dict[str, str]
) -> tuple[Snapshot, Snapshot, Any]:
    """Post the webhook while the database fails, then twice more; (before, after, answer)."""
    before = snapshot(web.sessions)
    with failing(web, how, table):
        failed = web.twilio_post(path, form, headers=headers)
    assert failed.status_code == 503, failed.text
    assert snapshot(web.sessions) == before  # nothing half-written
    assert web.router.notices == []

    retried = web.twilio_post(path, form, headers=headers)
    assert retried.status_code == 200, retried.text
    after = snapshot(web.sessions)
    assert after.rows["inbound_events"] == before.rows["inbound_events"] + 1

    again = web.twilio_post(path, form, headers=headers)  # Twilio's retry of the retry
    assert again.status_code == 200
    assert snapshot(web.sessions) == after  # exactly once
    return before, after, retried


@pytest.mark.parametrize(("how", "table"), [(REFUSED, "replies"), (DIED, "audit_events")])
@pytest.mark.parametrize("token", ["", "idem-warm-1"])
def test_a_warm_reply_is_all_or_nothing(web: LiveWeb, how: str, table: str, token: str) -> None:
    phone = _borrower(web)
    headers = {"I-Twilio-Idempotency-Token": token} if token else {}
    form = sms_form("yes call me", phone)

    before, after, answer = _fails_then_lands_once(web, how, table, "/twilio/sms", form, headers)

    assert twiml_message(answer) is None
    assert after.rows["replies"] == before.rows["replies"] + 1
    assert before.enrollments == ["active"] and after.enrollments == ["stopped"]
    assert after.consent == before.consent
    assert len(web.router.notices) == 1  # routed once, after the commit that held


@pytest.mark.parametrize(("how", "table"), [(REFUSED, "consent_events"), (DIED, "suppressions")])
def test_a_stop_is_all_or_nothing(
    web: LiveWeb, how: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    phone = _borrower(web)
    form = sms_form("please stop texting me", phone)

    with caplog.at_level("INFO"):
        before, after, answer = _fails_then_lands_once(web, how, table, "/twilio/sms", form, {})

    assert any("503, Twilio retries" in line for line in caplog.messages)
    assert not [line for line in caplog.messages if phone[2:] in line]  # the error is masked

    assert before.consent == [("granted", "granted", "ok")]
    assert after.consent == [("opted_out", "opted_out", "ok")]
    assert after.rows["suppressions"] == 1 and after.enrollments == ["stopped"]
    assert twiml_message(answer) is not None  # the one confirmation, on the retry that landed
    assert web.router.notices == []


@pytest.mark.parametrize(("how", "table"), [(REFUSED, "suppressions"), (DIED, "consent_events")])
def test_a_status_callback_is_all_or_nothing(
    web: LiveWeb, database_url: str, fake_twilio: FakeTwilio, how: str, table: str
) -> None:
    (sent,) = send_texts(web.sessions, database_url, fake_twilio, 1)
    form = {
        "MessageSid": sent.sid, "SmsSid": sent.sid, "AccountSid": ACCOUNT_SID,
        "MessageStatus": "undelivered", "SmsStatus": "undelivered", "ErrorCode": "21610",
        "From": FROM_NUMBER, "To": sent.phone, "ApiVersion": "2010-04-01",
    }  # fmt: skip
    headers = {"I-Twilio-Idempotency-Token": "idem-status-1"}

    before, after, answer = _fails_then_lands_once(web, how, table, "/twilio/status", form, headers)

    assert answer.text == ""
    assert before.messages == [("sent", None)] and after.messages == [("undelivered", "21610")]
    assert after.rows["delivery_events"] == 1 and after.rows["suppressions"] == 1
    assert after.consent == [("opted_out", "opted_out", "ok")]
