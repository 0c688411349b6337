"""The funnel: what outreach did in a period, by segment, trigger or loan officer (SPEC §2.8, §4).

Every column counts what happened in the period, from ``since`` (None: the beginning) up to and
including ``now``. Each event is attributed to exactly one enrollment, and through it to one
group, so a row never counts another group's work and the totals are the rows' sums.

An enrollment's group: ``segment`` is its batch's segment, ``trigger`` its batch member's
trigger, ``lo`` the loan officer of the loan it was enrolled for (else the person's own loan
officer), shown by email (``unassigned`` when there is none).

Columns (``messages`` below are SMS and email touches; call tasks are not messages here):

- ``enrolled``: enrollments whose ``enrolled_at`` is in the period.
- ``sent``: messages the provider took (``sent``, ``sandbox``, ``delivered``, ``undelivered``)
  whose ``sent_at`` is in the period. ``unknown`` (beside it): the provider's answer was lost.
- ``delivered``: of those, the ones the carrier confirmed (SMS status callbacks; email and the
  sandbox never confirm, so they stay ``sent``).
- ``failed``: messages ``failed`` (refused, retries exhausted) or ``undelivered`` (the carrier
  gave up), timed by ``sent_at``, else by when the failure was written. An undelivered text is
  in ``sent`` and in ``failed``.
- ``suppressed``: messages a rule forbade for good, timed by when that was written;
  ``suppressed_by_rule`` splits them by rule (opted_out, no_consent, bad_number…).
- ``opened`` / ``clicked``: distinct messages with a human open / click in the period.
  ``machine_opened`` / ``machine_clicked``: distinct messages whose only opens / clicks in the
  period were machines' (privacy proxies, link scanners); never in ``opened`` / ``clicked``.
- ``visited``: distinct enrollments with a human savings-page visit in the period.
- ``replied``: distinct enrollments with a warm reply received in the period. A reply belongs
  to the enrollment of the touch it answered, else to the person's latest enrollment begun by
  the time it arrived; replies from outside the book or from people never enrolled count nowhere.
- ``claimed``: distinct enrollments with a reply claimed by a loan officer in the period (a
  reply received earlier and claimed now counts here, not in ``replied``);
  ``median_minutes_to_claim``: the median of those claims' minutes from reply to claim;
  ``replied_claimed`` (beside them): of the ``replied`` enrollments, those whose reply has been
  claimed by ``now``.
- ``funded``: distinct enrollments whose person has a loan funded in the period on a day after
  the enrollment began (UTC), given to the latest such enrollment. A simple rule for now: a later
  step adds attribution windows (how long after the last touch a funding still counts).
- ``opted_out``: distinct enrollments whose person opted out in the period (an ``opted_out``
  consent event on any channel, from any source), given to their latest enrollment begun by then.
- ``reached`` (beside them): distinct enrollments with a message sent, sandboxed or delivered in
  the period; the denominator of the reply, funded and opt-out rates.

``rates``: open = opened / emails sent, click = clicked / sent, reply = replied / reached,
claim = replied_claimed / replied, funded = funded / reached, opt_out = opted_out / reached (None
when the denominator is 0; a reply to a touch sent before the period can lift a rate). Everything is
counted with GROUP BY in the database, in one statement.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
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

from core.batches.models import Batch, BatchMember
from core.book.models import FUNDED, OPTED_OUT, Contact, Loan, LoanOfficer
from core.consent.models import ConsentEvent
from core.inbound.engagement import CLICK, OPEN, VISIT
from core.inbound.models import Engagement, Reply
from core.outreach import models as outbox
from core.outreach.models import Enrollment, Message

BY = ("segment", "trigger", "lo")
COLUMNS = (
    "enrolled", "sent", "delivered", "failed", "suppressed", "opened", "clicked", "replied",
    "claimed", "funded", "opted_out",
)  # fmt: skip
EXTRA_COUNTS = (
    "reached", "unknown", "machine_opened", "machine_clicked", "visited", "replied_claimed",
)  # fmt: skip
PERIODS = {"7d": 7, "30d": 30, "90d": 90}
ACCEPTED = "7d, 30d, 90d, all or a date (YYYY-MM-DD)"
UNASSIGNED = "unassigned"

_TOOK = (outbox.SENT, outbox.SANDBOX, outbox.DELIVERED, outbox.UNDELIVERED)
_REACHED = (outbox.SENT, outbox.SANDBOX, outbox.DELIVERED)
_FAILED = (outbox.FAILED, outbox.UNDELIVERED)
_COUNTED = (*_TOOK, outbox.FAILED, outbox.SUPPRESSED, outbox.UNKNOWN)
_CHANNELS = ("sms", "email")


def parse_since(text: str, now: datetime) -> datetime | None:
    """The period's start for 7d/30d/90d/all or an ISO date; ValueError with one line if not."""
    word = text.strip().lower()
    if word == "all":
        return None
    if word in PERIODS:
        return now - timedelta(days=PERIODS[word])
    try:
        start = _moment(text.strip())
    except (ValueError, OverflowError):
        raise ValueError(f"since must be {ACCEPTED}, not {_shown(text)}") from None
    if start > now:
        raise ValueError(
            f"since {start.date().isoformat()} is after now ({now.date().isoformat()})"
        )
    return start


