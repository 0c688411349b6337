"""The App Home: published when opened, and again after Claim, Pause or Resume pressed on it."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.answers import reply_action_answer
from bot.blocks.home import PAUSE, RESUME, home_text, home_view
from core.cards.actions import ReplyActionError
from core.cards.flows import CLAIM, act_on_reply
from core.cards.home import HomeData, home_for
from core.outreach.switches import pause, resume
from core.stats import Funnel, funnel

logger = logging.getLogger(__name__)
FUNNEL_DAYS = 30  # the Home's funnel: the last 30 days, as `/winback stats 30d`
MAX_EMAIL_LOOKUPS = 20  # users.lookupByEmail per Home opened by someone not linked yet


def handle_home_opened(event: dict[str, Any], client: WebClient, context: Any) -> None:
    """Publish the Home of whoever opened it (lazy: e-mail look-ups may take a while)."""
    if event.get("tab", "home") != "home":
        return  # the Messages tab: nothing to publish
    publish_home(client, context["winback"], event["user"])


def handle_home_claim_action(
    ack: Ack, body: dict[str, Any], client: WebClient, context: Any
) -> None:
    """Claim pressed on the Home: the same claim as on the card, then the Home refreshed."""
    ack()
    deps = context["winback"]
    user = body["user"]["id"]
    try:
        result = act_on_reply(
            session_factory=deps.sessions, posting=deps.posting, action=CLAIM,
            reply_id=int(body["actions"][0].get("value", "")), by=user, now=deps.clock.now(),
        )  # fmt: skip
        notice = reply_action_answer(result, user, "claim_reply")
    except (ValueError, ReplyActionError):
        notice = "That reply is gone: the list below is up to date."
    publish_home(client, deps, user, notice=notice)


def handle_pause_action(ack: Ack, body: dict[str, Any], client: WebClient, context: Any) -> None:
    """Pause or Resume pressed on the Home: managers only, then the Home refreshed."""
    ack()
    deps = context["winback"]
    user = body["user"]["id"]
    pausing = body["actions"][0]["action_id"] == PAUSE
    if not deps.is_manager(user):
        notice = "Only managers can pause or resume outreach. Nothing changed."
    else:
        with deps.sessions() as session, session.begin():
            if pausing:
                pause(session=session, by=user, reason="paused from the App Home",
                      now=deps.clock.now())  # fmt: skip
            else:
                resume(session=session, by=user, now=deps.clock.now(),
                       reason="resumed from the App Home")  # fmt: skip
        notice = "Outreach paused: nothing is sent until you resume." if pausing else (
            "Outreach resumed: held messages go out at the next dispatch."
        )  # fmt: skip
    publish_home(client, deps, user, notice=notice)


def publish_home(client: WebClient, deps: Any, user: str, notice: str | None = None) -> None:
    """views.publish the user's Home as the database has it now."""
    data, funnel = _home_data(client, deps, user)
    managers = sorted(deps.settings.manager_ids)
    view = home_view(data, funnel=funnel, managers=managers, notice=notice)
    try:
        client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:  # the next opening publishes it again
        logger.warning("App Home of %s not published: %s", user, exc.response.get("error"))
        return
    logger.info("App Home of %s published (%s)", user, home_text(data))


def _home_data(client: WebClient, deps: Any, user: str) -> tuple[HomeData, Funnel | None]:
    def load(email: str | None) -> tuple[HomeData, Funnel | None]:
        now = deps.clock.now()
        with deps.sessions() as session, session.begin():
            data = home_for(
                session, slack_user_id=user, email=email, now=now,
                manager=deps.is_manager(user), default_zone=deps.config.replies.default_timezone,
            )  # fmt: skip
            if not (data.is_officer or data.is_manager):
                return data, None
            since = now - timedelta(days=FUNNEL_DAYS)
            return data, funnel(session, since=since, by="lo", now=now, period="30d")

    data, by_officer = load(None)
    if not data.is_officer and data.unlinked_officer_emails:
        email = _email_of(client, user, data.unlinked_officer_emails)
        if email is not None:
            data, by_officer = load(email)  # links the officer to this Slack user for next time
    return data, by_officer


def _email_of(client: WebClient, user: str, emails: tuple[str, ...]) -> str | None:
    """The officer e-mail Slack says belongs to `user` (never logged: addresses stay private)."""
    for email in emails[:MAX_EMAIL_LOOKUPS]:
        try:
            found = client.users_lookupByEmail(email=email)["user"]["id"]
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error == "users_not_found":
                continue
            logger.warning("looking up a loan officer in Slack failed: %s", error)
            return None
        if found == user:
            return email
    return None


def _pressed_on_home(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def _ack_event(ack: Ack) -> None:
    ack()


def register(app: App) -> None:
    """Listen to app_home_opened and the Home's own buttons (Claim, Pause, Resume).

    The Home's Claim must be registered before the warm-reply card's (handlers/slack/replies.py):
    Bolt runs the first listener that matches, and a press on the Home has no response_url.
    """
    app.event("app_home_opened")(ack=_ack_event, lazy=[handle_home_opened])
    app.action("claim_reply", matchers=[_pressed_on_home])(handle_home_claim_action)
    for action_id in (PAUSE, RESUME):
        app.action(action_id)(handle_pause_action)
