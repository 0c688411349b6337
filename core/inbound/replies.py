"""Warm replies: stored first, the person's sequences stopped, then handed to the router.

A reply is anything a person writes back that is not an opt-out, an opt-in or a HELP: "yes call
me", "what rate?", "not now", "who is this?". Whoever wrote it must hear from a loan officer,
not from the next automated touch, so every sequence of the person (and of anyone sharing the
address: spouses share a phone) stops in the same transaction that stores the reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.book.models import Contact
from core.compliance.keywords import normalize, tapback
from core.inbound.models import INTERESTED, NOT_NOW, QUESTION, UNCLEAR, InboundEvent, Reply
from core.inbound.router import ReplyNotice
from core.outreach.models import Message
from core.outreach.service import end_sequences

REPLIED = "replied"
MAX_BODY = 4000  # a pasted essay is kept, but not without bound

# Firm "no": wins over everything, a call request included.
_NOT_NOW = (
    "not now", "not interested", "not at this time", "not right now", "not at the moment",
    "not today", "next year", "next month", "no thanks", "no thank you", "nope", "nah",
    "already refinanced", "already refied", "already did", "all set", "im good", "we are good",
    "were good", "no", "not yet", "sold the house", "sold my house", "sold our house",
    "sold the home", "sold the property", "no gracias", "el proximo ano", "disliked",
)  # fmt: skip
# Soft "not now" ("busy, call me later"): a request to call still wins over it.
_LATER = (
    "later", "maybe later", "busy", "cant talk", "in a meeting", "driving", "at work",
    "mas tarde", "despues", "luego",
)  # fmt: skip
# "no problem" is a yes; it must not read as the "no" above.
_NOT_A_NO = re.compile(r"\bno (problem|prob|worries|doubt|rush)\b")
_CALL_REQUEST = (
    "call me", "give me a call", "please call", "can you call", "could you call", "call after",
    "call back", "call tomorrow", "llamame", "llameme", "llamenme",
)  # fmt: skip
_INTERESTED = (
    "yes", "yeah", "yep", "yup", "yea", "sure", "ok", "okay", "k", "kk", "interested",
    "give me a call", "lets talk", "sounds good", "please call", "tell me more", "id like",
    "i would like", "im interested", "absolutely", "definitely", "go ahead", "text me",
    "email me", "call", "lets do it", "sign me up", "how soon", "liked", "loved",
    "emphasized", "emphasised", "si", "me interesa", "claro", "dale", "por supuesto",
)  # fmt: skip
# "not sure", "don't text me": the word right before a phrase can turn it around.
_NEGATIONS = frozenset({"not", "dont", "never", "cant", "wont", "no"})
_QUESTION_START = re.compile(
    r"^(who|whos|what|whats|how|hows|when|whens|where|wheres|why|which|is|are|can|could|do"
    r"|does|did|will|would|should|questioned|quien|cual|cuanto|cuanta|cuando|donde|como)\b"
)
_QUESTION_ANYWHERE = ("who is this", "whos this", "who dis", "who are you")
_THUMBS_UP = ("👍", "🙌", "👌", "✅", "🙏", "😀", "😊", "🙂", "📞", "☎", "❤", "💯", "👏")
_THUMBS_DOWN = ("👎",)


def classify_reply(text: str) -> str:
    """What the loan officer sees first: interested, question, not_now or unknown."""
    reaction = tapback(text)  # 'Liked "…our text…"': the reaction is their answer, not our words
    source = reaction if reaction is not None else text
    words = normalize(source)
    padded = f" {_NOT_A_NO.sub(' ', words)} "
    if _has(padded, _NOT_NOW) or any(mark in source for mark in _THUMBS_DOWN):
        return NOT_NOW
    if _has(padded, _CALL_REQUEST):
        return INTERESTED
    if _has(padded, _LATER):
        return NOT_NOW
    if "?" in source or "¿" in source or _QUESTION_START.match(words):
        return QUESTION
    if _has(padded, _QUESTION_ANYWHERE):
        return QUESTION
    if _has(padded, _INTERESTED) or any(mark in source for mark in _THUMBS_UP):
        return INTERESTED
    return UNCLEAR


def _has(padded: str, phrases: Sequence[str]) -> bool:
    """A phrase found as whole words, and not right after a negation ("not sure")."""
    for phrase in phrases:
        start = padded.find(f" {phrase} ")
        while start != -1:
            before = padded[:start].split()
            if not before or before[-1] not in _NEGATIONS:
                return True
            start = padded.find(f" {phrase} ", start + 1)
    return False


def latest_touch(session: Session, contact_ids: Sequence[int], channel: str) -> Message | None:
    """The most recent message sent to these people on `channel` (the touch being answered)."""
    if not contact_ids:
        return None
    return session.scalars(
        select(Message)
        .where(
            Message.contact_id.in_(contact_ids),
            Message.channel == channel,
            Message.sent_at.is_not(None),
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    ).first()


def store_reply(
    session: Session,
    *,
    event: InboundEvent,
    channel: str,
    sender: str,
    body: str,
    contacts: Sequence[Contact],
    answered: Message | None,
    now: datetime,
) -> Reply:
    """Store a warm reply and stop every sequence of the people it came from (one transaction).

    `contacts` are everyone holding the sender's address (empty: not in the book); the reply is
    attributed to the person whose touch it answers, else the first of them.
    """
    owner = _owner(contacts, answered)
    reply = Reply(
        inbound_event_id=event.id,
        channel=channel,
        contact_id=owner.id if owner is not None else None,
        message_id=answered.id if answered is not None else None,
        sender=sender[:320],
        body=body.strip()[:MAX_BODY],
        classification=classify_reply(body),
        received_at=now,
    )
    session.add(reply)
    stopped = 0
    for person in contacts:
        stopped += end_sequences(
            session=session, contact_id=person.id, reason=REPLIED, now=now, actor="borrower"
        )
    reply.details = {"cancelled_touches": stopped, "people": [p.id for p in contacts]}
    event.outcome = "warm_reply"
    event.contact_id = reply.contact_id
    event.message_id = reply.message_id
    session.flush()
    return reply


def notice_for(reply: Reply) -> ReplyNotice:
    """What the router is told once the reply's transaction committed."""
    return ReplyNotice(
        reply_id=reply.id,
        channel=reply.channel,
        classification=reply.classification,
        contact_id=reply.contact_id,
    )


def _owner(contacts: Sequence[Contact], answered: Message | None) -> Contact | None:
    if answered is not None:
        for person in contacts:
            if person.id == answered.contact_id:
                return person
    return contacts[0] if contacts else None
