"""Shared builders for the outreach tests: a committed book, live settings, a loopback SMTP."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.book.models import Contact, LoanOfficer
from core.channels.base import EmailSender, SmsSender
from core.channels.email import SmtpEmailSender
from core.channels.sms import TwilioSmsSender
from core.config import Config
from core.db import make_engine, make_sessionmaker
from core.flows import approve_batch, evaluate
from core.outreach.dispatcher import DispatchOptions, DispatchReport, dispatch
from core.outreach.models import Message
from core.settings import Settings, load_settings
from core.tracks.config import Track
from tests.fakes.twilio_api import FakeTwilio
from tests.triggers.factories import (
    default_config,
    make_contact,
    make_lo,
    make_loan,
    set_rate,
    shipped_tracks,
)

# A Thursday, 11:00 in California: every window is open for the default CA borrower.
NOW = datetime(2026, 9, 24, 18, 0, tzinfo=UTC)
BASE_URL = "https://winback.example.com"
COMPANY = {
    "COMPANY_NAME": "Maple Mortgage",
    "COMPANY_NMLS_ID": "123456",
    "COMPANY_ADDRESS": "1 Market St, San Francisco, CA 94105",
    "COMPANY_LICENSING": "Licensed by the California DFPI under the CFL, license 60DBO-12345.",
    "COMPANY_SUPPORT": "(415) 555-0199 or maple.example.com/help",
}


def sessions_for(url: str) -> sessionmaker[Session]:
    """A session factory on a test database."""
    return make_sessionmaker(make_engine(url))


def sandbox_settings(url: str, **extra: str) -> Settings:
    """Settings with no real channel: SMS and email go to the sandbox outbox."""
    return load_settings(DATABASE_URL=url, PUBLIC_BASE_URL=BASE_URL, **extra)


def live_settings(
    url: str, twilio: FakeTwilio | None = None, smtp_url: str | None = None
) -> Settings:
    """Settings as a real install has them, pointed at the loopback fakes."""
    values: dict[str, Any] = {
        "DATABASE_URL": url,
        "PUBLIC_BASE_URL": BASE_URL,
        "WINBACK_SECRET_KEY": "test-signing-key",
        **COMPANY,
    }
    if twilio is not None:
        values |= {
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_FROM_NUMBER": "+14155550100",
            "TWILIO_API_URL": twilio.url,
        }
    if smtp_url is not None:
        values |= {"SMTP_URL": smtp_url, "EMAIL_FROM": "Maple Mortgage <loans@maple.example.com>"}
    return load_settings(**values)


def twilio_sender(twilio: FakeTwilio, timeout: float = 10.0) -> TwilioSmsSender:
    """The real Twilio client pointed at the fake."""
    return twilio_sender_for(twilio.url, twilio.account_sid, twilio.auth_token, timeout)


def twilio_sender_for(
    api_url: str, account_sid: str, auth_token: str, timeout: float = 10.0
) -> TwilioSmsSender:
    """The real Twilio client pointed at a fake running anywhere (another process's, too)."""
    return TwilioSmsSender(
        account_sid=account_sid,
        auth_token=auth_token,
        from_number="+14155550100",
        api_url=api_url,
        timeout=timeout,
    )


@dataclass
class Book:
    """People committed to a test database, in an approved rate-drop batch."""

    sessions: sessionmaker[Session]
    contacts: list[int] = field(default_factory=list)
    batch_id: int | None = None

    def contact(self, contact_id: int) -> Contact:
        """The person as stored now."""
        with self.sessions() as session:
            found = session.get(Contact, contact_id)
            assert found is not None
            return found

    def messages(self, contact_id: int | None = None) -> list[Message]:
        """Outbox rows (of one person), by id."""
        with self.sessions() as session:
            query = select(Message).order_by(Message.id)
            if contact_id is not None:
                query = query.where(Message.contact_id == contact_id)
            return list(session.scalars(query))


def officer(session: Session, nmls_id: str | None = "765432") -> LoanOfficer:
    """A loan officer with an NMLS ID (the SMS sign-off needs it)."""
    lo = make_lo(session, name="Larry Officer")
    lo.nmls_id = nmls_id
    session.flush()
    return lo


def approved_book(
    sessions: sessionmaker[Session],
    people: list[dict[str, Any]],
    *,
    tracks: Mapping[str, Track] | None = None,
    nmls_id: str | None = "765432",
    approved_at: datetime = NOW,
) -> Book:
    """One person per dict (make_contact fields) with a loan worth refinancing at 6 %, in an
    approved rate-drop batch: their first touches are due at `approved_at`."""
    book = Book(sessions)
    with sessions() as session, session.begin():
        lo = officer(session, nmls_id)
        for fields in people:
            contact = make_contact(session, lo=lo, **fields)
            make_loan(session, contact)
            book.contacts.append(contact.id)
        set_rate(session, "6.0")
        evaluation = evaluate(
            session=session, now=approved_at, config=default_config(),
            tracks=tracks or shipped_tracks(), only=["rate_drop"],
        )  # fmt: skip
        (batch,) = evaluation.batches
        approve_batch(
            session=session, batch_id=batch.id, by="manager", now=approved_at,
            tracks=tracks or shipped_tracks(), config=default_config(),
        )  # fmt: skip
        book.batch_id = batch.id
    return book


def run_dispatch(
    sessions: sessionmaker[Session],
    settings: Settings,
    sms: SmsSender,
    email: EmailSender,
    *,
    now: datetime = NOW,
    config: Config | None = None,
    tracks: Mapping[str, Track] | None = None,
    worker_id: str = "test-worker",
) -> DispatchReport:
    """One dispatch pass with the shipped configuration."""
    options = dispatch_options(
        settings, sms, email, config=config, tracks=tracks, worker_id=worker_id
    )
    return dispatch(session_factory=sessions, now=now, options=options)


def dispatch_options(
    settings: Settings,
    sms: SmsSender,
    email: EmailSender,
    *,
    config: Config | None = None,
    tracks: Mapping[str, Track] | None = None,
    worker_id: str = "test-worker",
    **extra: Any,
) -> DispatchOptions:
    """Dispatch options with the shipped configuration and tracks unless given."""
    return DispatchOptions(
        settings=settings,
        config=config or default_config(),
        tracks=tracks or shipped_tracks(),
        sms=sms,
        email=email,
        worker_id=worker_id,
        **extra,
    )


# --- a loopback SMTP server --------------------------------------------------------------------


@dataclass
class Received:
    """One email the test server accepted."""

    rcpt_tos: list[str]
    message: EmailMessage


class Mailbox:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.peers: set[tuple[str, int]] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append(Received(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        self.peers.add(tuple(session.peer[:2]))
        return "250 2.0.0 Ok: queued"


class LoopbackController(Controller):
    """aiosmtpd's Controller on 127.0.0.1 port 0 (it learns the real port first)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpServer:
    """A running loopback mail server."""

    controller: LoopbackController
    mailbox: Mailbox

    @property
    def url(self) -> str:
        """SMTP_URL for this server."""
        return f"smtp://127.0.0.1:{self.controller.port}"

    def sender(self) -> SmtpEmailSender:
        """The real SMTP sender pointed at this server."""
        return SmtpEmailSender(self.url)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1, port 0."""
    mailbox = Mailbox()
    controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0)
    controller.start()
    yield SmtpServer(controller, mailbox)
    controller.stop()


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh database of the test's own (SQLite and PostgreSQL)."""
    factory = sessions_for(database_url)
    yield factory
    factory.kw["bind"].dispose()


def phone_number(n: int) -> str:
    """The n-th distinct valid San Francisco mobile-style number (n < 1,000,000)."""
    return f"+14152{n:06d}"


# What one seeded touch is: (trigger, track, step, channel, template, snapshot).
SEEDED_TOUCH = {
    "sms": ("rate_drop", "refinance", 1, "sms", "intro", {}),
    "email": ("loan_age", "repeat_purchase", 2, "email", "intro", {"loan_age_years": 5}),
}


def seed_due_texts(
    sessions: sessionmaker[Session], count: int, *, now: datetime = NOW, channel: str = "sms"
) -> None:
    """`count` reachable Californians, each in an approved batch with one touch due at `now`
    (a refinance text, or with channel='email' a repeat-purchase email).

    Built with bulk inserts, so tens of thousands take seconds (tests and the benchmark).
    """
    trigger, track, step, channel, template, snapshot = SEEDED_TOUCH[channel]
    from core.batches.models import APPROVED, Batch, BatchMember
    from core.book.models import Contact, Loan
    from core.bulk import allocate_ids, bulk_insert
    from core.outreach.models import Enrollment

    with sessions() as session, session.begin():
        lo = officer(session)
        seeded = session.scalar(select(func.count()).select_from(Contact)) or 0
        batch = Batch(
            trigger=trigger, segment=track, status=APPROVED, size=count,
            created_at=now, decided_at=now, decided_by="seed",
        )  # fmt: skip
        session.add(batch)
        session.flush()
        contact_ids = allocate_ids(session, Contact.__table__, count)
        loan_ids = allocate_ids(session, Loan.__table__, count)
        member_ids = allocate_ids(session, BatchMember.__table__, count)
        enrollment_ids = allocate_ids(session, Enrollment.__table__, count)
        stamps = {"created_at": now, "updated_at": now}
        ids = zip(contact_ids, loan_ids, member_ids, enrollment_ids, strict=True)
        rows = list(enumerate(ids, start=seeded))
        bulk_insert(session, Contact.__table__, [
            {"id": c, "first_name": f"Pat{n}", "last_name": "Borrower",
             "email": f"pat{n}@example.com", "phone": phone_number(n), "phone_status": "ok",
             "property_state": "CA", "property_zip": "94105", "lo_id": lo.id,
             "sms_consent": "granted", "email_consent": "granted", **stamps}
            for n, (c, _, _, _) in rows
        ])  # fmt: skip
        bulk_insert(session, Loan.__table__, [
            {"id": loan, "loan_number": f"SEED{n:07d}", "contact_id": c, "lo_id": lo.id,
             "status": "funded", "is_arm": False, **stamps}
            for n, (c, loan, _, _) in rows
        ])  # fmt: skip
        bulk_insert(session, BatchMember.__table__, [
            {"id": m, "batch_id": batch.id, "contact_id": c, "loan_id": loan,
             "trigger": trigger, "occasion": f"seed:{n}", "live": True, "snapshot": snapshot,
             "created_at": now}
            for n, (c, loan, m, _) in rows
        ])  # fmt: skip
        bulk_insert(session, Enrollment.__table__, [
            {"id": e, "contact_id": c, "batch_member_id": m, "track": track,
             "status": "active", "enrolled_at": now}
            for _, (c, _, m, e) in rows
        ])  # fmt: skip
        bulk_insert(session, Message.__table__, [
            {"enrollment_id": e, "contact_id": c, "step": step, "channel": channel,
             "template": template, "status": "scheduled", "due_at": now, "attempts": 0,
             "updated_at": now}
            for _, (c, _, _, e) in rows
        ])  # fmt: skip
