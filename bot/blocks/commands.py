"""The answers to `/winback`: help, segments, a segment's people, batches, rates, whois, notes.

The stats answers are in bot.blocks.stats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.blocks.batches import decision_answer, not_a_manager
from bot.blocks.common import (
    FIELD_LIMIT,
    SECTION_LIMIT,
    View,
    checked,
    clip,
    escape,
    slack_day_time,
)
from bot.blocks.replies import TRIGGER_WORDS, phone_words
from bot.command_text import segment_choices
from core.batches.models import PENDING_APPROVAL, Batch
from core.decisions import CONFIRM, WRONG_SIZE, BatchDecision
from core.rates.service import HeldRate, Offer, format_rate, held_warning
from core.segments import SegmentEntry

APPROVE_BATCH, REJECT_BATCH = "approve_batch", "reject_batch"
SEGMENT_WORDS = {
    "refinance": "Refinance",
    "repeat_purchase": "Repeat purchase",
    "stalled": "Stalled applications",
    "anniversary": "Closing anniversaries",
    "arm_reset": "ARM resets",
    "pmi_removal": "PMI removal",
    "fha_mip": "FHA MIP removal",
}
PRODUCT_WORDS = {"30y": "30-year fixed", "15y": "15-year fixed"}
_HELP_LINES = (
    ("segments", "people per segment, and per loan officer"),
    ("segment refi [@lo]", "the top 20 of a segment with their numbers (yours, or that LO's)"),
    ("batches", "recent batches; pending ones with Approve and Reject"),
    (
        "approve 12 · reject 12",
        "decide a batch (managers; a big one wants its size: `approve 12 1204`)",
    ),
    ("stats [7d|30d|90d|all] [by segment|trigger|lo]", "the funnel, sent to funded, and the lift"),
    ("stats chart [7d|30d|90d|all] [by …]", "the same as a picture, posted in this channel"),
    ("rate", "today's offer rates"),
    ("pause [why] · resume", "hold or restart all outreach at once (managers)"),
    ("whois PHONE|EMAIL", "someone's consent, loans, sequences and messages"),
    ("optout PHONE|EMAIL", "stop every text and email to someone, for good"),
)
_MAX_PENDING_SHOWN = 15  # two blocks each: the message stays under Slack's 50 blocks


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text)))


def _people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text))])


def _sections(lines: Iterable[str]) -> list[Block]:
    """Lines packed into as few sections as Slack's per-section limit allows."""
    blocks: list[Block] = []
    chunk = ""
    for line in lines:
        line = clip(line, SECTION_LIMIT // 2)
        if chunk and len(chunk) + 1 + len(line) > SECTION_LIMIT:
            blocks.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(_section(chunk))
    return blocks


def note(text: str) -> View:
    """A one-line answer (done, refused, nothing found)."""
    return checked(text, [_section(text)])


def help_view(problem: str | None = None) -> View:
    """What `/winback` can do, after the reason the text was not understood (if any)."""
    blocks: list[Block] = []
    if problem:
        blocks.append(_section(f":warning: {escape(problem)}"))
    lines = [f"• `/winback {usage}` — {what}" for usage, what in _HELP_LINES]
    blocks.append(_section("*What `/winback` can do*\n" + "\n".join(lines)))
    blocks.append(_context(segment_choices() + "."))
    return checked(problem or "What /winback can do", blocks)


def segment_label(segment: str) -> str:
    """'Refinance' for 'refinance'."""
    return SEGMENT_WORDS.get(segment, segment.replace("_", " ").capitalize())


def segments_view(
    counts: Mapping[str, int], by_officer: Sequence[tuple[str, Mapping[str, int]]]
) -> View:
    """People per segment today, then each loan officer's people (segments with nobody left out)."""
    fields = [
        MarkdownTextObject(text=clip(f"*{segment_label(name)}* `{name}`\n{count:,}", FIELD_LIMIT))
        for name, count in counts.items()
    ]
    blocks: list[Block] = [HeaderBlock(text="People per segment, today")]
    blocks += [SectionBlock(fields=fields[i : i + 10]) for i in range(0, len(fields), 10)]
    lines = []
    for officer, mine in by_officer:
        held = [f"{segment_label(name).lower()} {n:,}" for name, n in mine.items() if n]
        lines.append(f"• *{escape(officer)}* — {' · '.join(held) if held else 'nobody'}")
    if lines:
        blocks.append(_section("*By loan officer*"))
        blocks += _sections(lines)
    blocks.append(_context("`/winback segment NAME` lists a segment's best people."))
    total = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    return checked(f"People per segment: {total}", blocks)


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value is None or value == "" else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _money(value: Any) -> str | None:
    amount = _decimal(value)
    return None if amount is None else f"${amount:,.0f}"


def _rate(value: Any) -> str | None:
    rate = _decimal(value)
    return None if rate is None else f"{format_rate(rate)} %"


def _facts(snapshot: Mapping[str, Any]) -> list[str]:
    """Why this person is in the segment, in the numbers a loan officer quotes."""
    facts: list[str] = []
    note_rate, offer = _rate(snapshot.get("note_rate")), _rate(snapshot.get("offer_rate"))
    if note_rate:
        facts.append(f"note {note_rate}" + (f" → {offer}" if offer else ""))
    if saves := _money(snapshot.get("monthly_savings")):
        facts.append(f"saves {saves}/mo")
    if snapshot.get("break_even_months") is not None:
        facts.append(f"break-even {snapshot['break_even_months']} mo")
    if "loan_age_years" in snapshot:
        facts.append(f"loan {snapshot['loan_age_years']} years old")
    if "anniversary_date" in snapshot:
        facts.append(
            f"{snapshot['anniversary_years']}-year anniversary {snapshot['anniversary_date']}"
        )
    if "fallout_date" in snapshot:
        status = str(snapshot.get("status", "stalled")).replace("_", " ")
        facts.append(
            f"{status} {snapshot['fallout_date']} ({snapshot.get('fallout_months')} mo ago)"
        )
    if "arm_reset_date" in snapshot:
        facts.append(
            f"ARM resets {snapshot['arm_reset_date']} (in {snapshot['days_to_reset']} days)"
        )
    if ltv := _decimal(snapshot.get("estimated_ltv")):
        value = _money(snapshot.get("estimated_value"))
        facts.append(f"LTV about {ltv:.1f} %" + (f" (value ~{value})" if value else ""))
    return facts


def members_view(
    segment: str,
    members: Sequence[SegmentEntry],
    *,
    whose: str | None,
    officer_names: Mapping[str, str],
) -> View:
    """A segment's best people (`whose`: a loan officer's name, 'your', or None for everyone)."""
    label = segment_label(segment)
    owner = f"{whose} " if whose == "Your" else (f"{whose}'s " if whose else "")
    mine = " of yours" if whose == "Your" else (f" of {whose}'s" if whose else "")
    title = f"{owner}top {len(members)} · {label}" if members else f"{label}: nobody{mine} now"
    blocks: list[Block] = [HeaderBlock(text=clip(title[0].upper() + title[1:], 150))]
    lines = []
    for rank, person in enumerate(members, start=1):
        officer = officer_names.get(person.lo_email or "", "no loan officer")
        facts = " · ".join(_facts(person.snapshot or {}))
        shown = f"{rank}. *{escape(person.name) or 'No name'}* ({escape(officer)})"
        lines.append(shown + (f" — {facts}" if facts else ""))
    blocks += _sections(lines)
    blocks.append(_context("Best first. `/winback whois PHONE|EMAIL` shows someone's details."))
    return checked(title, blocks)


def _batch_line(batch: Batch) -> str:
    trigger = TRIGGER_WORDS.get(batch.trigger, batch.trigger)
    line = f"*Batch {batch.id}* · {trigger} → `{batch.segment}` · *{_people(batch.size)}*"
    line += f" · made {slack_day_time(batch.created_at)}"
    if batch.status == PENDING_APPROVAL:
        if batch.expires_at is not None:
            line += f" · expires {slack_day_time(batch.expires_at)}"
        if batch.rate_source:
            line += f"\n_{escape(batch.rate_source)}_"
        return line
    decided = f" by <@{batch.decided_by}>" if _is_slack_user(batch.decided_by) else (
        f" by {escape(batch.decided_by)}" if batch.decided_by else ""
    )  # fmt: skip
    return f"{line} · {batch.status.replace('_', ' ')}{decided}"


def _is_slack_user(who: str | None) -> bool:
    return bool(who) and who[0] in "UW" and who.isalnum() and who.isupper()  # type: ignore[index]


def _decision_buttons(batch: Batch) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"batch_{batch.id}",
        elements=[
            ButtonElement(text="Approve", action_id=APPROVE_BATCH, value=str(batch.id),
                          style="primary"),
            ButtonElement(text="Reject", action_id=REJECT_BATCH, value=str(batch.id),
                          style="danger"),
        ],
    )  # fmt: skip


