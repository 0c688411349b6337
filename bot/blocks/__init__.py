"""Block Kit builders: pure functions, data in, blocks out (slack_sdk.models checks the limits).

One module per kind of view: replies (warm-reply and call-task cards), batches (approval cards),
commands (`/winback` answers), home (App Home); text renders any of them readably for the log.
"""

from bot.blocks.common import MAX_BLOCKS, SECTION_LIMIT, View, checked, clip

__all__ = ["MAX_BLOCKS", "SECTION_LIMIT", "View", "checked", "clip"]
