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
  ``median_minutes_to_claim``: the median of those claims' minutes from reply to claim.
- ``funded``: distinct enrollments whose person has a loan funded in the period on a day after
  the enrollment began (UTC), given to the latest such enrollment. A simple rule for now: a later
  step adds attribution windows (how long after the last touch a funding still counts).
- ``opted_out``: distinct enrollments whose person opted out in the period (an ``opted_out``
  consent event on any channel, from any source), given to their latest enrollment begun by then.
- ``reached`` (beside them): distinct enrollments with a message sent, sandboxed or delivered in
  the period; the denominator of the reply, funded and opt-out rates.

``rates``: open = opened / emails sent, click = clicked / sent, reply = replied / reached,
claim = claimed / replied, funded = funded / reached, opt_out = opted_out / reached (None when the
denominator is 0). Everything is counted with GROUP BY in the database, one query per table.
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
    Subquery,
    and_,
    case,
    cast,
    false,
    func,
    or_,
    select,
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
EXTRA_COUNTS = ("reached", "unknown", "machine_opened", "machine_clicked", "visited")
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

    def __getitem__(self, column: str) -> int:
        return self.counts[column]

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
            "claim": _ratio(c["claimed"], c["replied"]),
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
    session: Session,
    *,
    since: datetime | None,
    by: str,
    now: datetime,
    period: str | None = None,
) -> Funnel:
    """The funnel from `since` (None: all time) to `now`, grouped by segment, trigger or lo."""
    if by not in BY:
        raise ValueError(f"by must be segment, trigger or lo, not {_shown(by)}")
    query = _Queries(session, since=since, now=now, by=by)
    tallies: dict[Any, FunnelRow] = {}

    def row(key: Any) -> FunnelRow:
        return tallies.setdefault(key, FunnelRow(group=str(key)))

    query.enrollments(row)
    query.messages(row)
    query.engagements(row)
    query.replies(row)
    query.funded(row)
    query.opt_outs(row)
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
    named = []
    for key, row in tallies.items():
        officer = officers.get(key) if key is not None else None
        row.group = officer.email if officer else UNASSIGNED
        row.name = officer.name if officer else ""
        named.append(row)
    # People read loan officers by name; the unassigned row comes last.
    return sorted(named, key=lambda r: (r.group == UNASSIGNED, r.name or "", r.group))


def _groups(by: str) -> Subquery:
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
        # The loan the person was enrolled for decides; an LO-less loan falls back to the person's.
        query = query.join(Loan, Loan.id == BatchMember.loan_id)
        query = query.join(Contact, Contact.id == Enrollment.contact_id)
        query = query.add_columns(func.coalesce(Loan.lo_id, Contact.lo_id).label("grp"))
    return query.subquery("enrollment_group")