def batches_view(batches: Sequence[Batch], *, can_decide: bool) -> View:
    """Pending batches first (with Approve/Reject for managers), then the latest decided ones."""
    pending = [b for b in batches if b.status == PENDING_APPROVAL]
    decided = [b for b in batches if b.status != PENDING_APPROVAL][:10]
    blocks: list[Block] = [HeaderBlock(text="Batches")]
    if not batches:
        blocks.append(_section("No batches yet: they appear when a trigger finds people."))
    if pending:
        blocks.append(_section(f"*Waiting for approval ({len(pending)})*"))
    for batch in pending[:_MAX_PENDING_SHOWN]:
        blocks.append(_section(_batch_line(batch)))
        if can_decide:
            blocks.append(_decision_buttons(batch))
    if len(pending) > _MAX_PENDING_SHOWN:
        hidden = len(pending) - _MAX_PENDING_SHOWN
        blocks.append(_context(f"…and {hidden} more pending: `/winback approve ID` decides any."))
    if pending and not can_decide:
        blocks.append(_context("Only managers can approve or reject batches."))
    if decided:
        blocks.append(_section("*Decided lately*"))
        blocks += _sections(_batch_line(b) for b in decided)
    text = f"{len(pending)} batch(es) waiting for approval" if pending else "No batch is waiting"
    return checked(text, blocks)


