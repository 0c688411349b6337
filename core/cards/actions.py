"""What a loan officer does with a warm reply: claim it, snooze it, close it, stop outreach,
mark it funded.

Each is one conditional UPDATE guarded in the database, so two people pressing at once (or one
pressing twice, or Slack retrying) can never both win; the card is then re-rendered from the
database, never from the button's payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.attribution.service import credit_marked
from core.audit.service import record
from core.book.models import Contact
from core.cards.models import REPLY
from core.cards.service import make_card, needs_update
from core.inbound.models import Reply
from core.outreach.optout import record_opt_out

NOT_INTERESTED = "not_interested"
STOPPED_OUTREACH = "stopped_outreach"
FUNDED = "funded"


class ReplyActionError(LookupError):
    """The reply does not exist (an old or forged button)."""


@dataclass(frozen=True)
class ActionResult:
    """What happened: whether this person's press changed anything, and the reply's state."""

    changed: bool
    claimed_by: str | None
    claimed_at: datetime | None
    outcome: str | None
    # claimed, snoozed, closed, funded; or the refusal: already_claimed, taken, already_closed,
    # not_claimed (Mark funded needs a claim first)
    why: str


def claim_reply(session: Session, *, reply_id: int, by: str, now: datetime) -> ActionResult:
    """Claim a reply for `by`: exactly one of several simultaneous claims wins."""
    won = session.execute(
        update(Reply)
        .where(Reply.id == reply_id, Reply.claimed_by.is_(None))
        .values(claimed_by=by, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    reply = _reply(session, reply_id)
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return _result(reply, False, "already_claimed")
    record(
        session=session, at=now, actor=by, action="reply.claimed",
        subject_type="reply", subject_id=reply_id,
    )  # fmt: skip
    needs_update(session, reply_id=reply_id)
    return _result(reply, True, "claimed")


def snooze_reply(
    session: Session, *, reply_id: int, by: str, now: datetime, minutes: int
) -> ActionResult:
    """Post the reply's card again after `minutes` (unclaimed or claimed by `by` only)."""
    reply = _reply(session, reply_id)
    if reply.claimed_by not in (None, by) or reply.outcome:
        return _result(reply, False, _refusal(reply))
    until = now + timedelta(minutes=minutes)
    reply.snoozed_until = until
    count = (reply.details or {}).get("snoozes", 0) + 1
    reply.details = {**(reply.details or {}), "snoozes": count}
    make_card(
        session, key=f"snooze:{reply_id}:{count}", kind=REPLY, now=now, due_at=until,
        reply_id=reply_id,
    )  # fmt: skip
    record(
        session=session, at=now, actor=by, action="reply.snoozed", subject_type="reply",
        subject_id=reply_id, details={"until": until.isoformat()},
    )  # fmt: skip
    needs_update(session, reply_id=reply_id)
    return _result(reply, True, "snoozed")


def close_reply(
    session: Session, *, reply_id: int, by: str, now: datetime, outcome: str
) -> ActionResult:
    """Record how the conversation ended (not interested, outreach stopped); claims it too."""
    reply = _reply(session, reply_id)
    if reply.claimed_by not in (None, by):
        return _result(reply, False, _refusal(reply))
    done = session.execute(
        update(Reply)
        .where(Reply.id == reply_id, Reply.outcome.is_(None))
        .values(outcome=outcome, outcome_at=now, claimed_by=reply.claimed_by or by,
                claimed_at=reply.claimed_at or now, snoozed_until=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    session.refresh(reply)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return _result(reply, False, "already_closed")
    record(
        session=session, at=now, actor=by, action=f"reply.{outcome}",
        subject_type="reply", subject_id=reply_id,
    )  # fmt: skip
    needs_update(session, reply_id=reply_id)
    return _result(reply, True, "closed")


def stop_outreach(session: Session, *, reply_id: int, by: str, now: datetime) -> ActionResult:
    """The borrower asked not to be contacted: opt them out of every channel, close the reply."""
    reply = _reply(session, reply_id)
    if reply.claimed_by not in (None, by):
        return _result(reply, False, _refusal(reply))
    contact = session.get(Contact, reply.contact_id) if reply.contact_id else None
    record_opt_out(
        session=session, contact=contact, address=None if contact else reply.sender,
        channel=None, source="slack", by=by, now=now,
        evidence=f"stop outreach pressed on reply {reply_id}",
    )  # fmt: skip
    result = close_reply(session, reply_id=reply_id, by=by, now=now, outcome=STOPPED_OUTREACH)
    if not result.changed:
        return result
    return _result(_reply(session, reply_id), True, "closed")


def mark_funded(
    session: Session, *, reply_id: int, by: str, now: datetime, manager: bool = False
) -> ActionResult:
    """The borrower closed: credit the reply's enrollment once, end their sequences, close the
    reply as funded. Only its claimer (or a manager) may, and only once."""
    reply = _reply(session, reply_id)
    if reply.outcome:
        return _result(reply, False, "already_closed")
    if reply.claimed_by is None:
        return _result(reply, False, "not_claimed")
    if reply.claimed_by != by and not manager:
        return _result(reply, False, "taken")
    done = session.execute(
        update(Reply)
        .where(Reply.id == reply_id, Reply.outcome.is_(None), Reply.claimed_by.is_not(None))
        .values(outcome=FUNDED, outcome_at=now, snoozed_until=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(reply)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return _result(reply, False, "already_closed")
    credit = credit_marked(session=session, reply=reply, by=by, now=now)
    record(
        session=session, at=now, actor=by, action="reply.funded", subject_type="reply",
        subject_id=reply_id, details={"credit": credit.id if credit else None},
    )  # fmt: skip
    needs_update(session, reply_id=reply_id)
    return _result(reply, True, "funded")


def _reply(session: Session, reply_id: int) -> Reply:
    reply = session.get(Reply, reply_id)
    if reply is None:
        raise ReplyActionError(f"reply {reply_id} does not exist")
    session.refresh(reply)  # the conditional UPDATE may have changed it under the identity map
    return reply


def _result(reply: Reply, changed: bool, why: str) -> ActionResult:
    return ActionResult(changed, reply.claimed_by, reply.claimed_at, reply.outcome, why)


def _refusal(reply: Reply) -> str:
    return "already_closed" if reply.outcome else "taken"
