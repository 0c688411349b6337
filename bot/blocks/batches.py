"""The batch approval card (why now, who, what today's touch would do, samples, Approve/Reject),
the modal that asks for a big batch's size, and the answers to the manager who pressed."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View as SlackView

from bot.blocks.common import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    View,
    checked,
    clip,
    escape,
    slack_day_time,
)
from bot.blocks.replies import TRIGGER_WORDS
from core import decisions
from core.batches.models import APPROVED, EXPIRED, REJECTED
from core.cards.batch_view import BatchCardView, OfficerShare, Sample
from core.decisions import BatchDecision
from core.rates.service import format_rate

APPROVE_BATCH, REJECT_BATCH = "approve_batch", "reject_batch"
CONFIRM_CALLBACK = "confirm_batch_approval"  # the size-typed-in modal
SIZE_BLOCK, SIZE_ACTION = "batch_size", "size"
OFFICERS_SHOWN = 15
SAMPLE_EMAIL_LINES = 6
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_PRODUCT_WORDS = {"30y": "30-year", "15y": "15-year"}


def batch_card(view: BatchCardView) -> View:
    """The approval card as the batch stands now: pending with its buttons, or decided."""
    title = f"Batch {view.batch_id}: {_trigger(view.trigger)}, {_people(view.size)}"
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, HEADER_LIMIT)),
        _section("\n".join(_why_lines(view))),
        SectionBlock(fields=_size_fields(view)),
        _section(_officer_lines(view.by_officer)),
    ]
    if view.pending:
        blocks.append(_section(_today_line(view)))
        blocks += [DividerBlock(), *(_sample_block(s) for s in view.samples)]
        blocks += _decision_blocks(view)
    else:
        blocks.append(_section(_decided_line(view)))
    return checked(_fallback(view), blocks)


def _trigger(trigger: str) -> str:
    return TRIGGER_WORDS.get(trigger, trigger.replace("_", " ").capitalize())


def _people(count: int) -> str:
    return f"{count:,} person" if count == 1 else f"{count:,} people"


def _money(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def _points(value: Decimal | str) -> str:
    """'1.00000' -> '1.00', '0.875' -> '0.875'."""
    whole, _, decimals = f"{Decimal(value).normalize():f}".partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def who(user: str | None) -> str:
    """A decider as Slack shows them: a mention for a Slack user, else the name recorded."""
    if not user:
        return "someone"
    return f"<@{user}>" if _SLACK_USER.fullmatch(user) else escape(user)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text or " ", SECTION_LIMIT)))


def _why_lines(view: BatchCardView) -> list[str]:
    """Why now: the offer and its move, and the trigger's thresholds."""
    lines = []
    offer, limits = view.offer, view.thresholds
    if offer is not None:
        product = _PRODUCT_WORDS.get(offer.product, offer.product)
        line = f"*Why now:* the {product} offer is *{format_rate(offer.rate)} %* (of {offer.as_of})"
        if offer.previous_rate is not None:
            move = offer.rate - offer.previous_rate
            way = "down" if move < 0 else "up" if move > 0 else "unchanged"
            by = f" {_points(abs(move))} point" if move else ""
            line += (f", {way}{by} from {format_rate(offer.previous_rate)} % "
                     f"of {offer.previous_as_of}")  # fmt: skip
        lines += [line, f"_{escape(offer.source)}_"]
    if view.trigger == "rate_drop" and limits:
        spread = ""
        if view.drop_points:
            low, high = (_points(p) for p in view.drop_points)
            spread = f" (these members: {low}" + (f" to {high})" if high != low else ")")
        lines.append(
            f"*Threshold:* note rate {_points(limits['threshold_points'])} point or more above the "
            f"offer{spread}; savings at least {_money(Decimal(limits['min_monthly_savings']))}"
            f"/month; break-even within {limits['max_break_even_months']} months"
        )
    elif limits:
        settings = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in limits.items())
        lines.append(f"*Why now:* {_trigger(view.trigger).lower()} ({escape(settings)})")
    return lines or [f"*Why now:* {_trigger(view.trigger).lower()}"]


def _size_fields(view: BatchCardView) -> list[MarkdownTextObject]:
    savings = (
        f"{_money(view.monthly_savings)} a month in total" if view.monthly_savings else "—"
    )  # fmt: skip
    fields = [f"*Size*\n{_people(view.size)}", f"*Estimated savings*\n{savings}",
              f"*Segment*\n{escape(view.segment)}"]  # fmt: skip
    if view.pending and view.expires_at is not None:
        fields.append(f"*Expires*\n{slack_day_time(view.expires_at)}")
    return [MarkdownTextObject(text=clip(field, FIELD_LIMIT)) for field in fields]


