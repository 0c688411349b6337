"""The worked example (SPEC §7): a broker's book, a rate dip, a batch, outreach, replies.

Everything runs through the same core functions the CLI, the worker and Slack use, on a
fresh SQLite file, in sandbox mode (nothing leaves the machine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import Config
from core.flows import approve_batch, evaluate, import_file
from core.outreach.models import Message
from core.rates.service import BUNDLED_HISTORY, current_offer, load_history, record_manual_rate
from core.samplebook import demo_book_path
from core.segments import segment_counts
from core.tracks.config import Track

# The dip the story tells: the 30-year index falls from the last published PMMS week to here.
DIP_30Y = Decimal("5.75")
DIP_15Y = Decimal("5.05")


@dataclass
class DemoResult:
    """The demo's numbers (SPEC §4 `winback demo --json`)."""

    book: int = 0
    eligible: int = 0
    batch_size: int = 0
    sent: int = 0
    held: int = 0
    replies: int = 0
    cards: int = 0
    claimed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The contract's keys, then the story's details."""
        return {
            "book": self.book,
            "eligible": self.eligible,
            "batch_size": self.batch_size,
            "sent": self.sent,
            "held": self.held,
            "replies": self.replies,
            "cards": self.cards,
            "claimed": self.claimed,
            **self.extra,
        }


Say = Callable[[str], None]
Dispatch = Callable[[datetime], dict[str, Any]]


def run_demo(
    *,
    sessions: sessionmaker[Session],
    now: datetime,
    config: Config,
    tracks: dict[str, Track] | Any,
    dispatch: Dispatch,
    say: Say,
    book: Path | None = None,
) -> DemoResult:
    """Tell the story step by step through `say`; return its numbers."""
    result = DemoResult()
    book = book or demo_book_path()
    with sessions() as session, session.begin():
        imported = import_file(session=session, path=book, now=now, actor="demo")
        result.book = imported.contacts_created
        say(
            f"1. Imported the brokerage's book ({book.name}): {imported.rows} loans and "
            f"applications, {imported.contacts_created} people after merging "
            f"{imported.duplicates_merged} duplicate rows, {imported.los_created} loan officers."
        )
        load_history(session=session, path=BUNDLED_HISTORY, now=now)
        before = current_offer(session=session, product="30y", on=now.date(), config=config.rates)
        counts = segment_counts(session=session, now=now, config=config)
        say(
            f"2. Market today: {before.describe() if before else 'no rate'}. Segments: "
            + ", ".join(f"{name} {count}" for name, count in counts.items())
            + "."
        )
    with sessions() as session, session.begin():
        for product, rate in (("30y", DIP_30Y), ("15y", DIP_15Y)):
            record_manual_rate(
                session=session, rate=rate, product=product, on=now.date(), now=now, actor="demo"
            )
        after = current_offer(session=session, product="30y", on=now.date(), config=config.rates)
        counts = segment_counts(session=session, now=now, config=config)
        result.eligible = counts["refinance"]
        say(
            f"3. Rates dip: {after.describe() if after else ''}. {result.eligible} past "
            "borrowers now hold a loan worth refinancing (savings, break-even and seasoning "
            "checked loan by loan)."
        )
        evaluation = evaluate(
            session=session, now=now, config=config, tracks=tracks, only=["rate_drop"]
        )
        (batch,) = evaluation.batches
        result.batch_size = batch.size
        say(
            f"4. Evaluation created batch {batch.id} ({batch.trigger}, {batch.size} people), "
            f"waiting for a manager's approval: {batch.status}."
        )
    approved_at = now + timedelta(minutes=5)
    with sessions() as session, session.begin():
        _, enrolled = approve_batch(
            session=session, batch_id=batch.id, by="demo-manager", now=approved_at,
            tracks=tracks, config=config,
        )  # fmt: skip
        say(
            f"5. A manager approved batch {batch.id}: {enrolled.enrolled} people enrolled in "
            f"the refinance track, {enrolled.messages_scheduled} touches scheduled."
        )
    report = dispatch(approved_at + timedelta(minutes=1))
    result.sent = int(report.get("sent", 0))
    result.held = sum(report.get("held", {}).values())
    suppressed = report.get("suppressed", {})
    say(
        f"6. One worker pass: {result.sent} first touches passed every compliance check "
        f"(sandbox: kept in the outbox, not sent); {result.held} held "
        f"({_rules(report.get('held', {}))}); suppressed: {_rules(suppressed) or 'none'}."
    )
    with sessions() as session:
        result.extra["outbox"] = _outbox(session)
        reached = session.scalar(
            select(func.count(func.distinct(Message.contact_id))).where(
                Message.status.in_(("sent", "sandbox"))
            )
        )
    result.extra["people_reached"] = reached or 0
    say(
        f"7. {reached} of the {result.batch_size} people in the batch got their first touch in "
        "that pass; the rest of each sequence (follow-ups, then a call task for the loan "
        "officer) stays scheduled and stops the moment someone replies or opts out."
    )
    return result


def _rules(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule} {count}" for rule, count in sorted(counts.items()))


def _outbox(session: Session) -> dict[str, int]:
    rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
    return {status: count for status, count in rows}
