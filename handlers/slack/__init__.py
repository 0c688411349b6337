"""Slack listeners: each module registers its own with `register(app)` (bolt's starter layout)."""

from __future__ import annotations

from slack_bolt import App


def register_all(app: App) -> None:
    """Register every Slack listener on `app`."""
    from handlers.slack import batches, commands, home, replies

    for module in (home, replies, commands, batches):  # home first: its Claim is the Home's
        module.register(app)
