"""The inbound benchmark's audit of the database: nothing lost, nothing doubled.

A webhook is matched to its ledger row by what Twilio sent (MessageSid, and the status for a
callback), not by the key the route chose, so the check holds whichever key the route uses.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from core.audit.models import AuditEvent
from core.book.models import Contact
from core.consent.models import Suppression
from core.db import make_engine, make_sessionmaker
from core.inbound.models import DeliveryEvent, InboundEvent, Reply
from core.outreach.models import Message

if TYPE_CHECKING:
    from bench.inbound import Sent, Webhook


def identity(form: dict[str, Any]) -> tuple[str, str]:
    """What makes one webhook itself: (MessageSid, MessageStatus or '')."""
    return str(form.get("MessageSid", "")), str(form.get("MessageStatus", ""))


@dataclass
class Findings:
    """Webhooks lost (by check) and extra rows made (by kind)."""

    lost: defaultdict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    extra: Counter[str] = field(default_factory=Counter)

    def check(self, hook: Webhook, what: str, count: int) -> None:
        """`count` rows of `what` exist for `hook`: none is a loss, more than one a double."""
        if count == 0:
            self.lost[what].add(identity(hook.form))
        self.extra[what] += max(0, count - 1)


def verify(url: str, hooks: list[Webhook], results: list[Sent]) -> dict[str, int]:
    """{'lost': webhooks, 'duplicated': extra rows}; what went wrong is printed on stderr."""
    unique = [hook for hook in hooks if not hook.retry]
    found = Findings()
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        ledger = Counter(identity(form) for (form,) in session.execute(select(InboundEvent.form)))
        for hook in unique:
            found.check(hook, "ledger row", ledger.pop(identity(hook.form), 0))
        found.extra["ledger row nobody sent"] += sum(ledger.values())
        _effects(session, unique, found)
        _opt_outs(session, [h for h in unique if h.kind == "stop"], found)
    engine.dispose()
    answers = {identity(r.hook.form): r.body for r in results if not r.hook.retry}
    for hook in (h for h in unique if h.kind == "help"):
        # A HELP's effect is its answer: the help text, in TwiML.
        found.check(hook, "HELP answered", "<Message" in answers.get(identity(hook.form), ""))
    for what, hooks_lost in sorted(found.lost.items()):
        print(f"  lost, {what}: {len(hooks_lost)}", file=sys.stderr)
    for what, count in sorted(found.extra.items()):
        if count:
            print(f"  duplicated, {what}: {count}", file=sys.stderr)
    lost = set().union(*found.lost.values()) if found.lost else set()
    return {"lost": len(lost), "duplicated": sum(found.extra.values())}


def _effects(session: Any, unique: list[Webhook], found: Findings) -> None:
    """A warm reply stored once per warm text; a delivery event once per status callback."""
    replies = Counter(
        identity(form)
        for (form,) in session.execute(
            select(InboundEvent.form).join(Reply, Reply.inbound_event_id == InboundEvent.id)
        )
    )
    for hook in (h for h in unique if h.kind == "warm"):
        found.check(hook, "warm reply stored", replies.pop(identity(hook.form), 0))
    found.extra["reply to a text that was not warm"] += sum(replies.values())
    pairs = select(DeliveryEvent.provider_id, DeliveryEvent.status)
    deliveries = Counter(session.execute(pairs).tuples().all())
    statuses = [h for h in unique if h.kind == "status"]
    for hook in statuses:
        found.check(hook, "delivery event", deliveries[identity(hook.form)])
    delivered = [h for h in statuses if h.form["MessageStatus"] == "delivered"]
    sids = [h.form["MessageSid"] for h in delivered]
    states = select(Message.provider_id, Message.status).where(Message.provider_id.in_(sids))
    final = dict(session.execute(states).tuples().all())
    for hook in delivered:
        found.check(
            hook, "message marked delivered", final.get(hook.form["MessageSid"]) == "delivered"
        )


def _opt_outs(session: Any, stops: list[Webhook], found: Findings) -> None:
    """Each STOP: the number suppressed, and exactly one opt-out in the audit trail."""
    phones = [hook.form["From"] for hook in stops]
    on_list = select(Suppression.value).where(
        Suppression.kind == "phone", Suppression.value.in_(phones)
    )
    suppressed = set(session.scalars(on_list))
    people = dict(
        session.execute(select(Contact.phone, Contact.id).where(Contact.phone.in_(phones)))
        .tuples()
        .all()
    )
    audited = (
        select(AuditEvent.subject_id, func.count())
        .where(AuditEvent.action == "contact.opted_out")
        .where(AuditEvent.subject_id.in_([str(i) for i in people.values()]))
        .group_by(AuditEvent.subject_id)
    )
    recorded = dict(session.execute(audited).tuples().all())
    for hook in stops:
        phone = hook.form["From"]
        found.check(hook, "number suppressed", phone in suppressed)
        found.check(hook, "opt-out recorded", recorded.get(str(people.get(phone)), 0))