def _officer_lines(shares: tuple[OfficerShare, ...]) -> str:
    lines = ["*By loan officer*"]
    for share in shares[:OFFICERS_SHOWN]:
        savings = f", {_money(share.monthly_savings)}/mo" if share.monthly_savings else ""
        lines.append(f"• {escape(share.name)}: {_people(share.people)}{savings}")
    rest = shares[OFFICERS_SHOWN:]
    if rest:
        lines.append(f"…and {len(rest):,} more loan officers "
                     f"({_people(sum(s.people for s in rest))})")  # fmt: skip
    return "\n".join(lines)


def _today_line(view: BatchCardView) -> str:
    """'If approved now, the first text: 9 would be sent; held 2 (quiet_hours_CA); …'."""
    if view.track is None or view.first_channel is None:
        return "*If approved now:* no enabled track for this trigger: approving enrolls nobody"
    channel = {"sms": "text", "email": "email"}.get(view.first_channel, view.first_channel)
    parts = [f"{view.would_send:,} would be sent"]
    for label, counts in (("held today", view.held), ("suppressed", view.suppressed)):
        if counts:
            why = ", ".join(f"`{rule}` {count:,}" for rule, count in counts.items())
            parts.append(f"{label} {sum(counts.values()):,} ({why})")
    if view.render_failed:
        parts.append(f"{view.render_failed:,} could not be rendered")
    return (f"*If approved now*, the first {channel} ({escape(view.track)} track): "
            + "; ".join(parts))  # fmt: skip


def _sample_block(sample: Sample) -> SectionBlock:
    fate = {
        "send": "would be sent now",
        "hold": f"held now: {sample.rule}",
        "suppress": f"suppressed: {sample.rule}",
    }.get(sample.outcome, "could not be rendered")
    if sample.channel == "email":
        lines = sample.text.strip().splitlines()[:SAMPLE_EMAIL_LINES]
        body = "\n".join(f"> {escape(line)}" if line.strip() else ">" for line in lines)
        head = f"*Sample email* to {escape(sample.name)} ({fate})\n*Subject:* " + escape(
            sample.subject or "(none)"
        )
        return _section(f"{head}\n{body}\n> …")
    return _section(f"*Sample text* to {escape(sample.name)} ({fate})\n> "
                    + escape(sample.text).replace("\n", "\n> "))  # fmt: skip


def _decision_blocks(view: BatchCardView) -> list[Block]:
    big = view.size > view.confirm_above
    approve_confirm = None if big else ConfirmObject(
        title="Approve this batch?", confirm="Approve", deny="Not yet",
        text=f"{_people(view.size)} start the {view.track or view.segment} track.",
    )  # fmt: skip
    buttons = [
        ButtonElement(text="Approve", action_id=APPROVE_BATCH, value=str(view.batch_id),
                      style="primary", confirm=approve_confirm),
        ButtonElement(text="Reject", action_id=REJECT_BATCH, value=str(view.batch_id),
                      style="danger", confirm=ConfirmObject(
                          title="Reject this batch?", confirm="Reject", deny="Keep it",
                          text="Nobody in it is contacted; they may qualify again later.")),
    ]  # fmt: skip
    note = "Only managers may approve or reject."
    if big:
        note += f" A batch this big asks for its size ({view.size:,}) typed in."
    return [ActionsBlock(block_id="batch_decision", elements=buttons),
            ContextBlock(elements=[MarkdownTextObject(text=note)])]  # fmt: skip


def _decided_line(view: BatchCardView) -> str:
    when = f" at {slack_day_time(view.decided_at)}" if view.decided_at else ""
    if view.status == APPROVED:
        return (f":white_check_mark: *Approved by {who(view.decided_by)}{when}*, "
                f"{view.enrolled:,} enrolled")  # fmt: skip
    if view.status == REJECTED:
        return (f":no_entry_sign: *Rejected by {who(view.decided_by)}{when}*: nobody in it is "
                "contacted")  # fmt: skip
    if view.status == EXPIRED:
        if view.decided_at is None and view.expires_at is not None:
            when = f" at {slack_day_time(view.expires_at)}"
        return (
            f":hourglass: *Expired{when}*, no longer approvable: {escape(view.expiry_reason or '')}"
        )
    return f"*{escape(view.status)}*"


