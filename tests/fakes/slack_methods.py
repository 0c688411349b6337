"""The Web API methods of the fake Slack (tests/fakes/slack_api.py), one function each.

No HTTP here: each method takes the workspace and the decoded request body and returns Slack's
JSON answer, or raises `SlackError` for an `ok: false` one. The caller holds the fake's lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.fakes.slack_workspace import (
    CHANNEL_NAME,
    MAX_VIEW_BLOCKS,
    PERMALINK_HOST,
    USER_ID,
    Body,
    SlackError,
    Upload,
    Workspace,
    channel_of,
    check_blocks,
    check_content,
    content_of,
    flag,
    limit_of,
    required,
    user_ids,
    visible,
    window,
)


# --- methods -------------------------------------------------------------------------------
def auth_test(ws: Workspace, body: Body) -> Body:
    """Who the token belongs to."""
    return {
        "url": f"{PERMALINK_HOST}/",
        "team": "Fake Workspace",
        "user": "winback",
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, body: Body) -> Body:
    """Store the message in its channel (a thread reply under its parent) and echo it."""
    channel = channel_of(ws, body)
    check_content(body)
    message: Body = {
        "type": "message",
        "user": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "app_id": ws.app_id,
        "team": ws.team_id,
        "ts": ws.next_ts(),
        **content_of(body),
        "text": body.get("text") or "",
    }
    return _store(ws, channel, message, body.get("thread_ts"), flag(body.get("reply_broadcast")))


def _store(
    ws: Workspace, channel: str, message: Body, thread_ts: str | None, broadcast: bool = False
) -> Body:
    if thread_ts:
        message["thread_ts"] = thread_ts
        message["reply_broadcast"] = broadcast
        for parent in ws.channels.get(channel, []):
            if parent["ts"] == thread_ts:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
    ws.channels.setdefault(channel, []).append(message)
    return {"channel": channel, "ts": message["ts"], "message": json.loads(json.dumps(message))}


def chat_update(ws: Workspace, body: Body) -> Body:
    """Change the stored message; fields not given keep their old value, as in Slack."""
    channel = channel_of(ws, body)
    message = ws.find(channel, required(body, "ts", "message_not_found"))
    check_content(body, needs_content=False)
    message.update(content_of(body))
    message["edited"] = {"user": ws.bot_user_id, "ts": ws.next_ts()}
    return {
        "channel": channel,
        "ts": message["ts"],
        "text": message.get("text", ""),
        "message": json.loads(json.dumps(message)),
    }


def chat_post_ephemeral(ws: Workspace, body: Body) -> Body:
    """Remember the ephemeral message (never in history) and give its message_ts."""
    channel = channel_of(ws, body)
    user = required(body, "user", "user_not_in_channel")
    if not USER_ID.match(user):
        raise SlackError("user_not_in_channel")
    check_content(body)
    ts = ws.next_ts()
    ws.ephemerals.append({"channel": channel, "user": user, "message_ts": ts, **content_of(body)})
    return {"message_ts": ts}


def chat_get_permalink(ws: Workspace, body: Body) -> Body:
    """A permalink for a stored message."""
    channel = channel_of(ws, body)
    ts = ws.find(channel, required(body, "message_ts", "message_not_found"))["ts"]
    return {
        "channel": channel,
        "permalink": f"{PERMALINK_HOST}/archives/{channel}/p{ts.replace('.', '')}",
    }


def _view(ws: Workspace, body: Body, kind: str) -> Body:
    view = body.get("view")
    if not isinstance(view, dict) or view.get("type") != kind:
        raise SlackError("invalid_arguments")
    check_blocks(view.get("blocks"), MAX_VIEW_BLOCKS)
    if kind == "modal" and not view.get("title"):
        raise SlackError("invalid_arguments")
    return {"id": ws.next_id("V"), "team_id": ws.team_id, "app_id": ws.app_id, **view}


def views_publish(ws: Workspace, body: Body) -> Body:
    """Set the user's App Home."""
    user = required(body, "user_id", "user_not_found")
    if not USER_ID.match(user):
        raise SlackError("user_not_found")
    ws.home_views[user] = view = _view(ws, body, "home")
    return {"view": view}


def views_open(ws: Workspace, body: Body) -> Body:
    """Open a modal for the trigger."""
    trigger = required(body, "trigger_id", "invalid_trigger_id")
    view = _view(ws, body, "modal")
    ws.opened_views.append({"trigger_id": trigger, "view": view})
    return {"view": view}


def users_lookup_by_email(ws: Workspace, body: Body) -> Body:
    """The registered user with this email, or users_not_found."""
    email = required(body, "email", "users_not_found").lower()
    for user in ws.users.values():
        if user.email.lower() == email:
            profile = {"email": user.email, "real_name": user.name, "display_name": user.name}
            return {
                "user": {
                    "id": user.id,
                    "team_id": ws.team_id,
                    "name": user.email.split("@")[0],
                    "real_name": user.name,
                    "deleted": False,
                    "is_bot": False,
                    "profile": profile,
                }
            }
    raise SlackError("users_not_found")


