"""`python -m bench stats --backend sqlite|postgresql --contacts N`: the funnel over a big book.

The book is built with bulk inserts (the importer would take longer than the thing measured):
N people with a funded loan each, over 20 loan officers; a fifth of them enrolled over the last
180 days in weekly batches of three triggers (one in twenty with an older, finished enrollment
too); three touches each (a text, an email, a last text still scheduled or cancelled) with the
statuses a real outbox has; opens and clicks on a third of the emails (two in five of the opens
Apple's proxy), warm replies from 3 % of the enrolled (most claimed), opt-outs from 2 % (and
imported opt-outs from 3 % of the whole book), and a new funded loan for 1 %.

Timed: `funnel()` for 30d and all, by segment, trigger and lo (median of --runs). Goal: <= 1 s on
PostgreSQL at 1,000,000 contacts.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.common import print_table, scratch_database
from core.attribution.service import credit_funded_loans
from core.batches.models import Batch, BatchMember
from core.book.models import Contact, Loan, LoanOfficer
from core.bulk import allocate_ids, bulk_insert
from core.consent.models import ConsentEvent
from core.db import make_engine, make_sessionmaker, refresh_statistics
from core.holdout import HeldOut
from core.inbound.models import Engagement, InboundEvent, Reply
from core.migrate import upgrade
from core.outreach.models import Enrollment, Message
from core.stats import BY, funnel, holdout_lift, parse_since

NOW = datetime(2026, 9, 25, 15, 0, tzinfo=UTC)
CHUNK = 50_000
OFFICERS = 20
TRIGGERS = (("rate_drop", "refinance"), ("loan_age", "repeat_purchase"),
            ("closing_anniversary", "anniversary"))  # fmt: skip
TABLES = ("loan_officers", "contacts", "loans", "batches", "batch_members", "enrollments",
          "messages", "engagements", "inbound_events", "replies", "consent_events",
          "held_out_members")  # fmt: skip


def _first_of_month_after(funded: date) -> date:
    """The first payment: the first of the month after the next (how closings are scheduled)."""
    month = funded.month + 2
    return date(funded.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def _weighted(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


TEXT_OUTCOMES = (("delivered", 70), ("sent", 10), ("undelivered", 5), ("failed", 2),
                 ("suppressed", 8), ("unknown", 1), ("cancelled", 4))  # fmt: skip
EMAIL_OUTCOMES = (("sent", 80), ("suppressed", 5), ("failed", 1), ("scheduled", 14))
RULES = ("no_consent", "opted_out", "bad_number", "quiet_hours_state")


class _Builder:
    """Rows for one chunk of people, with the ids taken up front."""

    def __init__(self, session: Session, rng: random.Random, officers: list[int],
                 batches: list[tuple[int, str, str, datetime]]) -> None:  # fmt: skip
        self.session, self.rng, self.officers, self.batches = session, rng, officers, batches
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        self.serial = 0

    def people(self, first: int, count: int) -> None:
        """`count` people from number `first`: contacts, loans and their outreach."""
        ids = allocate_ids(self.session, Contact.__table__, count)
        loans = allocate_ids(self.session, Loan.__table__, count)
        stamps = {"created_at": NOW - timedelta(days=400), "updated_at": NOW}
        for n, (contact, loan) in enumerate(zip(ids, loans, strict=True), start=first):
            lo = self.officers[n % OFFICERS]
            funded = date(2015, 1, 1) + timedelta(days=self.rng.randrange(3500))
            self.rows["contacts"].append({
                "id": contact, "first_name": f"Pat{n}", "last_name": "Borrower",
                "phone": f"+1415{n:07d}", "email": f"pat{n}@example.com", "phone_status": "ok",
                "lo_id": lo, "sms_consent": "granted", "email_consent": "granted", **stamps,
            })  # fmt: skip
            amount = self.rng.randrange(150_000, 800_000, 1_000)
            self.rows["loans"].append({
                "id": loan, "loan_number": f"B{n:08d}", "contact_id": contact, "lo_id": lo,
                "status": "funded", "is_arm": False, "funded_date": funded,
                "first_payment_date": _first_of_month_after(funded), "purpose": "purchase",
                "program": "conventional", "term_months": 360, "property_state": "CA",
                "note_rate": Decimal(self.rng.randrange(3000, 8000, 125)) / 1000,
                "loan_amount_cents": amount * 100, "property_value_cents": amount * 125, **stamps,
            })  # fmt: skip
            if self.rng.random() < 0.03:
                self._consent(contact, NOW - timedelta(days=self.rng.randrange(1, 700)), "import")
            if self.rng.random() < 0.2:
                self._outreach(contact, loan, lo)

    def _consent(self, contact: int, at: datetime, source: str) -> None:
        for channel in ("sms", "email"):
            self.rows["consent_events"].append({
                "contact_id": contact, "channel": channel, "old_state": "granted",
                "new_state": "opted_out", "source": source, "actor": "bench", "at": at,
            })  # fmt: skip

    def _member(self, contact: int, loan: int, at: datetime) -> tuple[int, int, str, str]:
        # The week's batch of one of the three triggers (batches are listed week by week).
        week = min(int((NOW - at).days // 7), len(self.batches) // len(TRIGGERS) - 1)
        batch = self.batches[week * len(TRIGGERS) + self.rng.randrange(len(TRIGGERS))]
        member = self._ids(BatchMember)
        self.serial += 1
        self.rows["batch_members"].append({
            "id": member, "batch_id": batch[0], "contact_id": contact, "loan_id": loan,
            "trigger": batch[1], "occasion": f"b{self.serial}", "live": True, "snapshot": {},
            "created_at": at,
        })  # fmt: skip
        return member, batch[0], batch[1], batch[2]

    def _hold(self, contact: int, loan: int, lo: int, at: datetime) -> None:
        # Held out for measurement: a batch member with no enrollment, who funds a bit less.
        member, batch, trigger, _ = self._member(contact, loan, at)
        self.rows["held_out_members"].append({
            "batch_id": batch, "batch_member_id": member, "contact_id": contact,
            "trigger": trigger, "fraction": 0.05, "held_at": at,
        })  # fmt: skip
        self._maybe_funded(contact, lo, at, 0.007)

    def _maybe_funded(self, contact: int, lo: int, began: datetime, chance: float) -> None:
        funded = (began + timedelta(days=self.rng.uniform(20, 60))).date()
        if self.rng.random() < chance and funded <= NOW.date():
            self.rows["loans"].append({
                "loan_number": f"N{contact:09d}", "contact_id": contact, "lo_id": lo,
                "status": "funded", "is_arm": False, "note_rate": Decimal("5.5"),
                "funded_date": funded,
                "created_at": NOW, "updated_at": NOW,
            })  # fmt: skip

    def _enroll(self, contact: int, loan: int, at: datetime, status: str) -> tuple[int, int]:
        member, _, _, track = self._member(contact, loan, at)
        enrollment = self._ids(Enrollment)
        self.rows["enrollments"].append({
            "id": enrollment, "contact_id": contact, "batch_member_id": member,
            "track": track, "status": status, "enrolled_at": at,
        })  # fmt: skip
        return member, enrollment

    def _ids(self, model: Any) -> int:
        # One id at a time from a block taken per chunk (see take_ids).
        return self.pool[model.__tablename__].pop()

    def _outreach(self, contact: int, loan: int, lo: int) -> None:
        rng = self.rng
        began = NOW - timedelta(days=rng.uniform(0, 180))
        if rng.random() < 0.05:  # the holdout's share
            self._hold(contact, loan, lo, began)
            return
        if rng.random() < 0.05:
            self._enroll(contact, loan, began - timedelta(days=rng.uniform(200, 400)), "completed")
        member, enrollment = self._enroll(contact, loan, began, "active")
        text = self._message(enrollment, contact, 1, "sms", _weighted(rng, TEXT_OUTCOMES), began)
        email_at = began + timedelta(days=3)
        email = self._message(
            enrollment, contact, 2, "email", _weighted(rng, EMAIL_OUTCOMES), email_at
        )
        self._message(enrollment, contact, 3, "sms", "scheduled", began + timedelta(days=10))
        if email is not None and rng.random() < 0.33:
            self._engage("open", email, contact, member, email_at, machine=rng.random() < 0.4)
            if rng.random() < 0.25:
                self._engage("click", email, contact, member, email_at, machine=False)
        replied = began + timedelta(hours=rng.uniform(1, 48))
        if text is not None and rng.random() < 0.03 and replied < NOW:
            self._reply(contact, text, replied)
        opted_out = began + timedelta(days=rng.uniform(0, 20))
        if rng.random() < 0.02 and opted_out < NOW:
            self._consent(contact, opted_out, "sms_opt_out/STOP")
        self._maybe_funded(contact, lo, began, 0.01)

    def _message(self, enrollment: int, contact: int, step: int, channel: str, status: str,
                 at: datetime) -> int | None:  # fmt: skip
        """Add a message; its id when it reached the person (for opens and replies)."""
        if at > NOW:
            status = "scheduled"
        message = self._ids(Message)
        took = status in ("delivered", "sent", "undelivered", "unknown")
        self.rows["messages"].append({
            "id": message, "enrollment_id": enrollment, "contact_id": contact, "step": step,
            "channel": channel, "template": "intro", "status": status, "due_at": at,
            "attempts": 0 if status == "scheduled" else 1, "sent_at": at if took else None,
            "rule": self.rng.choice(RULES) if status == "suppressed" else None,
            "updated_at": at,
        })  # fmt: skip
        return message if took and status != "undelivered" else None

    def _engage(self, kind: str, message: int, contact: int, member: int, at: datetime,
                *, machine: bool) -> None:  # fmt: skip
        self.rows["engagements"].append({
            "kind": kind, "message_id": message, "contact_id": contact,
            "batch_member_id": member, "at": at + timedelta(hours=1), "machine": machine,
        })  # fmt: skip

    def _reply(self, contact: int, message: int, at: datetime) -> None:
        event = self._ids(InboundEvent)
        self.rows["inbound_events"].append({
            "id": event, "source": "twilio_sms", "idempotency_key": f"bench-{event}",
            "received_at": at, "form": {}, "headers": {}, "outcome": "warm_reply",
            "contact_id": contact, "message_id": message,
        })  # fmt: skip
        claimed: datetime | None = at + timedelta(minutes=self.rng.uniform(1, 240))
        if self.rng.random() >= 0.8 or (claimed and claimed > NOW):
            claimed = None
        self.rows["replies"].append({
            "inbound_event_id": event, "channel": "sms", "contact_id": contact,
            "message_id": message, "sender": "+14150000000", "body": "yes call me",
            "classification": "interested", "received_at": at,
            "claimed_by": "U0BENCH" if claimed else None, "claimed_at": claimed,
        })  # fmt: skip

    def take_ids(self, count: int) -> None:
        """Enough ids for `count` people's enrollments, messages and replies."""
        wanted = {"batch_members": count // 4 + 100, "enrollments": count // 4 + 100,
                  "messages": count + 300, "inbound_events": count // 20 + 100}  # fmt: skip
        tables = {"batch_members": BatchMember, "enrollments": Enrollment, "messages": Message,
                  "inbound_events": InboundEvent}  # fmt: skip
        self.pool = {
            name: allocate_ids(self.session, tables[name].__table__, n)[::-1]
            for name, n in wanted.items()
        }

    def flush(self) -> None:
        """Insert the chunk's rows, parents first."""
        models = {"contacts": Contact, "loans": Loan, "batch_members": BatchMember,
                  "enrollments": Enrollment, "messages": Message, "engagements": Engagement,
                  "inbound_events": InboundEvent, "replies": Reply,
                  "consent_events": ConsentEvent, "held_out_members": HeldOut}  # fmt: skip
        for name, model in models.items():
            rows = self.rows[name]
            # New loans come without ids: insert them apart, after the ones that have one.
            with_ids = [row for row in rows if "id" in row] if name == "loans" else rows
            bulk_insert(self.session, model.__table__, with_ids)
            if name == "loans":
                extra = [row for row in rows if "id" not in row]
                for row, loan in zip(extra, allocate_ids(self.session, Loan.__table__, len(extra)),
                                     strict=True):  # fmt: skip
                    row["id"] = loan
                bulk_insert(self.session, Loan.__table__, extra)
            rows.clear()


def build(url: str, contacts: int, seed: int = 7) -> None:
    """The book of the module docstring, committed chunk by chunk."""
    rng = random.Random(seed)
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session, session.begin():
        officers = allocate_ids(session, LoanOfficer.__table__, OFFICERS)
        bulk_insert(session, LoanOfficer.__table__, [
            {"id": lo, "email": f"lo{n}@bench.example", "name": f"Officer {n:02d}",
             "created_at": NOW, "updated_at": NOW}
            for n, lo in enumerate(officers)
        ])  # fmt: skip
        batches = []
        for week in range(60):
            for trigger, segment in TRIGGERS:
                at = NOW - timedelta(weeks=week)
                batches.append({"trigger": trigger, "segment": segment, "status": "approved",
                                "size": 0, "created_at": at, "decided_at": at,
                                "decided_by": "bench"})  # fmt: skip
        ids = allocate_ids(session, Batch.__table__, len(batches))
        bulk_insert(
            session, Batch.__table__, [{"id": i, **b} for i, b in zip(ids, batches, strict=True)]
        )
        known = [
            (i, b["trigger"], b["segment"], b["created_at"])
            for i, b in zip(ids, batches, strict=True)
        ]
    for first in _chunks(contacts):
        with sessions() as session, session.begin():
            builder = _Builder(session, rng, officers, known)
            count = min(CHUNK, contacts - first)
            builder.take_ids(count)
            builder.people(first, count)
            builder.flush()
        print(f"  {first + count:,} people", file=sys.stderr, flush=True)
    with sessions() as session, session.begin():  # as the import that brought them would
        newly_funded = session.scalars(
            select(Loan.contact_id).where(Loan.loan_number.like("N%"))
        ).all()
        credit_funded_loans(session=session, contact_ids=newly_funded, now=NOW, window_days=120)
    engine = sessions.kw["bind"]
    refresh_statistics(engine, (*TABLES, "funded_credits"))
    engine.dispose()


def _chunks(total: int) -> Iterator[int]:
    yield from range(0, total, CHUNK)


def measure(url: str, runs: int) -> list[dict[str, Any]]:
    """Median seconds of funnel() per period and grouping."""
    sessions = make_sessionmaker(make_engine(url))
    results = []
    with sessions() as session:
        for period in ("30d", "all"):
            since = parse_since(period, NOW)
            for by in BY:
                times, result = [], None
                for _ in range(runs):
                    started = time.perf_counter()
                    result = funnel(session, since=since, by=by, now=NOW, period=period)
                    times.append(time.perf_counter() - started)
                assert result is not None
                totals = result.totals
                results.append({
                    "since": period, "by": by, "seconds": round(statistics.median(times), 3),
                    "rows": len(result.rows), **{k: totals.counts[k] for k in (
                        "enrolled", "sent", "opened", "replied", "claimed", "funded", "opted_out")},
                })  # fmt: skip
                print(results[-1], file=sys.stderr, flush=True)
            times, lifts = [], []
            for _ in range(runs):  # `winback stats` shows the lift under the funnel
                started = time.perf_counter()
                lifts = holdout_lift(session, since=since, now=NOW, window_days=120)
                times.append(time.perf_counter() - started)
            held, held_funded = (sum(x.holdout for x in lifts),
                                 sum(x.holdout_funded for x in lifts))  # fmt: skip
            results.append({
                "since": period, "by": "holdout lift",
                "seconds": round(statistics.median(times), 3), "rows": len(lifts),
                "enrolled": sum(x.messaged for x in lifts), "sent": "", "opened": "",
                "replied": "", "claimed": "",
                "funded": f"{sum(x.messaged_funded for x in lifts)} (held out: {held_funded} "
                f"of {held})",
                "opted_out": "",
            })  # fmt: skip
            print(results[-1], file=sys.stderr, flush=True)
    return results


def main(argv: list[str]) -> None:
    """Build the book once, then time the funnel."""
    parser = argparse.ArgumentParser(prog="python -m bench stats")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is shown")
    args = parser.parse_args(argv)
    with scratch_database(args.backend) as url:
        upgrade(url)
        started = time.perf_counter()
        build(url, args.contacts)
        print(f"{args.backend}: book ready in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)  # fmt: skip
        rows = [{"backend": args.backend, **row} for row in measure(url, args.runs)]
    print_table(
        f"funnel() over {args.contacts} contacts (goal: <= 1 s on PostgreSQL at 1 M; "
        f"median of {args.runs})",
        rows,
    )
