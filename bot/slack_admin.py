"""One-off Slack administration used by the CLI (creating a loan officer's channel)."""

from __future__ import annotations

import re

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.settings import Settings, SettingsError


def create_lo_channel(settings: Settings, *, name: str, slack_user: str | None) -> str:
    """Create a private channel for a loan officer's warm replies and invite them; its id."""
    if not settings.SLACK_BOT_TOKEN:
        raise SettingsError("setting SLACK_BOT_TOKEN is required for --create-channel")
    client = WebClient(token=settings.SLACK_BOT_TOKEN, base_url=settings.SLACK_API_URL)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "lo"
    try:
        response = client.conversations_create(name=f"winback-{slug}", is_private=True)
        channel_id = response["channel"]["id"]
        if slack_user:
            client.conversations_invite(channel=channel_id, users=slack_user)
    except SlackApiError as exc:
        raise SettingsError(
            f"Slack refused to create the channel: {exc.response['error']}"
        ) from None
    return str(channel_id)
