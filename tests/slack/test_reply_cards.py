"""Warm replies end to end: a text to /twilio/sms → a card in the LO's channel → Claim."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core import jobs
from core.attribution.models import FundedCredit
from core.cards.models import Card
from core.inbound.models import Reply
from tests.fakes.slack_api import FakeSlack
from tests.inbound.texting import text
from tests.slack.live import (
    LO_CHANNEL,
    MANAGER,
    TEAM_CHANNEL,
    book_with_officer,
    press,
    settled,
    slack_web,
)
from tests.web import LiveWeb

ANA = {"first_name": "Ana", "last_name": "Diaz", "phone": "+14155550123"}


@pytest.fixture
def web(database_url: str, fake_slack: FakeSlack) -> Iterator[LiveWeb]:
    """`winback web` with Slack set up, on SQLite and PostgreSQL."""
    yield from slack_web(database_url, fake_slack)


def _cards_pass(web: LiveWeb) -> dict:
    return jobs.cards_job(
        session_factory=web.sessions, now=web.clock.now(),
        posting=web.runtime.posting_options("test-worker"), replies=web.runtime.config.replies,
    )  # fmt: skip


def _card_text(message: dict) -> str:
    return str(message.get("blocks"))


def _reply_id(web: LiveWeb) -> int:
    with web.sessions() as session:
        return session.scalars(select(Reply.id)).one()


def test_a_reply_lands_in_the_officers_channel_with_everything_to_call(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    text(web, "Yes call me after 5", ANA["phone"])
    call = fake_slack.wait_for("chat.postMessage", timeout=5)
    card = call.body
    assert card["channel"] == LO_CHANNEL
    blocks = _card_text(card)
    for shown in ("Ana Diaz texted back", "Yes call me after 5", "(415) 555-0123", "Interested",
                  "Rate drop", "Note rate", "Saves", "Break-even", "/s/", "Claim"):  # fmt: skip
        assert shown in blocks, shown
    claim = next(
        e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
        if e.get("action_id") == "claim_reply"
    )  # fmt: skip
    assert claim["value"] == str(_reply_id(web))
    assert card["metadata"]["event_payload"]["key"] == f"reply:{_reply_id(web)}"
    settled(web)
    with web.sessions() as session:
        assert session.get(Reply, _reply_id(web)).routed_at is not None
    _cards_pass(web)
    assert len(fake_slack.posted()) == 1  # the posting job does not post it again


def test_of_ten_simultaneous_claims_exactly_one_wins(web: LiveWeb, fake_slack: FakeSlack) -> None:
    book_with_officer(web, [ANA])
    text(web, "yes", ANA["phone"])
    posted = fake_slack.wait_for("chat.postMessage").body
    settled(web)
    reply_id = str(_reply_id(web))
    users = [f"U0LO{n:04d}" for n in range(10)]
    answers: dict[str, int] = {}
    start = threading.Barrier(len(users))

    def claim(user: str) -> None:
        start.wait()
        answers[user] = press(web, "claim_reply", reply_id, user=user,
                              response_url=fake_slack.response_url(user)).status_code  # fmt: skip

    threads = [threading.Thread(target=claim, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(answers.values()) == {200}
    with web.sessions() as session:
        winner = session.get(Reply, int(reply_id)).claimed_by
    assert winner in users
    told = {u: fake_slack.responses(u)[-1]["text"] for u in users}
    assert "You claimed this reply" in told[winner]
    for user in users:
        if user != winner:
            assert told[user] == f"This reply is already claimed by <@{winner}>."
    (update,) = fake_slack.calls("chat.update")
    (stored,) = fake_slack.messages(LO_CHANNEL)
    assert update.body["ts"] == stored["ts"] and posted["channel"] == LO_CHANNEL
    assert f"Claimed by <@{winner}>" in _card_text(stored)
    assert "claim_reply" not in _card_text(stored)


def test_slack_down_then_up_posts_exactly_one_card(web: LiveWeb, fake_slack: FakeSlack) -> None:
    book_with_officer(web, [ANA])
    fake_slack.fail_next("chat.postMessage", status=500)
    text(web, "what rate?", ANA["phone"])
    fake_slack.wait_for("chat.postMessage")
    settled(web)
    assert fake_slack.messages(LO_CHANNEL) == []  # Slack refused it: nothing stored
    web.clock.advance(minutes=1)
    _cards_pass(web)
    settled(web)
    assert len(fake_slack.messages(LO_CHANNEL)) == 1
    web.clock.advance(minutes=1)
    _cards_pass(web)
    assert len(fake_slack.messages(LO_CHANNEL)) == 1


def test_a_timeout_after_slack_accepted_still_leaves_one_card(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    web.runtime.card_poster._client.timeout = 0.5  # type: ignore[attr-defined]
    fake_slack.accept_then_timeout("chat.postMessage", delay=1.5)
    text(web, "what rate?", ANA["phone"])
    fake_slack.wait_for("chat.postMessage")
    settled(web)
    with web.sessions() as session:
        deadline_card = session.scalars(select(Card)).one()
    web.clock.advance(minutes=1)
    # The first attempt's outcome is recorded (maybe posted); the next one looks before posting.
    for _ in range(50):
        with web.sessions() as session:
            card = session.get(Card, deadline_card.id)
            if card.maybe_posted:
                break
        threading.Event().wait(0.1)
    assert card.maybe_posted
    _cards_pass(web)
    assert len(fake_slack.messages(LO_CHANNEL)) == 1
    assert len(fake_slack.calls("chat.postMessage")) == 1
    with web.sessions() as session:
        assert session.get(Card, card.id).status == "posted"


def test_a_later_reply_threads_under_the_first_card(web: LiveWeb, fake_slack: FakeSlack) -> None:
    book_with_officer(web, [ANA])
    text(web, "yes", ANA["phone"])
    first = fake_slack.wait_for("chat.postMessage")
    settled(web)
    text(web, "actually, after 6 please", ANA["phone"])
    second = fake_slack.wait_for("chat.postMessage", predicate=lambda c: c is not first
                                 and c.body.get("thread_ts") is not None)  # fmt: skip
    assert second.body["channel"] == LO_CHANNEL
    assert second.body["thread_ts"] == fake_slack.messages(LO_CHANNEL)[0]["ts"]


def test_unclaimed_past_the_sla_escalates_once_to_the_team(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    text(web, "yes", ANA["phone"])
    fake_slack.wait_for("chat.postMessage")
    settled(web)
    web.clock.advance(minutes=9)
    _cards_pass(web)
    assert fake_slack.messages(TEAM_CHANNEL) == []
    web.clock.advance(minutes=2)
    _cards_pass(web)
    web.clock.advance(minutes=30)
    _cards_pass(web)
    (escalation,) = fake_slack.messages(TEAM_CHANNEL)
    assert f"<@{MANAGER}>" in escalation["text"] and "Ana Diaz" in escalation["text"]


def test_a_claim_stops_the_escalation(web: LiveWeb, fake_slack: FakeSlack) -> None:
    book_with_officer(web, [ANA])
    text(web, "yes", ANA["phone"])
    fake_slack.wait_for("chat.postMessage")
    settled(web)
    web.clock.advance(minutes=5)
    press(web, "claim_reply", str(_reply_id(web)), user="U0LO0001",
          response_url=fake_slack.response_url("lo"))  # fmt: skip
    web.clock.advance(hours=2)
    _cards_pass(web)
    assert fake_slack.messages(TEAM_CHANNEL) == []


def test_after_hours_the_sla_waits_for_the_morning(web: LiveWeb, fake_slack: FakeSlack) -> None:
    web.clock.at = web.clock.at.replace(hour=23, minute=30)  # 7:30 pm in New York
    book_with_officer(web, [ANA])
    text(web, "yes", ANA["phone"])
    fake_slack.wait_for("chat.postMessage")
    settled(web)
    web.clock.advance(hours=12)  # 7:30 am: still before business hours
    _cards_pass(web)
    assert fake_slack.messages(TEAM_CHANNEL) == []
    web.clock.advance(hours=1, minutes=41)  # 9:11 am
    _cards_pass(web)
    assert len(fake_slack.messages(TEAM_CHANNEL)) == 1


def test_claimed_with_no_outcome_a_day_later_reminds_the_claimer(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    text(web, "yes", ANA["phone"])
    fake_slack.wait_for("chat.postMessage")
    settled(web)
    press(web, "claim_reply", str(_reply_id(web)), user="U0LO0001",
          response_url=fake_slack.response_url("lo"))  # fmt: skip
    web.clock.advance(hours=25)
    _cards_pass(web)
    _cards_pass(web)
    reminders = [c for c in fake_slack.posted() if "no outcome is recorded" in c.get("text", "")]
    assert len(reminders) == 1
    assert reminders[0]["channel"] == fake_slack.dm_channel("U0LO0001")


def test_mark_funded_credits_the_outreach_once_and_only_for_the_claimer_or_a_manager(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    text(web, "yes call me", ANA["phone"])
    fake_slack.wait_for("chat.postMessage")
    settled(web)
    reply_id = str(_reply_id(web))
    early = press(web, "mark_funded", reply_id, user="U0LO0001",
                  response_url=fake_slack.response_url("early"))  # fmt: skip
    assert early.status_code == 200
    assert "claim it first" in fake_slack.responses("early")[-1]["text"]
    press(web, "claim_reply", reply_id, user="U0LO0001",
          response_url=fake_slack.response_url("lo"))  # fmt: skip
    (stored,) = fake_slack.messages(LO_CHANNEL)
    assert "mark_funded" in _card_text(stored)  # a claimed card offers Mark funded
    press(web, "mark_funded", reply_id, user="U0LO0002",
          response_url=fake_slack.response_url("other"))  # fmt: skip
    assert fake_slack.responses("other")[-1]["text"] == (
        "This reply is already claimed by <@U0LO0001>."
    )
    with web.sessions() as session:
        assert session.scalars(select(FundedCredit)).all() == []
        assert session.get(Reply, int(reply_id)).outcome is None
    press(web, "mark_funded", reply_id, user="U0LO0001",
          response_url=fake_slack.response_url("lo"))  # fmt: skip
    assert "Marked funded" in fake_slack.responses("lo")[-1]["text"]
    press(web, "mark_funded", reply_id, user=MANAGER,
          response_url=fake_slack.response_url("boss"))  # fmt: skip
    assert "already closed" in fake_slack.responses("boss")[-1]["text"]
    with web.sessions() as session:
        (credit,) = session.scalars(select(FundedCredit)).all()
        assert credit.reply_id == int(reply_id) and credit.how == "marked by <@U0LO0001>"
        assert session.get(Reply, int(reply_id)).outcome == "funded"
    (stored,) = fake_slack.messages(LO_CHANNEL)
    assert "Funded: claimed by <@U0LO0001>" in _card_text(stored)
    assert "mark_funded" not in _card_text(stored)
