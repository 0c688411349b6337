"""An inbound SMS, taken in once: opt-out, opt-in, HELP or a warm reply (COMPLIANCE.md §1–§2).

Everything a text changes (the ledger row, consent, the suppression list, stopped sequences,
the stored reply, the audit trail) is written in ONE transaction: if any of it fails nothing is
written, the web route answers 5xx, and Twilio's retry lands exactly once. A retry of a text
already taken in finds its ledger row and changes nothing, and never gets a second answer.

What the borrower gets back (our TwiML ``<Message>``):

- an opt-out: one confirmation, and only when Twilio did not answer already (no ``OptOutType``
  and not one of Twilio's own single-word keywords) and the number was not opted out before;
- HELP/INFO: the HELP text, unless Twilio answered it (``OptOutType=HELP``);
- START/YES/UNSTOP after an SMS opt-out: nothing (Twilio answers its own keywords);
- anything else (a warm reply, "YES" from someone who never opted out): nothing. A loan
  officer answers it, not a robot.

An opt-out read from a keyword inside a sentence ("call me at the end of the week") is still an
opt-out (ambiguous → opt-out), and it is also stored as a reply, classified ``unknown`` with
``details.ambiguous_opt_out``, so the loan officer sees the words and can call to ask.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.book.models import OPTED_OUT, Contact
from core.compliance.keywords import HELP, OPT_IN, OPT_OUT, Intent, classify_inbound
from core.consent.models import Suppression
from core.inbound.ledger import write_down
from core.inbound.models import TWILIO_SMS, UNCLEAR, InboundEvent, Reply
from core.inbound.replies import latest_touch, notice_for, store_reply
from core.inbound.router import ReplyNotice, ReplyRouter
from core.outreach.context import company_from_settings
from core.outreach.optout import (
    OptOutError,
    address_kind,
    contacts_with,
    record_opt_in_keyword,
    record_opt_out,
)
from core.privacy import mask_phone
from core.settings import Settings, SettingsError
from core.tracks.render import RenderError, render_step

logger = logging.getLogger(__name__)

DUPLICATE = "duplicate"
UNIDENTIFIED = "unidentified"
IDEMPOTENCY_HEADER = "i-twilio-idempotency-token"
BAD_NUMBER = "bad"


@dataclass(frozen=True)
class SmsAnswer:
    """What the web route answers: our one TwiML message (None: an empty ``<Response/>``)."""

    outcome: str  # opt_out, opt_in, help, warm_reply, duplicate, unidentified
    message: str | None = None
    reply_id: int | None = None


def receive_sms(
    *,
    sessions: Callable[[], Session],
    router: ReplyRouter,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    now: datetime,
    settings: Settings,
) -> SmsAnswer:
    """Take in one verified inbound SMS in one transaction; tell the router after the commit.

    Raises when the database fails (nothing written: the caller answers 5xx so Twilio retries).
    """
    fields = {name: str(value).replace("\x00", "") for name, value in form.items()}
    with sessions() as session, session.begin():
        answer, notice = _receive(session, fields, headers, now, settings)
    if notice is not None:
        tell_router(router, notice)
    return answer


def tell_router(router: ReplyRouter, notice: ReplyNotice) -> None:
    """Hand a committed reply to the router; its trouble is logged, never raised (the reply
    is stored and `winback replies --unclaimed` lists it until a router posts it)."""
    try:
        router.reply_received(notice)
    except Exception as exc:  # the router's own failure must not undo or hide the reply
        logger.error(
            "reply %d is stored but the router failed (%s); it waits unrouted",
            notice.reply_id,
            type(exc).__name__,
        )


def idempotency_key(form: Mapping[str, str], headers: Mapping[str, str], event: str) -> str:
    """Twilio's I-Twilio-Idempotency-Token, else MessageSid + event (else a digest of the form)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    token = (lowered.get(IDEMPOTENCY_HEADER) or "").strip()
    if token:
        return token
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if sid:
        return f"{sid}:{event}"
    digest = hashlib.sha256(json.dumps(dict(form), sort_keys=True).encode()).hexdigest()
    return f"form:{digest}:{event}"


