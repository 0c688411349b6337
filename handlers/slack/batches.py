"""The batch card's buttons (approve, reject) and the size modal a big batch asks for.

Approving enrolls every member, which can outlast Slack's 3 seconds: the buttons are
acknowledged at once and decided in a lazy listener; the modal's size check answers inline
(its errors must be in the acknowledgement), the approval itself follows lazily.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.batches import (
    APPROVE_BATCH,
    CONFIRM_CALLBACK,
    REJECT_BATCH,
    SIZE_ACTION,
    SIZE_BLOCK,
    confirm_modal,
    decision_answer,
    modal_batch,
    modal_failed,
    not_a_manager,
    out_of_date,
    size_error,
    typed_size,
)
from core.decisions import CONFIRM, WRONG_SIZE, decide_batch, typed_size_matches
from handlers.slack.home import publish_home

logger = logging.getLogger(__name__)


def _ack(ack: Ack) -> None:
    ack()


def handle_batch_action(body: dict[str, Any], respond: Respond, client: WebClient,
                        context: Any) -> None:  # fmt: skip
    """Approve or Reject pressed: managers only; a big batch opens the size modal first."""
    deps, user = context["winback"], body["user"]["id"]
    action = body["actions"][0]

    def tell(text: str) -> None:
        _tell(body, respond, client, deps, text)

    if not deps.is_manager(user):
        tell(not_a_manager(sorted(deps.settings.manager_ids)))
        return
    approve = action["action_id"] == APPROVE_BATCH
    try:
        batch_id = int(action.get("value", ""))
    except ValueError:
        tell(out_of_date())
        return
    decision = decide_batch(
        session_factory=deps.sessions, batch_id=batch_id, approve=approve, by=user,
        now=deps.clock.now(), tracks=deps.track_map() if approve else None, config=deps.config,
        confirm_above=deps.config.replies.confirm_batch_size_above, posting=deps.posting,
    )  # fmt: skip
    if decision.outcome == CONFIRM and decision.batch is not None:
        channel = (body.get("container") or {}).get("channel_id")
        modal = confirm_modal(batch_id=batch_id, size=decision.batch.size, channel=channel,
                              home=_on_home(body))  # fmt: skip
        try:
            client.views_open(trigger_id=body["trigger_id"], view=modal)
        except SlackApiError:
            tell(modal_failed())
        return
    tell(decision_answer(decision))


def handle_batch_size_view(ack: Ack, body: dict[str, Any], context: Any) -> None:
    """The size typed in: a wrong one is refused inline, the right one closes the modal."""
    deps, user = context["winback"], body["user"]["id"]
    if not deps.is_manager(user):
        ack(response_action="errors",
            errors={SIZE_BLOCK: not_a_manager(sorted(deps.settings.manager_ids))})  # fmt: skip
        return
    typed = _typed(body)
    try:
        batch_id, _, _ = modal_batch(body["view"].get("private_metadata", ""))
    except (ValueError, KeyError, TypeError):
        ack(response_action="errors", errors={SIZE_BLOCK: out_of_date()})
        return
    if typed is None or not typed_size_matches(
        session_factory=deps.sessions, batch_id=batch_id, typed_size=typed
    ):
        ack(response_action="errors", errors={SIZE_BLOCK: size_error(typed)})
        return
    ack()


def handle_confirmed_approval(body: dict[str, Any], client: WebClient, context: Any) -> None:
    """After the right size: approve (the size checked again in the transaction), then tell."""
    deps, user = context["winback"], body["user"]["id"]
    typed = _typed(body)
    try:
        batch_id, channel, home = modal_batch(body["view"].get("private_metadata", ""))
    except (ValueError, KeyError, TypeError):
        return
    if not deps.is_manager(user) or typed is None:
        return  # already refused inline
    decision = decide_batch(
        session_factory=deps.sessions, batch_id=batch_id, approve=True, by=user,
        now=deps.clock.now(), tracks=deps.track_map(), config=deps.config, typed_size=typed,
        posting=deps.posting,
    )  # fmt: skip
    if decision.outcome == WRONG_SIZE:
        return
    if home:  # opened from the App Home: the Home shows the answer
        publish_home(client, deps, user, notice=decision_answer(decision))
    elif channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=decision_answer(decision))
        except SlackApiError as exc:  # the card shows the outcome anyway
            logger.warning("batch %d: answer not delivered (%s)", batch_id,
                           exc.response.get("error"))  # fmt: skip


def _typed(body: dict[str, Any]) -> int | None:
    values = body.get("view", {}).get("state", {}).get("values", {})
    return typed_size(values.get(SIZE_BLOCK, {}).get(SIZE_ACTION, {}).get("value"))


def _on_home(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def _tell(body: dict[str, Any], respond: Respond, client: WebClient, deps: Any, text: str) -> None:
    """An ephemeral answer under the card; on the App Home (no response_url), the Home again."""
    if body.get("response_url"):
        respond(text=text, replace_original=False, response_type="ephemeral")
    elif _on_home(body):
        publish_home(client, deps, body["user"]["id"], notice=text)


def register(app: App) -> None:
    """Listen to the batch card's buttons and the size modal."""
    for action_id in (APPROVE_BATCH, REJECT_BATCH):
        app.action(action_id)(ack=_ack, lazy=[handle_batch_action])
    app.view(CONFIRM_CALLBACK)(ack=handle_batch_size_view, lazy=[handle_confirmed_approval])
