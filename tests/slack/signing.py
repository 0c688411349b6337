"""Signed Slack inbound requests for the bot's tests: the raw bodies Slack sends, and v0 headers.

The signature is computed here with hmac (Slack's documented v0 scheme), independently of
slack_sdk, so a test that the app's SignatureVerifier accepts it means something. The ids
default to the fake workspace's (tests/fakes/slack_methods.Workspace).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

from tests.fakes.slack_workspace import Workspace

TEAM_ID = Workspace.team_id
APP_ID = Workspace.app_id
BOT_USER_ID = Workspace.bot_user_id
TEAM_DOMAIN = "fake-workspace"
_serial = itertools.count(1)


def signed_headers(
    secret: str, body: bytes, timestamp: int | None = None, content_type: str | None = None
) -> dict[str, str]:
    """X-Slack-Request-Timestamp and X-Slack-Signature (v0) for this exact body, and its type."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + stamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if content_type is None:
        is_json = body.lstrip().startswith(b"{")
        content_type = "application/json" if is_json else "application/x-www-form-urlencoded"
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def _trigger_id() -> str:
    return f"{next(_serial)}.{int(time.time())}.fa4e0trigger"


def _user(user_id: str) -> dict[str, str]:
    name = user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def slash_command_body(
    command: str = "/winback",
    text: str = "",
    user_id: str = "U0LOANOFF1",
    channel_id: str = "C0APPROVAL",
    response_url: str = "https://hooks.slack.com/commands/T0FAKETEAM/1/fake",
    channel_name: str = "winback",
) -> bytes:
    """A slash command as Slack posts it (form-encoded)."""
    return urlencode(
        {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": _trigger_id(),
        }
    ).encode()


def _payload_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def block_action_body(
    action_id: str,
    value: str,
    user_id: str = "U0LOANOFF1",
    channel_id: str = "C0APPROVAL",
    message_ts: str = "1700000000.000100",
    response_url: str = "https://hooks.slack.com/actions/T0FAKETEAM/1/fake",
    message: dict[str, Any] | None = None,
    block_id: str = "actions",
) -> bytes:
    """A button click on a message (block_actions, message container), form `payload=` JSON.

    Pass `message` (e.g. `fake.message(channel, ts)`) to send the card as it really is.
    """
    card = message or {"type": "message", "user": BOT_USER_ID, "ts": message_ts, "text": ""}
    action_ts = f"{int(time.time())}.{next(_serial):06d}"
    return _payload_body(
        {
            "type": "block_actions",
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": _trigger_id(),
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": "winback"},
            "message": card,
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": {"type": "plain_text", "text": action_id, "emoji": True},
                    "value": value,
                    "action_ts": action_ts,
                }
            ],
        }
    )


def view_submission_body(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    user_id: str = "U0LOANOFF1",
    private_metadata: str = "",
    view_id: str = "V000000001",
) -> bytes:
    """A modal submitted (view_submission); `values` is {block_id: {action_id: {type, value}}}."""
    view = {
        "id": view_id,
        "team_id": TEAM_ID,
        "app_id": APP_ID,
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Winback"},
        "blocks": [],
        "state": {"values": values},
        "hash": f"{int(time.time())}.fakehash",
        "root_view_id": view_id,
        "previous_view_id": None,
        "bot_id": Workspace.bot_id,
    }
    return _payload_body(
        {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "user": _user(user_id),
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "trigger_id": _trigger_id(),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
    )


def event_body(event: dict[str, Any], event_id: str | None = None) -> bytes:
    """An Events API delivery (event_callback) wrapping `event`, as JSON."""
    now = int(time.time())
    return json.dumps(
        {
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_serial):010d}",
            "event_time": now,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-fake-{event.get('type', 'event')}-{now}",
        }
    ).encode()