def _receive(
    session: Session,
    form: dict[str, str],
    headers: Mapping[str, str],
    now: datetime,
    settings: Settings,
) -> tuple[SmsAnswer, ReplyNotice | None]:
    key = idempotency_key(form, headers, "inbound")
    event = write_down(session, source=TWILIO_SMS, key=key, form=form, headers=headers, now=now)
    if event is None:
        logger.info("inbound SMS %s was taken in before: nothing changes", key[:40])
        return SmsAnswer(DUPLICATE), None
    phone = phone_number(form.get("From", ""))
    if phone is None:  # not a number we could ever text, suppress or call back
        event.outcome = UNIDENTIFIED
        logger.warning("inbound SMS %d has no usable sender number: kept in the ledger", event.id)
        return SmsAnswer(UNIDENTIFIED), None
    body = form.get("Body", "")
    contacts = contacts_with(session=session, kind="phone", value=phone, lock=True)
    if contacts:
        event.contact_id = contacts[0].id
    intent = _intent(body, form.get("OptOutType", ""))
    twilio_answered = bool(form.get("OptOutType", "").strip())
    inbound = _Inbound(session, event, phone, body, contacts, now, settings)
    if intent.kind == OPT_OUT:
        answer, notice = _opt_out(inbound, intent, twilio_answered)
    elif intent.kind == OPT_IN and _opt_in(inbound):
        answer, notice = SmsAnswer("opt_in"), None
    elif intent.kind == HELP:
        answer, notice = _help(inbound, twilio_answered), None
    else:  # a message, or START/YES from someone who never opted out: a warm reply
        answer, notice = _warm_reply(inbound)
    logger.info("inbound SMS %d from %s: %s", event.id, mask_phone(phone), answer.outcome)
    return answer, notice


@dataclass
class _Inbound:
    """One text being taken in, with the people holding its number."""

    session: Session
    event: InboundEvent
    phone: str
    body: str
    contacts: Sequence[Contact]
    now: datetime
    settings: Settings

    @property
    def evidence(self) -> str:
        """What a consent event keeps as its evidence: the ledger row and the words."""
        return f"inbound sms {self.event.id}: {self.body.strip()}"[:500]


def phone_number(raw: str) -> str | None:
    """The E.164 number in Twilio's From/To field; None when it is not a phone number."""
    try:
        kind, value = address_kind(raw)
    except OptOutError:
        return None
    return value if kind == "phone" else None


def _intent(body: str, opt_out_type: str) -> Intent:
    """Our reading of the words; Twilio's OptOutType (it matched its keywords) overrides it."""
    intent = classify_inbound(body)
    twilio_says = {"STOP": OPT_OUT, "START": OPT_IN, "HELP": HELP}.get(opt_out_type.strip().upper())
    if twilio_says is None or twilio_says == intent.kind:
        return intent
    if twilio_says == OPT_OUT or intent.kind != OPT_OUT:  # never read an opt-out as less
        return Intent(twilio_says, exact_keyword=True, matched=opt_out_type.strip().lower())
    return intent


def _already_opted_out(inbound: _Inbound) -> bool:
    """The number is on the suppression list, or everyone holding it opted out of texts."""
    listed = inbound.session.scalar(
        select(Suppression.id).where(
            Suppression.kind == "phone", Suppression.value == inbound.phone
        )
    )
    if listed is not None:
        return True
    return bool(inbound.contacts) and all(c.sms_consent == OPTED_OUT for c in inbound.contacts)


def _opt_out(
    inbound: _Inbound, intent: Intent, twilio_answered: bool
) -> tuple[SmsAnswer, ReplyNotice | None]:
    """Opt the number out of everything; one confirmation at most; an ambiguous one is told."""
    session, event = inbound.session, inbound.event
    already = _already_opted_out(inbound)
    if intent.wrong_number:
        source = "wrong_number"
    else:
        source = "keyword" if intent.exact_keyword else "intent"
    result = record_opt_out(
        session=session, address=inbound.phone, channel="sms", source=source, by="borrower",
        now=inbound.now, evidence=inbound.evidence,
    )  # fmt: skip
    if intent.wrong_number:
        mark_phone_bad(
            session, inbound.contacts, reason="wrong_number", by="borrower", now=inbound.now
        )
    notice = None
    reply_id = None
    if intent.ambiguous:
        notice = _tell_the_officer(inbound, intent)
        reply_id = notice.reply_id
    event.outcome = "opt_out"
    confirm = not (twilio_answered or intent.exact_keyword or already)
    text = system_text("optout_confirmation", inbound.settings) if confirm else None
    record(
        session=session, at=inbound.now, actor="borrower", action="sms.opt_out_received",
        subject_type="inbound_event", subject_id=event.id, reason=source,
        details={"phone": mask_phone(inbound.phone), "contacts": result.contact_ids,
                 "cancelled": result.cancelled, "ambiguous": intent.ambiguous,
                 "already_opted_out": already, "twilio_answered": twilio_answered,
                 "confirmation_sent": text is not None},
    )  # fmt: skip
    return SmsAnswer("opt_out", text, reply_id), notice


