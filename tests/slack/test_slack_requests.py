"""POST /slack/events: only signed, fresh requests get in; odd presses get polite answers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.audit.models import AuditEvent
from core.inbound.models import Reply
from tests.fakes.slack_api import FakeSlack
from tests.inbound.texting import text
from tests.slack.live import (
    SIGNING_SECRET,
    book_with_officer,
    press,
    settled,
    slack_post,
    slack_web,
)
from tests.slack.signing import block_action_body, signed_headers
from tests.web import LiveWeb

ANA = {"first_name": "Ana", "last_name": "Diaz", "phone": "+14155550123"}


@pytest.fixture
def web(database_url: str, fake_slack: FakeSlack) -> Iterator[LiveWeb]:
    """`winback web` with Slack set up, on SQLite and PostgreSQL."""
    yield from slack_web(database_url, fake_slack)


def _reply(web: LiveWeb, fake: FakeSlack) -> int:
    book_with_officer(web, [ANA])
    text(web, "yes call me", ANA["phone"])
    fake.wait_for("chat.postMessage")
    settled(web)
    with web.sessions() as session:
        return session.scalars(select(Reply.id)).one()


def _claims(web: LiveWeb) -> list[str | None]:
    with web.sessions() as session:
        return list(session.scalars(select(Reply.claimed_by)))


def _claim_body(reply_id: int, fake: FakeSlack, user: str = "U0LO0001") -> bytes:
    return block_action_body(
        action_id="claim_reply", value=str(reply_id), user_id=user,
        response_url=fake.response_url("presser"),
    )  # fmt: skip


@pytest.mark.parametrize("how", ["forged", "stale", "changed body", "no signature"])
def test_an_unverified_request_gets_401_and_changes_nothing(
    web: LiveWeb, fake_slack: FakeSlack, how: str
) -> None:
    reply_id = _reply(web, fake_slack)
    body = _claim_body(reply_id, fake_slack)
    headers = signed_headers(SIGNING_SECRET, body)
    if how == "forged":
        headers = signed_headers("not-the-secret", body)
    elif how == "stale":  # Slack's replay window is five minutes
        headers = signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 6 * 60)
    elif how == "changed body":
        body = _claim_body(reply_id, fake_slack, user="U0ATTACKER")
    else:
        headers = {"Content-Type": headers["Content-Type"]}
    answer = web.http.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 401
    assert _claims(web) == [None]
    assert fake_slack.calls("chat.update") == [] and fake_slack.responses("presser") == []


def test_a_retried_press_claims_once(web: LiveWeb, fake_slack: FakeSlack) -> None:
    reply_id = _reply(web, fake_slack)
    body = _claim_body(reply_id, fake_slack)
    first = slack_post(web, body)
    again = slack_post(web, body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    assert first.status_code == again.status_code == 200
    assert _claims(web) == ["U0LO0001"]
    with web.sessions() as session:
        claims = session.scalars(select(AuditEvent).where(AuditEvent.action == "reply.claimed"))
        assert len(list(claims)) == 1
    assert len(fake_slack.calls("chat.update")) == 1
    answers = [r["text"] for r in fake_slack.responses("presser")]
    assert answers[-1] == "You already claimed this reply."


@pytest.mark.parametrize("value", ["99999", "not-a-number", ""])
def test_a_button_for_a_reply_that_does_not_exist_gets_a_polite_answer(
    web: LiveWeb, fake_slack: FakeSlack, value: str
) -> None:
    answer = press(web, "claim_reply", value, user="U0LO0001",
                   response_url=fake_slack.response_url("presser"))  # fmt: skip
    assert answer.status_code == 200
    (told,) = fake_slack.responses("presser")
    assert told["response_type"] == "ephemeral" and "out of date" in told["text"]


def test_an_unknown_action_is_acknowledged_and_changes_nothing(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    reply_id = _reply(web, fake_slack)
    answer = press(web, "launch_rockets", str(reply_id), user="U0LO0001",
                   response_url=fake_slack.response_url("presser"))  # fmt: skip
    assert answer.status_code < 500
    assert _claims(web) == [None]


def test_a_payload_missing_its_fields_never_500s(web: LiveWeb) -> None:
    for body in (b"payload=%7B%7D", b"payload=not-json", b"", b"command=%2Fwinback"):
        assert slack_post(web, body).status_code < 500


def test_not_interested_then_stop_outreach_from_someone_else_is_refused(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    reply_id = _reply(web, fake_slack)
    press(web, "not_interested", str(reply_id), user="U0LO0001",
          response_url=fake_slack.response_url("first"))  # fmt: skip
    press(web, "stop_outreach", str(reply_id), user="U0LO0002",
          response_url=fake_slack.response_url("second"))  # fmt: skip
    with web.sessions() as session:
        reply = session.get(Reply, reply_id)
        assert reply.outcome == "not_interested" and reply.claimed_by == "U0LO0001"
    told = fake_slack.responses("second")[-1]["text"]
    assert told == "This reply is already closed by <@U0LO0001> (not interested)."
    card = fake_slack.messages(fake_slack.posted()[0]["channel"])[0]
    assert "Closed by <@U0LO0001>: not interested" in str(card["blocks"])


def test_stop_outreach_opts_the_borrower_out_everywhere(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    reply_id = _reply(web, fake_slack)
    press(web, "stop_outreach", str(reply_id), user="U0LO0001",
          response_url=fake_slack.response_url("lo"))  # fmt: skip
    from tests.inbound.texting import phone_state

    state = phone_state(web.sessions, ANA["phone"])
    assert state.sms_consent[-1] != "granted"
    with web.sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.actor == "U0LO0001")).all()
        assert {e.action for e in events} >= {"reply.stopped_outreach"}


def test_snooze_brings_the_card_back_after_an_hour(web: LiveWeb, fake_slack: FakeSlack) -> None:
    from core import jobs

    reply_id = _reply(web, fake_slack)
    press(web, "snooze_reply", str(reply_id), user="U0LO0001",
          response_url=fake_slack.response_url("lo"))  # fmt: skip

    def cards_pass() -> None:
        jobs.cards_job(session_factory=web.sessions, now=web.clock.now(),
                       posting=web.runtime.posting_options("w"),
                       replies=web.runtime.config.replies)  # fmt: skip

    web.clock.advance(minutes=59)
    cards_pass()
    assert len(fake_slack.posted()) == 1
    web.clock.advance(minutes=2)
    cards_pass()
    again = fake_slack.posted()
    assert len(again) == 2 and "Reminder: Ana Diaz texted back" in str(again[1]["blocks"])
    cards_pass()
    assert len(fake_slack.posted()) == 2
