"""The demo's second half: who texts back and with what words, what each text became, the
claims, and the numbers a user checks at the end.

The texts themselves go through the real web app (bot/demo_web.py posts them, signed, to
/twilio/sms); this module only chooses them and reads back what the product stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.book.models import Contact, LoanOfficer
from core.cards.flows import CLAIM, act_on_reply
from core.cards.models import PENDING, POSTED, REPLY, Card
from core.cards.posting import PostingOptions, SessionFactory
from core.inbound.models import InboundEvent, Reply
from core.outreach.models import Message


@dataclass(frozen=True)
class ScriptedText:
    """What one borrower texts back, and whether their loan officer claims it."""

    words: str
    claim: bool = False


# Real wording, in the order the texts arrive; one opt-out among them. "STOP please" rather
# than a bare STOP: Twilio answers its own single-word keywords, this one reaches Winback,
# which sends the borrower's one confirmation (COMPLIANCE.md §2).
SCRIPT: tuple[ScriptedText, ...] = (
    ScriptedText("Yes, call me", claim=True),
    ScriptedText("What would my rate be?", claim=True),
    ScriptedText("not now, maybe in the spring"),
    ScriptedText("who is this?", claim=True),
    ScriptedText("STOP please"),
    ScriptedText("Sounds good. Can you call me after 5?", claim=True),
    ScriptedText("How much would closing costs be?", claim=True),
    ScriptedText("When could we close if I go ahead?", claim=True),
    ScriptedText("Yes please, my wife and I have been thinking about it", claim=True),
    ScriptedText("Can we look at a 15 year instead?", claim=True),
    ScriptedText("Thanks, will read it tonight"),
)
# Someone the book does not know, who saw a neighbour's text: kept, and sent to the team.
STRANGER = ScriptedText("My neighbor got your text. Could you look at my loan too?")
STRANGER_NUMBERS = ("+14155550123", "+13125550187", "+16175550142")


@dataclass(frozen=True)
class Replier:
    """A person who got a sandbox text and will answer it."""

    contact_id: int | None
    name: str
    phone: str


@dataclass(frozen=True)
class Outcome:
    """What the product made of one inbound text."""

    kind: str  # warm_reply, opt_out, duplicate, ...
    reply_id: int | None = None
    classification: str | None = None
    cancelled: int = 0  # scheduled touches that will not go out now


def pick_repliers(session: Session, count: int) -> list[Replier]:
    """`count` people spread evenly over everyone who got a text, in outbox order (the same
    people every run on the same book and clock); fewer if fewer were texted."""
    rows = session.execute(
        select(Contact.id, Contact.first_name, Contact.last_name, Contact.phone)
        .join(Message, Message.contact_id == Contact.id)
        .where(Message.channel == "sms", Message.status.in_(("sent", "sandbox")))
        .order_by(Message.sent_at, Message.id)
    ).all()
    people: list[Replier] = []
    phones: set[str] = set()
    for contact_id, first, last, phone in rows:
        if phone and phone not in phones:  # spouses share a phone: one reply per phone
            phones.add(phone)
            people.append(Replier(contact_id, f"{first} {last}".strip(), phone))
    if len(people) <= count:
        return people
    stride = len(people) / count
    return [people[int(index * stride)] for index in range(count)]


def stranger(session: Session) -> Replier:
    """A number nobody in the book holds."""
    for phone in STRANGER_NUMBERS:
        if session.scalar(select(Contact.id).where(Contact.phone == phone).limit(1)) is None:
            return Replier(None, "a number not in the book", phone)
    raise LookupError("every stranger number is in the book")


def outcome_of(session: Session, message_sid: str) -> Outcome:
    """What the text with this MessageSid became (the newest ledger row is the text just sent)."""
    event = session.scalars(select(InboundEvent).order_by(InboundEvent.id.desc()).limit(1)).first()
    if event is None or (event.form or {}).get("MessageSid") != message_sid:
        return Outcome("duplicate")
    reply = session.scalar(select(Reply).where(Reply.inbound_event_id == event.id))
    if reply is not None:
        cancelled = int((reply.details or {}).get("cancelled_touches", 0))
        return Outcome("warm_reply", reply.id, reply.classification, cancelled)
    audit = session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "sms.opt_out_received", AuditEvent.subject_id == str(event.id)
        )
    )
    cancelled = int((audit.details or {}).get("cancelled", 0)) if audit is not None else 0
    return Outcome(event.outcome or "unknown", cancelled=cancelled)


def card_place(session: Session, reply_id: int) -> str:
    """Where the reply's card went: the loan officer's channel, or the team channel."""
    officer = session.scalar(
        select(LoanOfficer)
        .join(Card, Card.lo_id == LoanOfficer.id)
        .where(Card.reply_id == reply_id, Card.kind == REPLY)
        .limit(1)
    )
    return f"{officer.name}'s channel" if officer is not None else "the team channel"


@dataclass(frozen=True)
class Claim:
    """One loan officer's press of Claim on one card."""

    reply_id: int
    officer: str
    slack_user: str
    borrower: str
    at: datetime
    minutes: int  # after the reply arrived


def claim_replies(
    *,
    session_factory: SessionFactory,
    posting: PostingOptions,
    reply_ids: Sequence[int],
    after_minutes: Sequence[int],
) -> list[Claim]:
    """Each reply's own loan officer presses Claim a few minutes after it arrived, through the
    core action the Slack button calls; the claims that won, in order."""
    claims = []
    for reply_id, minutes in zip(reply_ids, after_minutes, strict=True):
        with session_factory() as session:
            row = session.execute(
                select(Reply.received_at, LoanOfficer, Contact)
                .join(Card, Card.reply_id == Reply.id)
                .join(LoanOfficer, LoanOfficer.id == Card.lo_id)
                .outerjoin(Contact, Contact.id == Reply.contact_id)
                .where(Reply.id == reply_id, Card.kind == REPLY)
                .limit(1)
            ).first()
        if row is None:  # nobody owns it: the team channel's reply waits for whoever takes it
            continue
        received_at, officer, person = row
        user = officer.slack_user_id or f"U0DEMO{officer.id:03d}"  # as Slack sends body.user.id
        at = received_at + timedelta(minutes=minutes)
        result = act_on_reply(
            session_factory=session_factory, posting=posting, action=CLAIM,
            reply_id=reply_id, by=user, now=at,
        )  # fmt: skip
        if result.changed:
            borrower = f"{person.first_name} {person.last_name}".strip() if person else "?"
            claims.append(Claim(reply_id, officer.name, user, borrower, at, minutes))
    return claims


@dataclass(frozen=True)
class Tally:
    """What the database holds at the end: the numbers a user would check."""

    replies: int
    cards: int
    claimed: int
    pending_cards: int
    unrouted: int
    opt_outs: int  # opt-outs texted in
    confirmations: int  # of them answered with our one confirmation
    still_scheduled: int


def tally(session: Session) -> Tally:
    """Count the warm replies, the posted cards, the claims and the opt-outs now stored."""

    def count(*where: object, model: type = Reply) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    opt_outs = list(
        session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "sms.opt_out_received")
        )
    )
    return Tally(
        replies=count(),
        cards=count(Card.kind == REPLY, Card.status == POSTED, model=Card),
        claimed=count(Reply.claimed_by.is_not(None)),
        pending_cards=count(Card.status == PENDING, model=Card),
        unrouted=count(Reply.routed_at.is_(None)),
        opt_outs=len(opt_outs),
        confirmations=sum(1 for details in opt_outs if (details or {}).get("confirmation_sent")),
        still_scheduled=count(Message.status == "scheduled", model=Message),
    )
