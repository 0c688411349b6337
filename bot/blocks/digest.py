"""The weekly digest card: the week's funnel in five figures, where replies came from, the holdout
lift, and the batches still waiting for a manager."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.blocks.commands import SEGMENT_WORDS
from bot.blocks.common import FIELD_LIMIT, HEADER_LIMIT, SECTION_LIMIT, View, checked, clip
from bot.blocks.replies import TRIGGER_WORDS
from core.digest import DigestView
from core.stats import Lift

CHART_HINT = "`/winback stats chart` for the picture · `/winback stats 7d` for the table"


def digest_card(view: DigestView) -> View:
    """The digest as posted in the approvals channel (and printed by `winback digest`)."""
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"Weekly digest: {_period(view)}", HEADER_LIMIT)),
        _section(_period_line(view)),
        SectionBlock(
            fields=[MarkdownTextObject(text=clip(f, FIELD_LIMIT)) for f in _figures(view)]
        ),
    ]
    if view.quiet:
        blocks.append(_section("*A quiet week:* nobody was enrolled, messaged or heard from."))
    blocks += [
        _section(_segment_lines(view)),
        _section(_lift_lines(view.lift)),
        DividerBlock(),
        _section(_pending_lines(view)),
        ContextBlock(elements=[MarkdownTextObject(text=CHART_HINT)]),
    ]
    return checked(_fallback(view), blocks)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text or " ", SECTION_LIMIT)))


def _local(moment: datetime, view: DigestView) -> datetime:
    return moment.astimezone(ZoneInfo(view.zone))


def _period(view: DigestView) -> str:
    """'Sep 21 – Sep 28, 2026' in the digest's time zone."""
    start, end = _local(view.since, view), _local(view.until, view)
    return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"


def _period_line(view: DigestView) -> str:
    start, end = _local(view.since, view), _local(view.until, view)
    return (
        f"The 7 days from {start:%a %b} {start.day} {start:%H:%M} to {end:%a %b} {end.day} "
        f"{end:%H:%M} ({view.zone}), week {view.week}"
    )


def _people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


def _figures(view: DigestView) -> list[str]:
    funded = f"*Funded*\n{view.funded:,}"
    if view.funded_volume:
        funded += f" (${view.funded_volume:,.0f})"
    return [
        f"*Enrolled*\n{_people(view.enrolled)}",
        f"*Messaged*\n{_people(view.messaged)}",
        f"*Replied*\n{view.replied:,}",
        f"*Claimed*\n{view.claimed:,}",
        funded,
    ]


def _segment(name: str) -> str:
    return SEGMENT_WORDS.get(name, name.replace("_", " ").capitalize())


def _segment_lines(view: DigestView) -> str:
    if not view.top_segments:
        return "*Top segments by replies:* no replies this week."
    lines = ["*Top segments by replies*"]
    for rank, each in enumerate(view.top_segments, start=1):
        rate = f", {each.replied / each.reached * 100:.1f} % of {_people(each.reached)} reached"
        lines.append(
            f"{rank}. {_segment(each.segment)}: {each.replied:,} "
            f"{'reply' if each.replied == 1 else 'replies'}{rate if each.reached else ''}"
        )
    return "\n".join(lines)


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


def _lift_lines(lifts: tuple[Lift, ...]) -> str:
    if not lifts:
        return "*Holdout lift:* not enough data yet (no batch approved with a holdout so far)."
    lines = ["*Holdout lift* (funded rate, messaged vs held out, every batch approved so far)"]
    for each in lifts:
        name = TRIGGER_WORDS.get(each.trigger, each.trigger)
        if each.lift is None or each.low is None or each.high is None:
            lines.append(f"• {name}: {each.note or 'not enough data yet'}")
            continue
        lines.append(
            f"• {name}: {_points(each.lift)} points (95 %: {_points(each.low)} to "
            f"{_points(each.high)}), {each.messaged:,} messaged vs {each.holdout:,} held out"
        )
    return "\n".join(lines)


def _pending_lines(view: DigestView) -> str:
    if not view.pending_total:
        return "*Waiting for approval:* no batch."
    batches = "batch" if view.pending_total == 1 else "batches"
    lines = [f"*Waiting for approval:* {view.pending_total:,} {batches}"]
    for batch in view.pending:
        trigger = TRIGGER_WORDS.get(batch.trigger, batch.trigger)
        lines.append(
            f"• Batch {batch.batch_id}: {trigger}, {_segment(batch.segment)}, "
            f"{_people(batch.size)}, since {batch.created_at:%Y-%m-%d}"
        )
    more = view.pending_total - len(view.pending)
    if more:
        lines.append(f"…and {more:,} more: `/winback batches`")
    return "\n".join(lines)


def _fallback(view: DigestView) -> str:
    return (
        f"Weekly digest {_period(view)}: {view.enrolled:,} enrolled, {view.messaged:,} messaged, "
        f"{view.replied:,} replied, {view.claimed:,} claimed, {view.funded:,} funded"
    )
