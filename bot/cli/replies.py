"""`winback replies [--unclaimed] [--json]`: warm replies and their state (SPEC §4)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from bot.cli.common import JsonOption, NowOption, app, print_json, print_table, runtime
from core.inbound.listing import CLAIMED, UNCLAIMED, ReplyLine, list_replies

WORDS_WIDTH = 48  # their words, trimmed so a row fits a 160-column terminal


@app.command("replies")
def replies_command(
    unclaimed: Annotated[
        bool, typer.Option("--unclaimed", help="Only replies no loan officer has claimed yet.")
    ] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Warm replies, newest first: who wrote, what they said, and who has it."""
    rt = runtime(now)
    with rt.sessions() as session:
        lines = list_replies(session, unclaimed=unclaimed)
    if as_json:
        print_json({"replies": [line.as_json() for line in lines]})
        return
    if not lines:
        typer.echo("No unclaimed replies." if unclaimed else "No replies yet.")
        return
    moment = rt.clock.now()
    rows = [
        (str(line.id), when_text(line.received_at, moment), line.channel,
         line.name or "not in the book", line.address, line.classification.replace("_", " "),
         trimmed(line.text), state_text(line))
        for line in lines
    ]  # fmt: skip
    print_table(
        ("id", "received", "channel", "who", "address", "kind", "their words", "state"),
        rows,
        right=(0,),
    )


def when_text(moment: datetime, now: datetime) -> str:
    """A time as people say it, in this machine's time zone: '12 min ago', 'yesterday 4:05 PM'."""
    age = now - moment
    if timedelta(0) <= age < timedelta(minutes=1):
        return "just now"
    if timedelta(0) <= age < timedelta(hours=1):
        return f"{int(age.total_seconds() // 60)} min ago"
    local, today = moment.astimezone(), now.astimezone().date()
    clock = local.strftime("%I:%M %p").lstrip("0")
    if local.date() == today:
        return f"today {clock}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday {clock}"
    if local.year == today.year:
        return f"{local:%a %b} {local.day} {clock}"
    return f"{local:%b} {local.day}, {local.year} {clock}"


def trimmed(text: str, width: int = WORDS_WIDTH) -> str:
    """Their words on one line, cut with an ellipsis when longer than `width`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def state_text(line: ReplyLine) -> str:
    """'unclaimed', 'claimed by U123', or the outcome ('not interested, by U123')."""
    if line.state == UNCLAIMED:
        return UNCLAIMED
    if line.state == CLAIMED:
        return f"claimed by {line.claimed_by}"
    by = f", by {line.claimed_by}" if line.claimed_by else ""
    return line.state.replace("_", " ") + by
