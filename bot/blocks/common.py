"""What every Block Kit view shares: the limits, clipping, and a checked list of blocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50  # Slack refuses a message with more
SECTION_LIMIT = 3000  # characters in a section's text
FIELD_LIMIT = 2000  # characters in one section field
HEADER_LIMIT = 150


@dataclass(frozen=True)
class View:
    """A message ready for chat.postMessage / chat.update: blocks plus the notification text."""

    text: str  # the fallback: notifications and screen readers
    blocks: list[dict[str, Any]]


def clip(text: str, limit: int = SECTION_LIMIT) -> str:
    """`text` cut to Slack's limit, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def checked(text: str, blocks: list[Block]) -> View:
    """The blocks as dicts, validated by slack_sdk (lengths, counts) before anything is sent."""
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1] + blocks[-1:]
    return View(text=clip(text, 3000), blocks=[block.to_dict() for block in blocks])


def slack_time(moment: datetime, fallback_format: str = "%H:%M UTC") -> str:
    """A time every reader sees in their own time zone (Slack's date token)."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{time}}|{moment.strftime(fallback_format)}>"


def slack_day_time(moment: datetime) -> str:
    """A date and time in the reader's time zone."""
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def escape(text: str) -> str:
    """Text from a borrower, safe in mrkdwn (no @channel pings, no fake links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
