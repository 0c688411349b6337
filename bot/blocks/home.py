"""The App Home tab: a loan officer's replies and calls, a manager's batches and pause switch."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View as SlackView

from bot.blocks.common import HEADER_LIMIT, SECTION_LIMIT, clip, escape, slack_day_time
from bot.blocks.replies import CLAIM, CLASSIFICATION_WORDS, TRIGGER_WORDS
from core.cards.home import HomeBatch, HomeCall, HomeData, HomeReply, PauseState
from core.stats import Funnel, FunnelRow

MAX_HOME_BLOCKS = 100  # Slack refuses a Home view with more
APPROVE, REJECT = "approve_batch", "reject_batch"
PAUSE, RESUME = "pause_outreach", "resume_outreach"
ABOUT = (
    "*Winback* watches the book of past borrowers for a reason to call: a rate drop that makes "
    "a refinance worth it, PMI that can come off, an ARM about to reset, a loan anniversary. "
    "Once a manager approves a batch, it writes to them by text and email, and every warm reply "
    "lands in their loan officer's Slack channel within a second, with a *Claim* button."
)


def home_view(
    data: HomeData,
    *,
    funnel: Funnel | None = None,
    managers: list[str] | tuple[str, ...] = (),
    notice: str | None = None,
) -> dict[str, Any]:
    """The Home tab for views.publish (at most 100 blocks: long lists say "and N more");
    `funnel` is the last 30 days by loan officer (core.stats)."""
    blocks: list[Block] = [HeaderBlock(text="Winback")]
    if notice:
        blocks.append(_text(f":information_source: {notice}"))
    if data.is_officer:
        blocks += _officer_blocks(data)
        if funnel is not None:
            blocks += _funnel_blocks(_row_of(funnel, data.officer_email), whose="your book")
    if data.is_manager:
        blocks += _manager_blocks(data)
        if funnel is not None and not data.is_officer:
            blocks += _funnel_blocks(funnel.totals, whose="the whole team")
    if not data.is_officer and not data.is_manager:
        blocks += _stranger_blocks(data.slack_user_id, managers)
    if len(blocks) > MAX_HOME_BLOCKS:  # the core caps its lists, so this is a last resort
        blocks = [*blocks[: MAX_HOME_BLOCKS - 1], _context("More is waiting than fits here.")]
    view = SlackView(type="home", blocks=blocks)
    view.validate_json()
    return view.to_dict()


def home_text(data: HomeData) -> str:
    """A one-line summary (logs, tests): how much is waiting."""
    parts = []
    if data.is_officer:
        parts.append(f"{data.unclaimed_total} replies to claim, {data.calls_total} calls today")
    if data.is_manager:
        parts.append(f"{data.batches_total} batches to decide")
    return "; ".join(parts) or "not set up in Winback"


def _officer_blocks(data: HomeData) -> list[Block]:
    first_name = (data.officer_name or "").split(" ")[0]
    blocks: list[Block] = [_text(f"Hi {escape(first_name)}, here is what is waiting for you.")]
    blocks += _section_title(f"Warm replies to claim ({data.unclaimed_total})")
    if not data.unclaimed:
        blocks.append(_context("Nothing waiting. New replies show up here and in your channel."))
    blocks += [_unclaimed_row(reply) for reply in data.unclaimed]
    blocks += _more(data.unclaimed_total, len(data.unclaimed), "in your channel")
    blocks += _section_title(f"Claimed by you, no outcome yet ({data.claimed_total})")
    if not data.claimed:
        blocks.append(_context("None: every reply you claimed has an outcome."))
    blocks += [_claimed_row(reply) for reply in data.claimed]
    blocks += _more(data.claimed_total, len(data.claimed), "on their cards")
    blocks += _section_title(f"Calls for today ({data.calls_total})")
    if not data.calls:
        blocks.append(_context("No calls due today."))
    blocks += [_call_row(call) for call in data.calls]
    blocks += _more(data.calls_total, len(data.calls), "in your channel")
    return blocks


def _unclaimed_row(reply: HomeReply) -> SectionBlock:
    snoozed = (
        f" · snoozed until {slack_day_time(reply.snoozed_until)}" if reply.snoozed_until else ""
    )
    return SectionBlock(
        text=MarkdownTextObject(text=clip(_reply_text(reply) + snoozed, SECTION_LIMIT)),
        accessory=ButtonElement(
            text="Claim", action_id=CLAIM, value=str(reply.reply_id), style="primary"
        ),
    )


def _claimed_row(reply: HomeReply) -> SectionBlock:
    claimed = f" · claimed {slack_day_time(reply.claimed_at)}" if reply.claimed_at else ""
    return _text(_reply_text(reply) + claimed)


def _reply_text(reply: HomeReply) -> str:
    how = "text" if reply.channel == "sms" else "email"
    kind = CLASSIFICATION_WORDS.get(reply.classification, reply.classification)
    words = escape(reply.excerpt) or "(empty)"
    return f"*{escape(reply.name)}* · {kind} · {how} {slack_day_time(reply.received_at)}\n> {words}"


def _call_row(call: HomeCall) -> SectionBlock:
    why = f"\n{escape(call.task)}" if call.task else ""
    return _text(f":telephone_receiver: *Call {escape(call.name)}* · due "
                 f"{slack_day_time(call.due_at)}{why}")  # fmt: skip


def _row_of(funnel: Funnel, officer_email: str | None) -> FunnelRow | None:
    """The officer's row (the funnel shows loan officers by email); None: nothing for them."""
    return next((row for row in funnel.rows if row.group == officer_email), None)