class _Queries:
    """The GROUP BY queries behind the funnel, over one period and one grouping."""

    def __init__(self, session: Session, *, since: datetime | None, now: datetime, by: str):
        self.session = session
        self.since, self.now = since, now
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.g = _groups(by)

    def within(self, column: Any) -> ColumnElement[bool]:
        """`column` falls in the period (timestamps)."""
        bounds = [column <= self.now]
        if self.since is not None:
            bounds.append(column >= self.since)
        return and_(*bounds)

    def within_days(self, column: Any) -> ColumnElement[bool]:
        """`column` falls in the period (dates, in UTC)."""
        bounds = [column <= self.now.astimezone(UTC).date()]
        if self.since is not None:
            bounds.append(column >= self.since.astimezone(UTC).date())
        return and_(*bounds)

    def utc_day(self, column: Any) -> ColumnElement[Any]:
        """The UTC calendar day of a timestamp column, comparable with a Date column."""
        if self.postgres:
            return cast(func.timezone("UTC", column), Date)
        return func.date(column)  # SQLite keeps naive UTC text; dates are 'YYYY-MM-DD' text

    def grouped(self, query: Select[Any]) -> list[Any]:
        return list(self.session.execute(query.group_by(self.g.c.grp)))

    def enrollments(self, row: Any) -> None:
        g = self.g
        for key, n in self.grouped(
            select(g.c.grp, func.count()).where(self.within(g.c.enrolled_at))
        ):
            row(key).counts["enrolled"] += n

    def messages(self, row: Any) -> None:
        g = self.g
        moment = func.coalesce(Message.sent_at, Message.updated_at)  # failures have no sent_at
        query = (
            select(g.c.grp, Message.status, Message.channel, Message.rule, func.count())
            .join(g, g.c.enrollment_id == Message.enrollment_id)
            .where(Message.status.in_(_COUNTED), Message.channel.in_(_CHANNELS))
            .where(self.within(moment))
            .group_by(Message.status, Message.channel, Message.rule)
        )
        for key, status, channel, why, n in self.grouped(query):
            tally = row(key)
            if status in _TOOK:
                tally.counts["sent"] += n
                tally.sent_by_channel[channel] += n
            tally.counts["delivered"] += n if status == outbox.DELIVERED else 0
            tally.counts["failed"] += n if status in _FAILED else 0
            tally.counts["unknown"] += n if status == outbox.UNKNOWN else 0
            if status == outbox.SUPPRESSED:
                tally.counts["suppressed"] += n
                tally.suppressed_by_rule[why or "suppressed"] += n
        reached = (
            select(g.c.grp, func.count(Message.enrollment_id.distinct()))
            .join(g, g.c.enrollment_id == Message.enrollment_id)
            .where(Message.status.in_(_REACHED), self.within(Message.sent_at))
        )
        for key, n in self.grouped(reached):
            row(key).counts["reached"] += n

    def engagements(self, row: Any) -> None:
        g = self.g
        per_message = (
            select(
                Engagement.message_id,
                Engagement.kind,
                func.max(case((Engagement.machine, 0), else_=1)).label("human"),
            )
            .where(Engagement.kind.in_((OPEN, CLICK)), Engagement.message_id.is_not(None))
            .where(self.within(Engagement.at))
            .group_by(Engagement.message_id, Engagement.kind)
            .subquery()
        )
        query = (
            select(g.c.grp, per_message.c.kind, func.sum(per_message.c.human), func.count())
            .join(Message, Message.id == per_message.c.message_id)
            .join(g, g.c.enrollment_id == Message.enrollment_id)
            .group_by(per_message.c.kind)
        )
        for key, kind, human, n in self.grouped(query):
            word = "opened" if kind == OPEN else "clicked"
            row(key).counts[word] += int(human or 0)
            row(key).counts[f"machine_{word}"] += n - int(human or 0)
        visits = (
            select(g.c.grp, func.count(g.c.enrollment_id.distinct()))
            .select_from(Engagement)
            .join(g, g.c.batch_member_id == Engagement.batch_member_id)
            .where(Engagement.kind == VISIT, Engagement.machine == false())
            .where(self.within(Engagement.at))
        )
        for key, n in self.grouped(visits):
            row(key).counts["visited"] += n

    def replies(self, row: Any) -> None:
        g = self.g
        window = or_(self.within(Reply.received_at), self.within(Reply.claimed_at))
        unanswered = (
            select(Reply.id.label("event_id"), Reply.contact_id, Reply.received_at.label("at"))
            .where(Reply.message_id.is_(None), Reply.contact_id.is_not(None), window)
            .subquery()
        )
        latest = self.latest(unanswered, lambda events: Enrollment.enrolled_at <= events.c.at)
        answered = func.coalesce(Message.enrollment_id, latest.c.enrollment_id)
        replies = (
            select(Reply.received_at, Reply.claimed_at, answered.label("enrollment_id"))
            .outerjoin(Message, Message.id == Reply.message_id)
            .outerjoin(latest, latest.c.event_id == Reply.id)
            .where(window)
            .subquery()
        )
        received, claimed = self.within(replies.c.received_at), self.within(replies.c.claimed_at)
        counts = select(
            g.c.grp,
            func.count(case((received, replies.c.enrollment_id)).distinct()),
            func.count(case((claimed, replies.c.enrollment_id)).distinct()),
        ).join(g, g.c.enrollment_id == replies.c.enrollment_id)
        for key, replied, claims in self.grouped(counts):
            row(key).counts["replied"] += replied
            row(key).counts["claimed"] += claims
        # Claims are pressed by people, a few a day: their times come back one by one.
        times = (
            select(g.c.grp, replies.c.received_at, replies.c.claimed_at)
            .join(g, g.c.enrollment_id == replies.c.enrollment_id)
            .where(claimed)
        )
        for key, received_at, claimed_at in self.session.execute(times):
            minutes = (claimed_at - received_at).total_seconds() / 60
            row(key).claim_minutes.append(max(minutes, 0.0))

    def funded(self, row: Any) -> None:
        loans = (
            select(Loan.id.label("event_id"), Loan.contact_id, Loan.funded_date.label("at"))
            .where(Loan.status == FUNDED, Loan.funded_date.is_not(None))
            .where(self.within_days(Loan.funded_date))
            .subquery()
        )
        latest = self.latest(
            loans, lambda events: self.utc_day(Enrollment.enrolled_at) < events.c.at
        )
        self.count_enrollments(latest, "funded", row)

    def opt_outs(self, row: Any) -> None:
        events = (
            select(ConsentEvent.id.label("event_id"), ConsentEvent.contact_id, ConsentEvent.at)
            .where(ConsentEvent.new_state == OPTED_OUT, self.within(ConsentEvent.at))
            .subquery()
        )
        latest = self.latest(events, lambda events: Enrollment.enrolled_at <= events.c.at)
        self.count_enrollments(latest, "opted_out", row)

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

    def count_enrollments(self, attributed: Subquery, column: str, row: Any) -> None:
        g = self.g
        query = (
            select(g.c.grp, func.count(attributed.c.enrollment_id.distinct()))
            .select_from(attributed)
            .join(g, g.c.enrollment_id == attributed.c.enrollment_id)
        )
        for key, n in self.grouped(query):
            row(key).counts[column] += n