def decision_view(decision: BatchDecision, *, typed: int | None = None) -> View:
    """What approving or rejecting a batch did, or why nothing changed (as on the card)."""
    number, batch = decision.batch_id, decision.batch
    if batch is None:
        return note(f"There is no batch {number}. Nothing was changed.")
    if decision.outcome == CONFIRM:
        again = f"`/winback approve {number} {batch.size}`"
        return note(f"Batch {number} has {_people(batch.size)}: to approve that many at once, "
                    f"type its size too: {again}. Nothing changed yet.")  # fmt: skip
    if decision.outcome == WRONG_SIZE:
        return note(f"Batch {number} has {_people(batch.size)}, not {typed or 0:,}: nothing "
                    "was changed.")  # fmt: skip
    return note(decision_answer(decision))


def refusal_view(what: str, managers: Iterable[str]) -> View:
    """Someone not in SLACK_MANAGER_IDS asked to decide a batch, pause or resume."""
    if what == "decide":
        return note(not_a_manager(sorted(managers)))
    ask = ", ".join(f"<@{m}>" for m in sorted(managers)) or "a manager"
    return note(f"Only managers can {what} outreach: ask {ask}. Nothing was changed.")


def rates_view(offers: Mapping[str, Offer | None], held: Sequence[HeldRate], today: date) -> View:
    """Today's offer rate per product, how it was made, and any feed rate held for a check."""
    lines = []
    for product, offer in offers.items():
        name = PRODUCT_WORDS.get(product, product)
        if offer is None:
            lines.append(f"*{name}*: no market rate recorded yet (`winback rates fetch`)")
        else:
            lines.append(f"*{name}*: *{format_rate(offer.rate)} %*\n_{escape(offer.describe())}_")
    blocks: list[Block] = [HeaderBlock(text=f"Offer rates, {today:%b} {today.day}")]
    blocks += _sections(lines)
    if held:
        blocks += _sections(f":warning: {escape(held_warning(item))}" for item in held)
    text = "; ".join(
        f"{product} {format_rate(o.rate)} %" for product, o in offers.items() if o is not None
    )
    return checked(f"Offer rates: {text or 'none recorded'}", blocks)


def _person_lines(person: Mapping[str, Any]) -> list[str]:
    consent = person["consent"]
    officer = escape(person["loan_officer"] or "none")
    lines = [f"*#{person['id']} {escape(person['name'])}* · LO {officer}"]
    if person["phone"]:
        lines.append(f"Phone {phone_words(person['phone'])} ({person['phone_status']}) · "
                     f"SMS consent *{consent['sms']['state']}*")  # fmt: skip
    if person["email"]:
        lines.append(
            f"Email {escape(person['email'])} · email consent *{consent['email']['state']}*"
        )
    if person["suppressed"]:
        lines.append(f":no_entry: On the suppression list: {', '.join(person['suppressed'])}")
    for loan in person["loans"]:
        facts = [loan["status"].replace("_", " ")]
        if loan["note_rate"] is not None:
            facts.append(_rate(loan["note_rate"]) or "")
        if loan["amount"] is not None:
            facts.append(_money(loan["amount"]) or "")
        lines.append(f"Loan {escape(str(loan['loan_number']))}: {', '.join(facts)}")
    for enrollment in person["enrollments"]:
        stopped = f" ({enrollment['stop_reason']})" if enrollment["stop_reason"] else ""
        lines.append(f"Track {enrollment['track']}: {enrollment['status']}{stopped}")
    messages = person["messages"]
    for message in messages[-10:]:
        rule = f" ({message['rule']})" if message["rule"] else ""
        lines.append(f"Step {message['step']} {message['channel']}: {message['status']}{rule}")
    if len(messages) > 10:
        lines.append(f"_…and {len(messages) - 10} earlier messages_")
    return lines


def whois_view(people: Sequence[Mapping[str, Any]]) -> View:
    """Everyone holding a phone or email, as staff read them (never logged)."""
    if not people:
        return note("Nobody in the book has that phone number or email.")
    blocks: list[Block] = []
    for person in people[:10]:
        blocks += _sections(_person_lines(person))
    return checked(f"{len(people)} contact(s) with that phone or email", blocks)