def _moment(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time(), UTC)
    except ValueError:
        moment = datetime.fromisoformat(text)
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)


def _shown(text: str) -> str:
    # repr() keeps a pasted newline or control character from breaking the one error line.
    return repr(text[:40]) + ("…" if len(text) > 40 else "")


@dataclass
class FunnelRow:
    """One group's counts (or the totals)."""

    group: str
    name: str | None = None  # the loan officer's name, when grouped by lo
    counts: Counter[str] = field(default_factory=Counter)
    suppressed_by_rule: Counter[str] = field(default_factory=Counter)
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    claim_minutes: list[float] = field(default_factory=list)

    @property
    def median_minutes_to_claim(self) -> float | None:
        """Median minutes from a warm reply to its claim, over the claims in the period."""
        if not self.claim_minutes:
            return None
        return round(statistics.median(self.claim_minutes), 1)

    def rates(self) -> dict[str, float | None]:
        """The funnel's ratios (see the module docstring), None when nothing to divide by."""
        c = self.counts
        return {
            "open": _ratio(c["opened"], self.sent_by_channel["email"]),
            "click": _ratio(c["clicked"], c["sent"]),
            "reply": _ratio(c["replied"], c["reached"]),
            "claim": _ratio(c["replied_claimed"], c["replied"]),
            "funded": _ratio(c["funded"], c["reached"]),
            "opt_out": _ratio(c["opted_out"], c["reached"]),
        }

    def as_json(self) -> dict[str, Any]:
        """The SPEC's keys first, then the extras."""
        payload: dict[str, Any] = {"group": self.group}
        payload |= {column: self.counts[column] for column in (*COLUMNS, *EXTRA_COUNTS)}
        if self.name is not None:
            payload["name"] = self.name
        return payload | {
            "suppressed_by_rule": dict(sorted(self.suppressed_by_rule.items())),
            "sent_by_channel": {channel: self.sent_by_channel[channel] for channel in _CHANNELS},
            "median_minutes_to_claim": self.median_minutes_to_claim,
            "rates": self.rates(),
        }

    def add(self, other: FunnelRow) -> None:
        """Fold another row into this one (the totals)."""
        self.counts.update(other.counts)
        self.suppressed_by_rule.update(other.suppressed_by_rule)
        self.sent_by_channel.update(other.sent_by_channel)
        self.claim_minutes.extend(other.claim_minutes)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Funnel:
    """The funnel over one period, one row per group, and the totals."""

    since: datetime | None
    until: datetime
    by: str
    rows: list[FunnelRow]
    totals: FunnelRow
    period: str | None = None  # what the user asked for (30d, all, 2026-09-01), if known

    def as_json(self) -> dict[str, Any]:
        """SPEC §4's object: since, by, rows, totals (plus from/until)."""
        return {
            "since": self.period or (self.since.isoformat() if self.since else "all"),
            "by": self.by,
            "rows": [row.as_json() for row in self.rows],
            "totals": self.totals.as_json(),
            "from": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
        }


