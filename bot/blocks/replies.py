"""Warm-reply and call-task cards: everything that makes the call easy, and the four buttons."""

from __future__ import annotations

import phonenumbers
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    LinkButtonElement,
    MarkdownTextObject,
    SectionBlock,
)

from bot.blocks.common import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    View,
    checked,
    clip,
    escape,
    slack_day_time,
    slack_time,
)
from core.cards.views import ReplyCardView, TaskCardView, Touch

CLAIM, SNOOZE, NOT_INTERESTED, STOP_OUTREACH, MARK_FUNDED = (
    "claim_reply",
    "snooze_reply",
    "not_interested",
    "stop_outreach",
    "mark_funded",
)
CLASSIFICATION_WORDS = {
    "interested": ":large_green_circle: Interested",
    "question": ":large_blue_circle: Has a question",
    "not_now": ":white_circle: Not now",
    "unknown": ":grey_question: Unclear",
}
TRIGGER_WORDS = {
    "rate_drop": "Rate drop",
    "loan_age": "Loan milestone",
    "closing_anniversary": "Closing anniversary",
    "fallout_anniversary": "Stalled application",
    "arm_reset": "ARM reset",
    "pmi_removal": "PMI removal",
    "fha_mip": "FHA MIP",
}


def phone_words(e164: str) -> str:
    """A phone number the way a loan officer dials it ((555) 010-1234 in the US)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    region = phonenumbers.region_code_for_number(parsed)
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if region == "US"
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


def reply_card(view: ReplyCardView, *, again: bool = False) -> View:
    """The warm-reply card, as it stands now (unclaimed, claimed or closed)."""
    who = view.name if view.in_book else "Someone not in the book"
    how = "texted back" if view.channel == "sms" else "replied by email"
    title = f"{'Reminder: ' if again else ''}{who} {how}"
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, HEADER_LIMIT)),
        SectionBlock(text=MarkdownTextObject(text=clip(f"> {escape(view.words) or '(empty)'}"))),
        SectionBlock(fields=_who_fields(view)),
    ]
    if view.figures:
        blocks.append(SectionBlock(fields=_refinance_fields(view)))
    if view.savings_link:
        blocks.append(
            ActionsBlock(
                elements=[
                    LinkButtonElement(
                        text="Their savings page",
                        url=view.savings_link,
                        action_id="open_savings_page",
                    )
                ]
            )
        )
    if view.touches:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_touches(view.touches))]))
    blocks.append(DividerBlock())
    blocks.extend(_state_blocks(view))
    text = f"{title}: “{clip(view.words, 200)}”"
    return checked(text, blocks)


def _who_fields(view: ReplyCardView) -> list[MarkdownTextObject]:
    reach = phone_words(view.sender) if view.channel == "sms" else view.sender
    fields = [
        f"*Reply*\n{CLASSIFICATION_WORDS.get(view.classification, view.classification)}",
        f"*{'Phone' if view.channel == 'sms' else 'Email'}*\n{escape(reach)}",
        f"*Received*\n{slack_day_time(view.received_at)}",
    ]
    if view.trigger:
        segment = f" · {view.segment.replace('_', ' ')}" if view.segment else ""
        fields.append(f"*Why we wrote*\n{TRIGGER_WORDS.get(view.trigger, view.trigger)}{segment}")
    if view.lo_name:
        fields.append(f"*Loan officer*\n{escape(view.lo_name)}")
    return [MarkdownTextObject(text=clip(field, FIELD_LIMIT)) for field in fields]


def _refinance_fields(view: ReplyCardView) -> list[MarkdownTextObject]:
    math = view.figures or {}
    fields = []
    if view.note_rate:
        fields.append(f"*Note rate*\n{view.note_rate}")
    fields.append(f"*Today's example*\n{math['example_rate']} (APR {math['example_apr']})")
    fields.append(f"*P&I now → new*\n{math['current_payment']} → {math['new_payment']}")
    fields.append(f"*Saves*\n{math['monthly_savings']}/month")
    if math.get("break_even_months"):
        fields.append(f"*Break-even*\n{math['break_even_months']} months")
    fields.append(f"*Est. balance*\n{math['remaining_balance']}")
    return [MarkdownTextObject(text=field) for field in fields]


def _touches(touches: tuple[Touch, ...]) -> str:
    lines = [
        f"{slack_day_time(t.sent_at)} · {t.channel.upper()}: {escape(t.excerpt)}" for t in touches
    ]
    return clip("*Last touches*\n" + "\n".join(lines), FIELD_LIMIT)


def _state_blocks(view: ReplyCardView) -> list[Block]:
    value = str(view.reply_id)
    stop = ButtonElement(
        text="Stop outreach", action_id=STOP_OUTREACH, value=value, style="danger",
        confirm=ConfirmObject(
            title="Stop all outreach?", confirm="Stop outreach", deny="Cancel",
            text="They will get no more texts or emails from us on any channel.",
        ),
    )  # fmt: skip
    not_interested = ButtonElement(text="Not interested", action_id=NOT_INTERESTED, value=value)
    if view.outcome == "funded":
        return [_state_line(f":tada: Funded: claimed by <@{view.claimed_by}>, outreach ended")]
    if view.outcome:
        closed = view.outcome.replace("_", " ")
        by = f" by <@{view.claimed_by}>" if view.claimed_by else ""
        return [_state_line(f":white_check_mark: Closed{by}: {closed}")]
    if view.claimed_by:
        at = f" at {slack_time(view.claimed_at)}" if view.claimed_at else ""
        funded = ButtonElement(
            text="Mark funded", action_id=MARK_FUNDED, value=value, style="primary",
            confirm=ConfirmObject(
                title="Mark funded?", confirm="Mark funded", deny="Cancel",
                text="Their loan closed: the outreach that won it is credited and every "
                "sequence of theirs ends.",
            ),
        )  # fmt: skip
        return [
            _state_line(f":telephone_receiver: Claimed by <@{view.claimed_by}>{at}"),
            ActionsBlock(elements=[funded, not_interested, stop]),
        ]
    snoozed = ""
    if view.snoozed_until:
        snoozed = f" · snoozed until {slack_time(view.snoozed_until)}"
    claim = ButtonElement(text="Claim", action_id=CLAIM, value=value, style="primary")
    snooze = ButtonElement(text="Snooze 1 hour", action_id=SNOOZE, value=value)
    return [
        _state_line(f":hourglass_flowing_sand: Waiting for a loan officer{snoozed}"),
        ActionsBlock(elements=[claim, snooze, not_interested, stop]),
    ]


def _state_line(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text))


def escalation_card(view: ReplyCardView, *, managers: list[str], minutes: int) -> View:
    """The team-channel nudge for a reply nobody claimed within the SLA."""
    mentions = " ".join(f"<@{m}>" for m in managers) or "Team"
    who = view.name if view.in_book else "someone not in the book"
    text = (
        f"{mentions}: {who}'s reply has waited more than {minutes} business minutes "
        f"without a claim{f' (LO: {view.lo_name})' if view.lo_name else ''}."
    )
    card = reply_card(view)
    blocks = [SectionBlock(text=MarkdownTextObject(text=clip(text)))]
    return View(text=text, blocks=[b.to_dict() for b in blocks] + card.blocks[1:])


def reminder_card(view: ReplyCardView) -> View:
    """One reminder to the claimer: claimed a day ago, no outcome recorded."""
    who = view.name if view.in_book else "the sender"
    text = (
        f"<@{view.claimed_by}>, you claimed {who}'s reply a day ago and no outcome is recorded. "
        "How did the call go?"
    )
    blocks = [SectionBlock(text=MarkdownTextObject(text=clip(text)))]
    return View(text=text, blocks=[b.to_dict() for b in blocks] + reply_card(view).blocks)


def task_card(view: TaskCardView) -> View:
    """A track's call step: "call this borrower", with the reason and the numbers."""
    title = f"Call {view.name}"
    fields = []
    if view.phone:
        fields.append(f"*Phone*\n{phone_words(view.phone)}")
    if view.email:
        fields.append(f"*Email*\n{escape(view.email)}")
    if view.trigger:
        fields.append(f"*Why now*\n{TRIGGER_WORDS.get(view.trigger, view.trigger)}")
    if view.lo_name:
        fields.append(f"*Loan officer*\n{escape(view.lo_name)}")
    if view.note_rate:
        fields.append(f"*Note rate*\n{view.note_rate}")
    if view.figures:
        fields.append(f"*Saves*\n${view.figures['monthly_savings']}/month")
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, HEADER_LIMIT)),
        SectionBlock(fields=[MarkdownTextObject(text=clip(f, FIELD_LIMIT)) for f in fields])
        if fields
        else DividerBlock(),
    ]
    if view.task:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(escape(view.task)))))
    if view.touches:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_touches(view.touches))]))
    return checked(f"{title}: {clip(view.task, 200)}", blocks)
