"""Any Block Kit view as plain text: the sandbox's log (no Slack set up) and the demo's terminal."""

from __future__ import annotations

import re
from typing import Any

from bot.blocks.common import View

_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_USER = re.compile(r"<@([A-Z0-9]+)>")
_EMOJI = re.compile(r":[a-z0-9_+-]+:\s?")


def plain(text: str) -> str:
    """mrkdwn made readable in a terminal: dates, mentions, emoji codes, entities."""
    text = _DATE.sub(r"\1", text)
    text = _USER.sub(r"@\1", text)
    text = _EMOJI.sub("", text)
    text = text.replace("*", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def view_text(view: View) -> str:
    """The view's blocks, line by line, with buttons as [Label]."""
    lines: list[str] = []
    for block in view.blocks:
        lines.extend(_block_lines(block))
    return "\n".join(line.rstrip() for line in lines)


def _block_lines(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = plain(block["text"]["text"])
        return [title, "=" * min(len(title), 60)]
    if kind == "section":
        lines = [plain(block["text"]["text"])] if block.get("text") else []
        fields = [plain(f["text"]).replace("\n", ": ", 1) for f in block.get("fields", [])]
        return lines + [f"  {field}" for field in fields]
    if kind == "context":
        return [plain(e.get("text", "")) for e in block.get("elements", [])]
    if kind == "actions":
        labels = [f"[{e['text']['text']}]" for e in block.get("elements", []) if e.get("text")]
        return ["  " + "  ".join(labels)]
    if kind == "divider":
        return ["-" * 40]
    return []