def funnel(
    session: Session, *, since: datetime | None, by: str, now: datetime, period: str | None = None
) -> Funnel:
    """The funnel from `since` (None: all time) to `now`, grouped by segment, trigger or lo."""
    if by not in BY:
        raise ValueError(f"by must be segment, trigger or lo, not {_shown(by)}")
    tallies: dict[Any, FunnelRow] = {}
    first = session.scalar(select(func.min(Enrollment.enrolled_at)))
    if first is not None:  # nobody was ever enrolled: nothing to count
        _Queries(session, since=since, now=now, by=by, first=first).count(tallies)
    rows = _labelled(session, tallies, by)
    totals = FunnelRow(group="total")
    for each in rows:
        totals.add(each)
    return Funnel(since=since, until=now, by=by, rows=rows, totals=totals, period=period)


def _labelled(session: Session, tallies: dict[Any, FunnelRow], by: str) -> list[FunnelRow]:
    """Rows in a stable order; loan officers shown by email (name beside it)."""
    if by != "lo":
        return [tallies[key] for key in sorted(tallies)]
    ids = [key for key in tallies if key is not None]
    officers = {
        officer.id: officer
        for officer in session.scalars(select(LoanOfficer).where(LoanOfficer.id.in_(ids)))
    }
    for key, row in tallies.items():
        officer = officers.get(key) if key is not None else None
        row.group = officer.email if officer else UNASSIGNED
        row.name = officer.name if officer else ""
    # People read loan officers by name; the unassigned row comes last.
    return sorted(tallies.values(), key=lambda r: (r.group == UNASSIGNED, r.name or "", r.group))


def _groups(by: str) -> Select[Any]:
    """Each enrollment with its group key (segment, trigger, or loan officer id)."""
    query = select(
        Enrollment.id.label("enrollment_id"), Enrollment.batch_member_id, Enrollment.enrolled_at
    ).join(BatchMember, BatchMember.id == Enrollment.batch_member_id)
    if by == "segment":
        query = query.join(Batch, Batch.id == BatchMember.batch_id)
        query = query.add_columns(Batch.segment.label("grp"))
    elif by == "trigger":
        query = query.add_columns(BatchMember.trigger.label("grp"))
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
        "reached"),
    3: ("opened", "machine_opened", "clicked", "machine_clicked", "visited"),
    4: ("replied", "claimed", "replied_claimed"),
    5: ("funded",),
    6: ("opted_out",),
}  # fmt: skip
_RULES, _CLAIMS = 7, 8  # (rule, count) per group; one row per claim, its minutes
_WIDTH = 8


def _when(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _distinct(condition: Any, column: Any) -> Any:
    return func.count(case((condition, column)).distinct())


class _Queries:
    """The whole funnel as ONE statement: the enrollments' groups computed once (a CTE), then a
    UNION ALL of one GROUP BY per table, each joined to them; folded into rows here."""

    def __init__(
        self, session: Session, *, since: datetime | None, now: datetime, by: str, first: datetime
    ):
        self.session, self.since, self.now, self.first = session, since, now, first
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
        """(tag, group, label, v0…v7): the values given, 0 for the rest."""
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
        return (
            self.branch(
                2, g, _when(took), _when(and_(took, channel == "sms")),
                _when(and_(took, channel == "email")), _when(status == outbox.DELIVERED),
                _when(status.in_(_FAILED)), _when(status == outbox.SUPPRESSED),
                _when(status == outbox.UNKNOWN),
                _distinct(status.in_(_REACHED), Message.enrollment_id),
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
        # Only loans funded after the first enrollment can count: an index range, not the book.
        after = max(self.first, self.since or self.first).astimezone(UTC).date()
        loans = (
            select(Loan.id.label("event_id"), Loan.contact_id, Loan.funded_date.label("at"))
            .where(Loan.status == FUNDED, Loan.funded_date >= after)
            .where(Loan.funded_date <= self.now.astimezone(UTC).date())
            .subquery()
        )
        if self.postgres:
            day = cast(func.timezone("UTC", Enrollment.enrolled_at), Date)
        else:
            day = func.date(Enrollment.enrolled_at)  # SQLite keeps naive UTC text, dates as text
        return self.attributed(5, self.latest(loans, lambda events: day < events.c.at))

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