def _tell_the_officer(inbound: _Inbound, intent: Intent) -> ReplyNotice:
    """An ambiguous opt-out is kept as a reply too: the officer reads the words and may call."""
    reply = _store(inbound)
    reply.classification = UNCLEAR
    reply.details = {
        **(reply.details or {}),
        "ambiguous_opt_out": True,
        "matched": intent.matched,
    }
    inbound.event.outcome = "opt_out"
    inbound.session.flush()
    return notice_for(reply)


def mark_phone_bad(
    session: Session, contacts: Sequence[Contact], *, reason: str, by: str, now: datetime
) -> list[int]:
    """Mark these people's phone bad (no text or call task goes to it); the ids changed."""
    changed = []
    for person in contacts:
        if person.phone_status == BAD_NUMBER:
            continue
        person.phone_status = BAD_NUMBER
        person.updated_at = now
        changed.append(person.id)
        record(
            session=session, at=now, actor=by,
            action="contact.bad_number", subject_type="contact", subject_id=person.id,
            reason=reason, details={"phone": mask_phone(person.phone or "")},
        )  # fmt: skip
    session.flush()
    return changed


def _opt_in(inbound: _Inbound) -> bool:
    """START/YES/UNSTOP re-subscribes only after an SMS opt-out; False: it is a reply."""
    back = record_opt_in_keyword(
        session=inbound.session, phone=inbound.phone, now=inbound.now, evidence=inbound.evidence
    )
    if not back:
        return False
    inbound.event.outcome = "opt_in"
    inbound.event.contact_id = back[0]
    return True


def _help(inbound: _Inbound, twilio_answered: bool) -> SmsAnswer:
    inbound.event.outcome = "help"
    text = None if twilio_answered else system_text("help", inbound.settings)
    if text is not None:
        record(
            session=inbound.session, at=inbound.now, actor="system", action="sms.help_answered",
            subject_type="inbound_event", subject_id=inbound.event.id,
            details={"phone": mask_phone(inbound.phone)},
        )  # fmt: skip
    return SmsAnswer("help", text)


def _warm_reply(inbound: _Inbound) -> tuple[SmsAnswer, ReplyNotice]:
    reply = _store(inbound)
    record(
        session=inbound.session, at=inbound.now, actor="borrower", action="reply.received",
        subject_type="reply", subject_id=reply.id, reason=reply.classification,
        details={"channel": "sms", "phone": mask_phone(inbound.phone),
                 "contact_id": reply.contact_id},
    )  # fmt: skip
    return SmsAnswer("warm_reply", None, reply.id), notice_for(reply)


def _store(inbound: _Inbound) -> Reply:
    contacts = list(inbound.contacts)
    answered = latest_touch(inbound.session, [person.id for person in contacts], "sms")
    return store_reply(
        inbound.session, event=inbound.event, channel="sms", sender=inbound.phone,
        body=inbound.body, contacts=contacts, answered=answered, now=inbound.now,
    )  # fmt: skip


def system_text(template: str, settings: Settings) -> str | None:
    """The HELP text or the opt-out confirmation for this brokerage; None (logged) when it
    cannot be rendered: the opt-out itself must still be recorded, and a text without the
    brokerage's name must not go out."""
    try:
        company = company_from_settings(settings)
        rendered = render_step(
            track="system", template=template, channel="sms",
            context={"company": company.as_context()},
        )  # fmt: skip
    except (SettingsError, RenderError) as exc:
        logger.error("the %s text cannot be rendered (%s): none is sent", template, exc)
        return None
    return rendered.sms_body
