"""The warm-reply card's buttons: claim, snooze, not interested, stop outreach, mark funded."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.blocks.answers import reply_action_answer
from core.cards.actions import ReplyActionError
from core.cards.flows import CLAIM, CLOSE, FUNDED, SNOOZE, STOP, act_on_reply

ACTIONS = {"claim_reply": CLAIM, "snooze_reply": SNOOZE, "not_interested": CLOSE,
           "stop_outreach": STOP, "mark_funded": FUNDED}  # fmt: skip


def handle_reply_action(ack: Ack, body: dict[str, Any], respond: Respond, context: Any) -> None:
    """Any of the card's buttons: one core call, the card re-rendered, the presser told (a
    manager may mark another officer's claimed reply funded)."""
    ack()
    deps = context["winback"]
    action = body["actions"][0]
    user = body["user"]["id"]
    try:
        result = act_on_reply(
            session_factory=deps.sessions, posting=deps.posting,
            action=ACTIONS[action["action_id"]], reply_id=int(action.get("value", "")), by=user,
            now=deps.clock.now(), snooze_minutes=deps.config.replies.snooze_minutes,
            manager=deps.is_manager(user),
        )  # fmt: skip
    except (ValueError, ReplyActionError):
        _tell(respond, "That card is out of date: the reply it shows is gone.")
        return
    _tell(respond, reply_action_answer(result, user, action["action_id"]))


def _tell(respond: Respond, text: str) -> None:
    respond(text=text, replace_original=False, response_type="ephemeral")


def register(app: App) -> None:
    """Listen to the warm-reply buttons."""
    for action_id in ACTIONS:
        app.action(action_id)(handle_reply_action)