def conversations_create(ws: Workspace, body: Body) -> Body:
    """A new channel with the bot in it; names follow Slack's rules."""
    name = required(body, "name", "invalid_name_required")
    if len(name) > 80:
        raise SlackError("invalid_name_maxlength")
    if not CHANNEL_NAME.match(name):
        raise SlackError("invalid_name_specials")
    if any(info["name"] == name for info in ws.created.values()):
        raise SlackError("name_taken")
    private = flag(body.get("is_private"))
    channel_id = ws.next_id("G" if private else "C")
    ws.created[channel_id] = info = {
        "id": channel_id,
        "name": name,
        "is_channel": not private,
        "is_private": private,
        "is_member": True,
        "creator": ws.bot_user_id,
        "created": ws._clock // 1_000_000,
    }
    ws.members[channel_id] = {ws.bot_user_id}
    ws.channels.setdefault(channel_id, [])
    return {"channel": dict(info)}


def conversations_invite(ws: Workspace, body: Body) -> Body:
    """Add users to a channel; already_in_channel when every one of them is in it."""
    channel = channel_of(ws, body)
    users = user_ids(body)
    if ws.bot_user_id in users:
        raise SlackError("cant_invite_self")
    members = ws.members.setdefault(channel, {ws.bot_user_id})
    if all(user in members for user in users):
        raise SlackError("already_in_channel")
    members.update(users)
    return {"channel": dict(ws.created.get(channel, {"id": channel}))}


def conversations_open(ws: Workspace, body: Body) -> Body:
    """The DM channel with the user (the same id every time)."""
    if body.get("channel"):
        return {"channel": {"id": channel_of(ws, body)}}
    return {"channel": {"id": ws.dm_channel(frozenset(user_ids(body)))}, "already_open": False}


def conversations_history(ws: Workspace, body: Body) -> Body:
    """The channel's messages, newest first (thread replies only when broadcast)."""
    channel = channel_of(ws, body)
    top = [
        m
        for m in ws.channels.get(channel, [])
        if m.get("thread_ts") in (None, m["ts"]) or m.get("reply_broadcast")
    ]
    found = list(reversed(window(top, body)))
    limit, with_metadata = limit_of(body), flag(body.get("include_all_metadata"))
    return {
        "messages": [visible(m, with_metadata) for m in found[:limit]],
        "has_more": len(found) > limit,
        "pin_count": 0,
    }


def conversations_replies(ws: Workspace, body: Body) -> Body:
    """A thread: the parent first, then its replies oldest first."""
    channel = channel_of(ws, body)
    ts = required(body, "ts", "thread_not_found")
    try:
        parent = ws.find(channel, ts)
    except SlackError as exc:
        raise SlackError("thread_not_found") from exc
    replies = [m for m in ws.channels[channel] if m.get("thread_ts") == ts and m is not parent]
    thread = [parent, *window(replies, body)]
    limit, with_metadata = limit_of(body), flag(body.get("include_all_metadata"))
    return {
        "messages": [visible(m, with_metadata) for m in thread[:limit]],
        "has_more": len(thread) > limit,
    }


def files_get_upload_url_external(ws: Workspace, body: Body) -> Body:
    """Reserve a file id and an upload URL on the fake."""
    filename = required(body, "filename")
    try:
        length = int(required(body, "length"))
    except ValueError as exc:
        raise SlackError("invalid_arguments") from exc
    if length <= 0:
        raise SlackError("invalid_arguments")
    file_id = ws.next_id("F")
    ws.uploads[file_id] = Upload(id=file_id, filename=filename, length=length)
    return {"upload_url": f"{ws.root_url}/upload/v1/{file_id}", "file_id": file_id}


def files_complete_upload_external(ws: Workspace, body: Body) -> Body:
    """Finish uploaded files; with a channel, share them there in one message."""
    entries = body.get("files")
    if not isinstance(entries, list) or not entries:
        raise SlackError("invalid_arguments")
    uploads = [ws.uploads.get(str(entry.get("id"))) for entry in entries]
    if any(u is None or u.content is None for u in uploads):
        raise SlackError("file_not_found")
    channel = channel_of(ws, body, "channel_id") if body.get("channel_id") else None
    files = []
    for upload, entry in zip(uploads, entries, strict=True):
        assert upload is not None and upload.content is not None
        upload.title, upload.channel = entry.get("title") or upload.filename, channel
        files.append(
            {"id": upload.id, "name": upload.filename, "title": upload.title}
            | {"size": len(upload.content), "user": ws.bot_user_id}
        )
    if channel:
        message = {"type": "message", "user": ws.bot_user_id, "bot_id": ws.bot_id}
        message |= {"ts": ws.next_ts(), "text": body.get("initial_comment") or "", "files": files}
        _store(ws, channel, message, body.get("thread_ts"))
    return {"files": files}


def apps_connections_open(ws: Workspace, body: Body) -> Body:
    """A Socket Mode URL (the fake does not serve Socket Mode: only the answer)."""
    return {"url": f"{ws.root_url.replace('http', 'ws', 1)}/link/?ticket={ws.next_id('T')}"}


Method = Callable[[Workspace, Body], Body]
METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "views.publish": views_publish,
    "views.open": views_open,
    "users.lookupByEmail": users_lookup_by_email,
    "conversations.create": conversations_create,
    "conversations.invite": conversations_invite,
    "conversations.open": conversations_open,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
    "apps.connections.open": apps_connections_open,
}
# Socket Mode needs the app-level token; every other method the bot token.
TOKEN_PREFIX = {"apps.connections.open": "xapp-"}
