"""The demo's first half (SPEC §7): a broker's book, a rate dip, a batch, compliant outreach.

Everything runs through the same core functions the CLI, the worker and Slack use, on the
demo's own database, in sandbox mode (nothing leaves the machine).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.book.models import Contact
from core.config import Config
from core.demo.story import DemoResult, Story, StoryClock
from core.flows import approve_batch, evaluate, import_file
from core.outreach.models import Message
from core.privacy import mask_email, mask_phone
from core.rates.service import BUNDLED_HISTORY, current_offer, load_history, record_manual_rate
from core.samplebook import demo_book_path
from core.segments import segment_counts
from core.tracks.config import Track

# The dip the story tells: the 30-year index falls from the last published PMMS week to here.
DIP_30Y = Decimal("5.75")
DIP_15Y = Decimal("5.05")
DELIVERED = ("sent", "sandbox")
TIME_RULES = ("quiet_hours", "no_sunday", "holiday")  # core.compliance.windows' hold rules
MORE_PASSES = 4  # at night the first pass sends nothing: the worker's next passes, at most

Dispatch = Callable[[datetime], dict[str, Any]]


def run_demo(
    *,
    sessions: sessionmaker[Session],
    clock: StoryClock,
    config: Config,
    tracks: Mapping[str, Track],
    dispatch: Dispatch,
    story: Story,
    texts_wanted: int = 0,
    book: Path | None = None,
) -> DemoResult:
    """Import, dip, evaluate, approve and dispatch until `texts_wanted` people got a text (or
    nothing more is due); the story told through `story`, its numbers returned."""
    result = DemoResult()
    now = clock.now()
    batch_id = _book_and_batch(sessions, now, config, tracks, story, result, book)
    approved_at = clock.move_to(now + timedelta(minutes=5))
    with sessions() as session, session.begin():
        _, enrolled = approve_batch(
            session=session, batch_id=batch_id, by="demo-manager", now=approved_at,
            tracks=tracks, config=config,
        )  # fmt: skip
    held = len(enrolled.held_out)
    story.step(
        f"A manager approved batch {batch_id}: {enrolled.enrolled} people enrolled in the "
        f"refinance track, {enrolled.messages_scheduled} touches scheduled; {held} held out "
        "for measurement (they qualify but get nothing, so the stats can show the lift)."
    )
    _worker_passes(sessions, clock, dispatch, story, result, texts_wanted)
    with sessions() as session:
        _show_first_messages(session, story)
        result.extra["outbox"] = outbox(session)
        reached = session.scalar(
            select(func.count(func.distinct(Message.contact_id))).where(
                Message.status.in_(DELIVERED)
            )
        )
    result.extra["people_reached"] = reached or 0
    story.step(
        f"{reached} of the {result.batch_size} people in the batch got a first touch; the rest "
        "of each sequence (follow-ups, then a call task for the loan officer) stays scheduled "
        "and stops the moment someone replies or opts out."
    )
    return result


def _book_and_batch(
    sessions: sessionmaker[Session],
    now: datetime,
    config: Config,
    tracks: Mapping[str, Track],
    story: Story,
    result: DemoResult,
    book: Path | None,
) -> int:
    """Steps 1–4: the book, today's market, the dip and the batch it makes; the batch's id."""
    book = book or demo_book_path()
    with sessions() as session, session.begin():
        imported = import_file(session=session, path=book, now=now, actor="demo",
                               window_days=config.attribution.window_days)  # fmt: skip
        result.book = imported.contacts_created
        story.step(
            f"Imported the brokerage's book ({book.name}): {imported.rows} loans and "
            f"applications, {imported.contacts_created} people after merging "
            f"{imported.duplicates_merged} duplicate rows, {imported.los_created} loan officers."
        )
        load_history(session=session, path=BUNDLED_HISTORY, now=now)
        before = current_offer(session=session, product="30y", on=now.date(), config=config.rates)
        counts = segment_counts(session=session, now=now, config=config)
        story.step(
            f"Market today: {before.describe() if before else 'no rate'}. Segments: "
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
        story.step(
            f"Rates dip: {after.describe() if after else ''}. {result.eligible} past "
            "borrowers now hold a loan worth refinancing (savings, break-even and seasoning "
            "checked loan by loan)."
        )
        evaluation = evaluate(
            session=session, now=now, config=config, tracks=tracks, only=["rate_drop"]
        )
        (batch,) = evaluation.batches
        result.batch_size = batch.size
        story.step(
            f"Evaluation created batch {batch.id} ({batch.trigger}, {batch.size} people), "
            f"waiting for a manager's approval: {batch.status}."
        )
        return batch.id


def _worker_passes(
    sessions: sessionmaker[Session],
    clock: StoryClock,
    dispatch: Dispatch,
    story: Story,
    result: DemoResult,
    texts_wanted: int,
) -> None:
    """The worker's pass a minute after the approval, then (when quiet hours held the texts
    the story needs) its passes at the moments the deferred touches come due."""
    at = clock.move_to(clock.now() + timedelta(minutes=1))
    for number in range(1 + MORE_PASSES):
        with sessions() as session:
            before = _delivered_by_channel(session)
        report = dispatch(at)
        result.sent += int(report.get("sent", 0))
        result.held = sum(report.get("held", {}).values())  # what still waits after this pass
        with sessions() as session:
            after = _delivered_by_channel(session)
            sent = {channel: after[channel] - before.get(channel, 0) for channel in after}
            _tell_pass(story, report, sent, at, first=number == 0)
            texted = _people_texted(session)
            later = _next_deferred(session, after=at)
        if texted >= texts_wanted or later is None or number == MORE_PASSES:
            return
        story.note(
            f"Only {texted} people have a text so far; the worker's next pass that matters is "
            f"when the first deferred touches come due, {_utc(later)}."
        )
        at = clock.move_to(later)


def _tell_pass(
    story: Story, report: dict[str, Any], by_channel: dict[str, int], at: datetime, first: bool
) -> None:
    """What one pass sent, what it held for later and what it will never send."""
    which = "One worker pass" if first else "The worker's pass"
    story.step(
        f"{which} at {_utc(at)}: {report.get('sent', 0)} touches passed every compliance check "
        f"({by_channel.get('sms', 0)} texts, {by_channel.get('email', 0)} emails; sandbox: "
        "kept in the outbox, not sent)."
    )
    held = report.get("held", {})
    for label, rules in _held_groups(held):
        story.note(f"Held for later, {label}: {_rules(rules)}.")
    suppressed = report.get("suppressed", {})
    if suppressed:
        story.note(f"Never sent (consent, opt-outs, missing addresses): {_rules(suppressed)}.")


def _held_groups(held: dict[str, int]) -> list[tuple[str, dict[str, int]]]:
    """Holds as people read them: the time rules, the frequency caps, anything else."""
    time_rules = {r: n for r, n in held.items() if r.startswith(TIME_RULES)}
    caps = {r: n for r, n in held.items() if r.startswith("cap_")}
    other = {r: n for r, n in held.items() if r not in time_rules and r not in caps}
    groups = [
        ("by quiet hours and days in the borrower's own time zone (deferred to the next "
         "open minute, never dropped)", time_rules),
        ("by the one-message-a-day cap (the other channel's touch goes tomorrow)", caps),
        ("by other rules", other),
    ]  # fmt: skip
    return [(label, rules) for label, rules in groups if rules]


def _show_first_messages(session: Session, story: Story) -> None:
    """The first text and the first email of the outbox, as their readers see them."""
    for channel, what in (("sms", "text"), ("email", "email")):
        row = session.execute(
            select(Message, Contact)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.channel == channel, Message.status.in_(DELIVERED))
            .order_by(Message.sent_at, Message.id)
            .limit(1)
        ).first()
        if row is None:
            continue
        message, person = row
        address = (
            mask_phone(person.phone or "") if channel == "sms" else mask_email(person.email or "")
        )
        story.note(f"The first {what}, as {_name(person)} ({address}) reads it:")
        if message.subject:
            story.quote(f"Subject: {message.subject}")
            story.quote("")
        story.quote(message.body or "")


def _delivered_by_channel(session: Session) -> dict[str, int]:
    """Messages in the outbox (sent or sandbox), per channel."""
    rows = session.execute(
        select(Message.channel, func.count())
        .where(Message.status.in_(DELIVERED))
        .group_by(Message.channel)
    )
    return {channel: count for channel, count in rows}


def _people_texted(session: Session) -> int:
    """How many people have a text in the outbox."""
    return (
        session.scalar(
            select(func.count(func.distinct(Message.contact_id))).where(
                Message.channel == "sms", Message.status.in_(DELIVERED)
            )
        )
        or 0
    )


def _next_deferred(session: Session, *, after: datetime) -> datetime | None:
    """When the earliest text held by a rule comes due again."""
    return session.scalar(
        select(func.min(Message.due_at)).where(
            Message.status == "scheduled",
            Message.channel == "sms",
            Message.rule.is_not(None),
            Message.due_at > after,
        )
    )


def outbox(session: Session) -> dict[str, int]:
    """Messages per status."""
    rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
    return {status: count for status, count in rows}


def _name(person: Contact) -> str:
    return f"{person.first_name} {person.last_name}".strip() or f"contact {person.id}"


def _rules(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule} {count}" for rule, count in sorted(counts.items()))


def _utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