def _fallback(view: BatchCardView) -> str:
    what = f"Batch {view.batch_id} ({_trigger(view.trigger).lower()}, {_people(view.size)})"
    if view.pending:
        return f"{what} waits for approval"
    if view.status == APPROVED:
        return f"{what} approved by {who(view.decided_by)}, {view.enrolled:,} enrolled"
    if view.status == REJECTED:
        return f"{what} rejected by {who(view.decided_by)}"
    return f"{what} expired"


# --- the size modal ----------------------------------------------------------------------


def confirm_modal(
    *, batch_id: int, size: int, channel: str | None, home: bool = False
) -> dict[str, Any]:
    """The modal that asks for the batch's size typed in before a big batch is approved."""
    view = SlackView(
        type="modal", callback_id=CONFIRM_CALLBACK,
        title=PlainTextObject(text=clip(f"Approve batch {batch_id}", 24)),
        submit=PlainTextObject(text="Approve"), close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"batch": batch_id, "channel": channel, "home": home}),
        blocks=[
            _section(f"Batch {batch_id} has *{_people(size)}*: approving starts texting and "
                     "emailing every one of them. To approve, type the number of people."),
            InputBlock(block_id=SIZE_BLOCK, label="Number of people in the batch",
                       element=PlainTextInputElement(action_id=SIZE_ACTION,
                                                     placeholder="the batch's size")),
        ],
    )  # fmt: skip
    return view.to_dict()


def modal_batch(private_metadata: str) -> tuple[int, str | None, bool]:
    """The batch id, and the channel (or the App Home) the modal was opened from."""
    meta = json.loads(private_metadata or "{}")
    return int(meta["batch"]), meta.get("channel"), bool(meta.get("home"))


def typed_size(text: str | None) -> int | None:
    """The typed number of people ('1,204' and ' 1204 ' alike), None when not a number."""
    digits = (text or "").strip().replace(",", "").replace("_", "")
    return int(digits) if digits.isdigit() else None


def size_error(typed: int | None) -> str:
    """The modal's inline error for a size that is not the batch's."""
    if typed is None:
        return "Type the number of people as digits, e.g. 312."
    return f"{typed:,} is not the number of people in this batch: nothing was approved."


# --- answers to the presser --------------------------------------------------------------


def not_a_manager(managers: list[str]) -> str:
    """The refusal for anyone not in SLACK_MANAGER_IDS."""
    ask = ", ".join(f"<@{m}>" for m in managers) or "a manager"
    return f"Only managers can approve or reject batches: ask {ask}. Nothing was changed."


def out_of_date() -> str:
    """A button whose batch cannot be found."""
    return "That card is out of date: the batch it shows is gone. Nothing was changed."


def modal_failed() -> str:
    """views.open refused (the click was too long ago, say)."""
    return "The size check could not be opened: press Approve again. Nothing was changed."


def decision_answer(decision: BatchDecision) -> str:
    """What the manager reads after pressing Approve or Reject (or typing the size)."""
    batch, number = decision.batch, decision.batch_id
    if batch is None:
        return out_of_date()
    if decision.outcome == decisions.APPROVED:
        result = decision.enrolled
        enrolled = result.enrolled if result else 0
        already = result.already_on_track if result else {}
        walking = "".join(f"; {n:,} already on the {track} track" for track, n in already.items())
        held = len(result.held_out) if result else 0
        if held:
            walking += f"; {held:,} held out for measurement (never messaged)"
        return (f":white_check_mark: Batch {number} approved: {_people(enrolled)} enrolled"
                f"{walking}. Their first touches go out at the next dispatch.")  # fmt: skip
    if decision.outcome == decisions.REJECTED:
        return f"Batch {number} rejected: none of its {_people(batch.size)} is contacted."
    if decision.outcome == decisions.EXPIRED:
        return f":hourglass: Batch {number} was not approved and has expired: {decision.message}."
    if decision.outcome in (decisions.CONFIRM, decisions.WRONG_SIZE):
        return size_error(None)
    assert decision.outcome == decisions.REFUSED
    if batch.status in (APPROVED, REJECTED):
        return f"Batch {number} is already {batch.status} by {who(batch.decided_by)}."
    if batch.status == EXPIRED:
        return f"Batch {number} has already expired (the card says why): nothing was changed."
    message = decision.message
    return f"{message[:1].upper()}{message[1:]}. Nothing was changed."