def _funnel_blocks(row: FunnelRow | None, *, whose: str) -> list[Block]:
    title = _section_title(f"Last 30 days, {whose}")
    if row is None:
        return [*title, _context("Nothing sent in the last 30 days.")]
    counts = row.counts
    fields = [
        f"*Reached*\n{counts['reached']}",
        f"*Replied*\n{counts['replied']}",
        f"*Claimed*\n{counts['claimed']}",
        f"*Funded*\n{counts['funded']}",
        f"*Opted out*\n{counts['opted_out']}",
    ]
    return [*title, SectionBlock(fields=[MarkdownTextObject(text=field) for field in fields])]


def _manager_blocks(data: HomeData) -> list[Block]:
    blocks = _section_title(f"Batches waiting for approval ({data.batches_total})")
    if not data.batches:
        blocks.append(_context("None: every batch has been decided."))
    for batch in data.batches:
        blocks += _batch_rows(batch)
    blocks += _more(data.batches_total, len(data.batches), "in the approvals channel")
    if data.pause is not None:
        blocks += [*_section_title("Outreach"), _pause_row(data.pause)]
    return blocks


def _batch_rows(batch: HomeBatch) -> list[Block]:
    trigger = TRIGGER_WORDS.get(batch.trigger, batch.trigger)
    expires = f" · expires {slack_day_time(batch.expires_at)}" if batch.expires_at else ""
    text = (
        f"*Batch {batch.batch_id}* · {trigger} · {escape(batch.segment.replace('_', ' '))} · "
        f"{batch.size} {'person' if batch.size == 1 else 'people'}\n"
        f"found {slack_day_time(batch.created_at)}{expires}"
    )
    value = str(batch.batch_id)
    approve = ButtonElement(text="Approve", action_id=APPROVE, value=value, style="primary")
    reject = ButtonElement(text="Reject", action_id=REJECT, value=value)
    return [_text(text), ActionsBlock(block_id=f"batch-{value}", elements=[approve, reject])]


def _pause_row(pause: PauseState) -> SectionBlock:
    if pause.paused:
        since = f" since {slack_day_time(pause.changed_at)}" if pause.changed_at else ""
        by = f" by {_who(pause.changed_by)}" if pause.changed_by else ""
        state = f":double_vertical_bar: *Outreach is paused*{by}{since}. Nothing is sent."
        button = ButtonElement(text="Resume outreach", action_id=RESUME, value="resume",
                               style="primary")  # fmt: skip
    else:
        state = ":arrow_forward: *Outreach is running.* Approved batches are being sent."
        button = ButtonElement(
            text="Pause outreach", action_id=PAUSE, value="pause", style="danger",
            confirm=ConfirmObject(
                title="Pause all outreach?", confirm="Pause", deny="Cancel",
                text="No text or email goes out until a manager resumes. Replies still arrive.",
            ),
        )  # fmt: skip
    return SectionBlock(text=MarkdownTextObject(text=state), accessory=button)


def _who(actor: str) -> str:
    """A Slack user as a mention; anyone else (the command line) by name."""
    if actor[:1] in ("U", "W") and actor.isalnum() and actor.isupper():
        return f"<@{actor}>"
    return escape(actor)


def _stranger_blocks(user: str, managers: list[str] | tuple[str, ...]) -> list[Block]:
    ask = " or ".join(f"<@{m}>" for m in managers) or "the person who set Winback up"
    how = (
        f"You are not set up as a loan officer or a manager yet. To get your warm replies here, "
        f"ask {ask} to add you as a loan officer with your Slack user id `{user}` "
        f"(`winback lo add --email … --name … --slack-user {user}`). "
        "Managers are the people listed in `SLACK_MANAGER_IDS`."
    )
    return [_text(ABOUT), _text(how), _context("Type `/winback help` to see what Winback can do.")]


def _section_title(title: str) -> list[Block]:
    return [DividerBlock(), HeaderBlock(text=clip(title, HEADER_LIMIT))]


def _more(total: int, shown: int, where: str) -> list[Block]:
    return [_context(f"…and {total - shown} more {where}.")] if total > shown else []


def _text(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_LIMIT)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])
