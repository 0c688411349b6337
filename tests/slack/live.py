"""`winback web` with Slack set up against the fake Web API: the product's own card router."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import select, update

from core.book.models import LoanOfficer
from core.cards.models import Card
from tests.fakes.slack_api import FakeSlack
from tests.outreach import Book, approved_book
from tests.slack.signing import block_action_body, signed_headers, slash_command_body
from tests.web import LiveWeb

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1-winback-test"
LO_CHANNEL = "C0LOCHANNEL"
TEAM_CHANNEL = "C0TEAM"
APPROVALS_CHANNEL = "C0APPROVALS"
MANAGER = "U0MANAGER"
LO_USER = "U0LOANOFFICER"


def slack_settings(fake: FakeSlack, **extra: str) -> dict[str, str]:
    """The Slack settings of a live install, pointed at the fake."""
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.url,
        "SLACK_APPROVALS_CHANNEL": APPROVALS_CHANNEL,
        "SLACK_TEAM_CHANNEL": TEAM_CHANNEL,
        "SLACK_MANAGER_IDS": MANAGER,
        **extra,
    }


def slack_web(database_url: str, fake: FakeSlack, **extra: str) -> Iterator[LiveWeb]:
    """A started web process with Slack configured and the real reply router."""
    web = LiveWeb(database_url, real_router=True, **slack_settings(fake, **extra)).start()
    try:
        yield web
    finally:
        web.stop()


def book_with_officer(
    web: LiveWeb, people: list[dict[str, Any]], *, channel: str | None = LO_CHANNEL
) -> Book:
    """Borrowers in an approved rate-drop batch, their LO with a Slack channel (or none)."""
    book = approved_book(web.sessions, people)
    with web.sessions() as session, session.begin():
        session.execute(update(LoanOfficer).values(slack_channel_id=channel, slack_user_id=LO_USER))
    return book


def officer_id(web: LiveWeb) -> int:
    """The book's loan officer."""
    with web.sessions() as session:
        return session.scalars(select(LoanOfficer.id)).one()


def press(
    web: LiveWeb, action_id: str, value: str, *, user: str, response_url: str, message_ts: str = ""
) -> httpx.Response:
    """Press a button on a card, signed as Slack signs it."""
    body = block_action_body(
        action_id=action_id, value=value, user_id=user, channel_id=LO_CHANNEL,
        message_ts=message_ts or "1.0", response_url=response_url,
    )  # fmt: skip
    return slack_post(web, body)


def slash(web: LiveWeb, text: str, *, user: str, response_url: str) -> httpx.Response:
    """Type `/winback <text>` in Slack."""
    body = slash_command_body(text=text, user_id=user, response_url=response_url)
    return slack_post(web, body)


def slack_post(web: LiveWeb, body: bytes, **header_overrides: str) -> httpx.Response:
    """POST a signed body to /slack/events."""
    headers = {**signed_headers(SIGNING_SECRET, body), **header_overrides}
    return web.http.post("/slack/events", content=body, headers=headers)


def settled(web: LiveWeb) -> None:
    """Wait until every card was tried at least once and no post is in flight."""
    for _ in range(200):
        with web.sessions() as session:
            cards = session.scalars(select(Card)).all()
            tried = [c.status != "pending" or c.attempts > 0 for c in cards]
            if cards and all(tried) and all(card.lease_until is None for card in cards):
                return
        time.sleep(0.05)
    raise AssertionError("a card's post never finished")
