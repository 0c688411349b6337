"""The fake Slack workspace's state, and the request checks every fake Slack method shares.

Users, channels and DMs are lenient (any well-formed id is accepted, as a workspace that has
them would); only `users.lookupByEmail` needs the users a test registered with `add_user`.
Used by tests/fakes/slack_methods.py (the methods) and tests/fakes/slack_api.py (the server).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

Body = dict[str, Any]
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
# Fields Slack takes as JSON even inside a form body.
JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "files", "user_auth_blocks")
MAX_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
PERMALINK_HOST = "https://fake-workspace.slack.com"


class SlackError(Exception):
    """An `ok: false` answer with Slack's error code."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class SlackUser:
    """A workspace member `users.lookupByEmail` can find."""

    id: str
    email: str
    name: str


@dataclass
class Upload:
    """A file reserved by files.getUploadURLExternal; `content` once the upload URL got it."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None


@dataclass
class Workspace:
    """Everything the fake remembers: messages per channel, users, DMs, views and files."""

    root_url: str = ""
    team_id: str = "T0FAKETEAM"
    bot_user_id: str = "U0FAKEBOT"
    bot_id: str = "B0FAKEBOT"
    app_id: str = "A0FAKEAPP"
    users: dict[str, SlackUser] = field(default_factory=dict)
    channels: dict[str, list[Body]] = field(default_factory=dict)  # oldest first
    created: dict[str, Body] = field(default_factory=dict)  # conversations.create, by id
    members: dict[str, set[str]] = field(default_factory=dict)
    dms: dict[frozenset[str], str] = field(default_factory=dict)
    home_views: dict[str, Body] = field(default_factory=dict)
    opened_views: list[Body] = field(default_factory=list)
    ephemerals: list[Body] = field(default_factory=list)
    uploads: dict[str, Upload] = field(default_factory=dict)
    _clock: int = 1_700_000_000_000_000  # microseconds; each ts is 100 µs after the last
    _serial: int = 0

    def next_ts(self) -> str:
        """A message ts, unique and increasing, shaped like Slack's '1700000000.000100'."""
        self._clock += 100
        return f"{self._clock // 1_000_000}.{self._clock % 1_000_000:06d}"

    def next_id(self, prefix: str) -> str:
        """A fresh Slack-shaped id such as 'C000000001'."""
        self._serial += 1
        return f"{prefix}{self._serial:09d}"

    def dm_channel(self, users: frozenset[str]) -> str:
        """The DM (one user) or group DM channel for these users, opened on first use."""
        if users not in self.dms:
            self.dms[users] = self.next_id("D" if len(users) == 1 else "G")
        return self.dms[users]

    def find(self, channel: str, ts: str) -> Body:
        """The stored message, or Slack's message_not_found."""
        for message in self.channels.get(channel, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")


def flag(value: object) -> bool:
    """Slack's booleans: true in JSON, "1" or "true" in a form."""
    return value in (True, 1, "1", "true", "True")


def required(body: Body, name: str, error: str = "invalid_arguments") -> str:
    """The field's value, or Slack's error when it is missing or empty."""
    value = body.get(name)
    if value in (None, ""):
        raise SlackError(error)
    return str(value)


def channel_of(ws: Workspace, body: Body, name: str = "channel") -> str:
    """A channel id from the body; a user id means the DM with that user, as Slack allows."""
    channel = required(body, name, "channel_not_found")
    if USER_ID.match(channel):
        return ws.dm_channel(frozenset({channel}))
    if not CHANNEL_ID.match(channel):
        raise SlackError("channel_not_found")
    return channel


def user_ids(body: Body) -> list[str]:
    """The comma-separated `users` field, each a well-formed user id."""
    users = [user.strip() for user in str(body.get("users") or "").split(",") if user.strip()]
    if not users:
        raise SlackError("no_user")
    if any(not USER_ID.match(user) for user in users):
        raise SlackError("user_not_found")
    return users


def check_content(body: Body, *, needs_content: bool = True) -> None:
    """Reject what Slack rejects: no content, too long, malformed blocks or metadata."""
    text, blocks, attachments = body.get("text"), body.get("blocks"), body.get("attachments")
    if needs_content and not (text or blocks or attachments):
        raise SlackError("no_text")
    if text is not None and len(str(text)) > MAX_TEXT:
        raise SlackError("msg_too_long")
    check_blocks(blocks, MAX_MESSAGE_BLOCKS)
    if attachments is not None and not (
        isinstance(attachments, list) and all(isinstance(a, dict) for a in attachments)
    ):
        raise SlackError("invalid_attachments")
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        raise SlackError("invalid_metadata_format")


def check_blocks(blocks: object, limit: int) -> None:
    """Reject blocks that are not a list of typed blocks, or too many of them."""
    if blocks is None:
        return
    if not isinstance(blocks, list) or len(blocks) > limit:
        raise SlackError("invalid_blocks")
    if any(not (isinstance(b, dict) and isinstance(b.get("type"), str)) for b in blocks):
        raise SlackError("invalid_blocks")


def content_of(body: Body) -> Body:
    """The message content fields the body gives."""
    return {k: body[k] for k in ("text", "blocks", "attachments", "metadata") if k in body}


def visible(message: Body, with_metadata: bool) -> Body:
    """A copy as conversations.history shows it: metadata only when asked for."""
    shown = json.loads(json.dumps(message))
    if not with_metadata:
        shown.pop("metadata", None)
    return shown


def window(messages: list[Body], body: Body) -> list[Body]:
    """Messages within oldest/latest (exclusive unless inclusive), as Slack filters them."""
    oldest, latest = float(body.get("oldest") or 0), float(body.get("latest") or "inf")
    inclusive = flag(body.get("inclusive"))
    return [
        m
        for m in messages
        if (oldest <= float(m["ts"]) <= latest)
        and (inclusive or float(m["ts"]) not in (oldest, latest))
    ]


def limit_of(body: Body) -> int:
    """The `limit` field, Slack's default 100 when absent."""
    try:
        return max(1, min(int(body.get("limit") or 100), 999))
    except ValueError as exc:
        raise SlackError("invalid_limit") from exc


def token_error(authorization: str | None, prefix: str) -> str | None:
    """Slack's error for a missing or wrong bearer token, or None when it is right."""
    if not authorization or not authorization.startswith("Bearer "):
        return "not_authed"
    token = authorization[len("Bearer ") :]
    if token.startswith(prefix):
        return None
    return "not_allowed_token_type" if token.startswith(("xoxb-", "xapp-")) else "invalid_auth"


def decode(raw: bytes, content_type: str) -> tuple[Body, str | None]:
    """The body as slack_sdk sent it: JSON, or a form whose JSON-valued fields are parsed."""
    media_type = content_type.split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
        if media_type == "application/json":
            body = json.loads(text) if text else {}
            if not isinstance(body, dict):
                return {}, "a JSON body that is not an object"
        elif media_type == "application/x-www-form-urlencoded":
            fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
            repeated = sorted(name for name, values in fields.items() if len(values) > 1)
            if repeated:
                return {}, f"repeated form fields {repeated}"
            body = {name: values[0] for name, values in fields.items()}
        else:
            return {}, f"unexpected Content-Type {content_type!r}"
    except (UnicodeDecodeError, ValueError) as exc:
        return {}, f"undecodable body: {exc}"
    for name in JSON_FIELDS:
        if isinstance(body.get(name), str) and body[name][:1] in ("[", "{"):
            try:
                body[name] = json.loads(body[name])
            except ValueError:
                return body, f"{name} is not valid JSON"
    return body, None
