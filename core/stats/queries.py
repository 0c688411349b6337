"""The funnel as ONE statement (see core.stats.report for what each column counts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from core.attribution.models import FundedCredit
from core.batches.models import Batch, BatchMember
from core.book.models import OPTED_OUT, Contact, Loan
from core.consent.models import ConsentEvent
from core.inbound.engagement import CLICK, OPEN, VISIT
from core.inbound.models import Engagement, Reply
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message
from core.stats.rows import CHANNELS as _CHANNELS
from core.stats.rows import NO_VARIANT, FunnelRow

_TOOK = (outbox.SENT, outbox.SANDBOX, outbox.DELIVERED, outbox.UNDELIVERED)
_REACHED = (outbox.SENT, outbox.SANDBOX, outbox.DELIVERED)
_FAILED = (outbox.FAILED, outbox.UNDELIVERED)
_COUNTED = (*_TOOK, outbox.FAILED, outbox.SUPPRESSED, outbox.UNKNOWN)


def _variant_group() -> ColumnElement[str]:
    """'refinance/1:b': the track step and A/B arm of the enrollment's first touch that ran an
    experiment (one group per enrollment keeps the totals the rows' sums); else
    'refinance (no variant)'. One primary-key lookup per enrollment (enrollment_id, step)."""
    arm = (
        select(Enrollment.track + "/" + cast(Message.step, String) + ":" + Message.variant)
        .where(Message.enrollment_id == Enrollment.id, Message.variant.is_not(None))
        .order_by(Message.step)
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(arm, Enrollment.track + " " + NO_VARIANT)


def _groups(by: str) -> Select[Any]:
    """Each enrollment with its group key (segment, trigger, loan officer id or A/B arm)."""
    query = select(
        Enrollment.id.label("enrollment_id"),
        Enrollment.batch_member_id,
        Enrollment.enrolled_at,
        Enrollment.status,
    ).join(BatchMember, BatchMember.id == Enrollment.batch_member_id)
    if by == "segment":
        query = query.join(Batch, Batch.id == BatchMember.batch_id)
        query = query.add_columns(Batch.segment.label("grp"))
    elif by == "trigger":
        query = query.add_columns(BatchMember.trigger.label("grp"))
    elif by == "variant":
        query = query.add_columns(_variant_group().label("grp"))
    else:
        # The loan the person was enrolled for decides; an LO-less loan falls back to the
        # person's own (looked up only then: COALESCE stops at the first value).
        own = select(Contact.lo_id).where(Contact.id == Enrollment.contact_id).scalar_subquery()
        query = query.join(Loan, Loan.id == BatchMember.loan_id)
        query = query.add_columns(func.coalesce(Loan.lo_id, own).label("grp"))
    return query


# The union's branches (a tag each) and what their value columns hold, in order.
_BRANCHES = {
    1: ("enrolled",),
    2: ("sent", "sms_sent", "email_sent", "delivered", "failed", "suppressed", "unknown",
        "reached", "reached_settled"),
    3: ("opened", "machine_opened", "clicked", "machine_clicked", "visited"),
    4: ("replied", "claimed", "replied_claimed"),
    5: ("funded", "funded_volume_cents"),
    6: ("opted_out",),
}  # fmt: skip
_RULES, _CLAIMS = 7, 8  # (rule, count) per group; one row per claim, its minutes
_WIDTH = 9


def _when(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _distinct(condition: Any, column: Any) -> Any:
    return func.count(case((condition, column)).distinct())


class Queries:
    """The whole funnel as ONE statement: the enrollments' groups computed once (a CTE), then a
    UNION ALL of one GROUP BY per table, each joined to them; folded into rows here."""

    def __init__(
        self, session: Session, *, since: datetime | None, now: datetime, by: str, first: datetime,
        window_days: int,
    ):  # fmt: skip
        self.session, self.since, self.now, self.first = session, since, now, first
        self.young = now - timedelta(days=window_days)  # active and enrolled after: in progress
        self.postgres = session.get_bind().dialect.name == "postgresql"
        groups = _groups(by)
        # Big branches join the groups computed once (a CTE, hashed); small ones look each of
        # their few enrollments up by primary key (the same query inline).
        self.shared = groups.cte("enrollment_group")
        self.each = groups.subquery("enrollment_group_each")

    def within(self, column: Any) -> ColumnElement[bool]:
        """`column` falls in the period (timestamps)."""
        bounds = [column <= self.now]
        if self.since is not None:
            bounds.append(column >= self.since)
        return and_(*bounds)

    def branch(self, tag: int, g: Any, *values: Any, label: Any = None) -> Select[Any]:
        """(tag, group, label, v0…v8): the values given, 0 for the rest."""
        padded = [*values, *(literal_column("0") for _ in range(_WIDTH - len(values)))]
        return select(
            literal_column(str(tag)).label("tag"),
            g.c.grp,
            (label if label is not None else cast(null(), String)).label("label"),
            *(value.label(f"v{i}") for i, value in enumerate(padded)),
        )

    def count(self, tallies: dict[Any, FunnelRow]) -> None:
        """Fill one FunnelRow per group."""
        branches = (self.enrolled(), self.messages(), self.engagements(), *self.replies(),
                    self.funded(), self.opt_outs(), self.rules())  # fmt: skip
        for tag, key, label, *values in self.session.execute(union_all(*branches)):
            tally = tallies.setdefault(key, FunnelRow(group=str(key)))
            if tag == _RULES:
                tally.suppressed_by_rule[label or "suppressed"] += int(values[0])
            elif tag == _CLAIMS:
                tally.claim_minutes.append(max(float(values[0]), 0.0))
            else:
                for name, value in zip(_BRANCHES[tag], values, strict=False):
                    if name.endswith("_sent"):
                        tally.sent_by_channel[name.removesuffix("_sent")] += int(value or 0)
                    else:
                        tally.counts[name] += int(value or 0)

    def enrolled(self) -> Select[Any]:
        g = self.shared
        return self.branch(1, g, func.count()).where(self.within(g.c.enrolled_at)).group_by(g.c.grp)

    def messages(self) -> Select[Any]:
        g, status, channel = self.shared, Message.status, Message.channel
        # Failures and suppressions have no sent_at: they are timed by when they were written.
        # (An OR, not COALESCE, so the planner can estimate how many rows qualify.)
        moment = or_(
            self.within(Message.sent_at),
            and_(Message.sent_at.is_(None), self.within(Message.updated_at)),
        )
        took = status.in_(_TOOK)
        settled = or_(g.c.status != outbox.ACTIVE, g.c.enrolled_at <= self.young)
        return (
            self.branch(
                2, g, _when(took), _when(and_(took, channel == "sms")),
                _when(and_(took, channel == "email")), _when(status == outbox.DELIVERED),
                _when(status.in_(_FAILED)), _when(status == outbox.SUPPRESSED),
                _when(status == outbox.UNKNOWN),
                _distinct(status.in_(_REACHED), Message.enrollment_id),
                _distinct(and_(status.in_(_REACHED), settled), Message.enrollment_id),
            )
            .select_from(Message)
            .join(g, g.c.enrollment_id == Message.enrollment_id)
            .where(status.in_(_COUNTED), channel.in_(_CHANNELS), moment)
            .group_by(g.c.grp)
        )  # fmt: skip

    def engagements(self) -> Select[Any]:
        g = self.shared
        # The tracking routes record the batch member; a hit without one goes by its message.
        by_message = (
            select(Enrollment.batch_member_id)
            .join(Message, Message.enrollment_id == Enrollment.id)
            .where(Message.id == Engagement.message_id)
            .scalar_subquery()
        )
        member = func.coalesce(Engagement.batch_member_id, by_message)
        # One row per (batch member, message, kind): a message opened twice is one opened message.
        hits = (
            select(
                member.label("batch_member_id"), Engagement.kind,
                func.max(case((Engagement.machine, 0), else_=1)).label("human"),
            )
            .where(Engagement.kind.in_((OPEN, CLICK, VISIT)), self.within(Engagement.at))
            .group_by(member, Engagement.message_id, Engagement.kind)
            .subquery()
        )  # fmt: skip
        human, kind = hits.c.human == 1, hits.c.kind
        return (
            self.branch(
                3, g, _when(and_(kind == OPEN, human)), _when(and_(kind == OPEN, ~human)),
                _when(and_(kind == CLICK, human)), _when(and_(kind == CLICK, ~human)),
                _when(and_(kind == VISIT, human)),
            )
            .select_from(hits)
            .join(g, g.c.batch_member_id == hits.c.batch_member_id)
            .group_by(g.c.grp)
        )  # fmt: skip

    def replies(self) -> tuple[Select[Any], Select[Any]]:
        """Replied/claimed per group, and one row per claim with its minutes."""
        g = self.each
        window = or_(self.within(Reply.received_at), self.within(Reply.claimed_at))
        unanswered = (
            select(Reply.id.label("event_id"), Reply.contact_id, Reply.received_at.label("at"))
            .where(Reply.message_id.is_(None), Reply.contact_id.is_not(None), window)
            .subquery()
        )
        latest = self.latest(unanswered, lambda events: Enrollment.enrolled_at <= events.c.at)
        # The answered touch by primary key (a join tempts the planner to scan every message).
        touch = select(Message.enrollment_id).where(Message.id == Reply.message_id)
        answered = func.coalesce(touch.scalar_subquery(), latest.c.enrollment_id)
        replies = (
            select(Reply.received_at, Reply.claimed_at, answered.label("enrollment_id"))
            .outerjoin(latest, latest.c.event_id == Reply.id)
            .where(window)
            .cte("period_replies")
        )
        r = replies.c
        received, claimed = self.within(r.received_at), self.within(r.claimed_at)
        counts = (
            self.branch(
                4, g, _distinct(received, r.enrollment_id), _distinct(claimed, r.enrollment_id),
                _distinct(and_(received, r.claimed_at <= self.now), r.enrollment_id),
            )
            .select_from(replies)
            .join(g, g.c.enrollment_id == r.enrollment_id)
            .group_by(g.c.grp)
        )  # fmt: skip
        if self.postgres:
            minutes = func.extract("epoch", r.claimed_at - r.received_at) / 60
        else:
            minutes = (func.julianday(r.claimed_at) - func.julianday(r.received_at)) * 1440
        claims = (
            self.branch(_CLAIMS, g, minutes)
            .select_from(replies)
            .join(g, g.c.enrollment_id == r.enrollment_id)
            .where(claimed)
        )
        return counts, claims

    def funded(self) -> Select[Any]:
        """Credited enrollments (distinct) and their loans' amounts, by the funded date."""
        g, credit = self.each, FundedCredit
        days = [credit.funded_date <= self.now.astimezone(UTC).date()]
        if self.since is not None:
            days.append(credit.funded_date >= self.since.astimezone(UTC).date())
        return (
            self.branch(
                5, g, func.count(credit.enrollment_id.distinct()),
                func.coalesce(func.sum(Loan.loan_amount_cents), 0),
            )
            .select_from(credit)
            .join(g, g.c.enrollment_id == credit.enrollment_id)
            .outerjoin(Loan, Loan.id == credit.loan_id)
            .where(*days)
            .group_by(g.c.grp)
        )  # fmt: skip

    def opt_outs(self) -> Select[Any]:
        events = (
            select(ConsentEvent.id.label("event_id"), ConsentEvent.contact_id, ConsentEvent.at)
            .where(ConsentEvent.new_state == OPTED_OUT, self.within(ConsentEvent.at))
            .subquery()
        )
        latest = self.latest(events, lambda events: Enrollment.enrolled_at <= events.c.at)
        return self.attributed(6, latest)

    def rules(self) -> Select[Any]:
        g = self.shared
        return (
            self.branch(_RULES, g, func.count(), label=Message.rule)
            .select_from(Message)
            .join(g, g.c.enrollment_id == Message.enrollment_id)
            .where(Message.status == outbox.SUPPRESSED, Message.channel.in_(_CHANNELS))
            .where(self.within(Message.updated_at))
            .group_by(g.c.grp, Message.rule)
        )

    def latest(self, events: Subquery, began: Any) -> Subquery:
        """(event_id, enrollment_id): each event given to its person's latest enrollment that
        `began(events)` says had begun by then."""
        rank = func.row_number().over(
            partition_by=events.c.event_id,
            order_by=(Enrollment.enrolled_at.desc(), Enrollment.id.desc()),
        )
        ranked = (
            select(events.c.event_id, Enrollment.id.label("enrollment_id"), rank.label("rank"))
            .select_from(events)
            .join(Enrollment, and_(Enrollment.contact_id == events.c.contact_id, began(events)))
            .subquery()
        )
        return (
            select(ranked.c.event_id, ranked.c.enrollment_id).where(ranked.c.rank == 1).subquery()
        )

    def attributed(self, tag: int, latest: Subquery) -> Select[Any]:
        """Distinct enrollments per group among events given to them."""
        g = self.each
        return (
            self.branch(tag, g, func.count(latest.c.enrollment_id.distinct()))
            .select_from(latest)
            .join(g, g.c.enrollment_id == latest.c.enrollment_id)
            .group_by(g.c.grp)
        )
