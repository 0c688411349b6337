"""Batch approvals in Slack end to end: a rate drop → its card in the approvals channel →
Approve/Reject by a manager (others refused), the card updated from the database; a moved rate
expires the batch; a big batch asks for its size typed in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from core import jobs
from core.batches.models import Batch
from core.flows import evaluate
from core.outreach.models import Enrollment
from tests.fakes.slack_api import RESPONSE_URL, FakeSlack
from tests.slack.live import APPROVALS_CHANNEL, MANAGER, slack_post, slack_web
from tests.slack.signing import APP_ID, TEAM_ID, block_action_body, view_submission_body
from tests.triggers.factories import (
    TODAY,
    default_config,
    make_contact,
    make_lo,
    make_loan,
    set_rate,
    shipped_tracks,
)
from tests.web import LiveWeb

CONFIRM_ABOVE = 4  # the test install asks for the size typed in above 4 people
SOMEONE = "U0SOMEONE"


@pytest.fixture
def web(database_url: str, fake_slack: FakeSlack, tmp_path: Path) -> Iterator[LiveWeb]:
    """`winback web` with Slack set up, on SQLite and PostgreSQL."""
    config = tmp_path / "winback.toml"
    config.write_text(f"[replies]\nconfirm_batch_size_above = {CONFIRM_ABOVE}\n")
    yield from slack_web(database_url, fake_slack, WINBACK_CONFIG=str(config))


def pending_rate_drop(web: LiveWeb, officers: list[tuple[str, list[dict[str, Any]]]]) -> int:
    """Per loan officer (name, people as make_contact fields), people with a 7 % loan; the
    30-year rate moves from 6.25 % last week to 6.00 % today; the evaluation's rate-drop batch
    waits for approval: its id."""
    with web.sessions() as session, session.begin():
        for n, (name, people) in enumerate(officers):
            officer = make_lo(session, name=name)
            officer.nmls_id = f"76{n:04d}"
            for fields in people:
                make_loan(session, make_contact(session, lo=officer, **fields))
        set_rate(session, "6.25", on=TODAY - timedelta(days=7))
        set_rate(session, "6.0")
        evaluation = evaluate(
            session=session, now=web.clock.now(), config=default_config(),
            tracks=shipped_tracks(), only=["rate_drop"],
        )  # fmt: skip
        (batch,) = evaluation.batches
        assert batch.status == "pending_approval"
        return batch.id


def cards_pass(web: LiveWeb) -> dict[str, Any]:
    """One pass of the worker's cards job."""
    return jobs.cards_job(
        session_factory=web.sessions, now=web.clock.now(),
        posting=web.runtime.posting_options("test-worker"), replies=web.runtime.config.replies,
    )  # fmt: skip


def posted_card(web: LiveWeb, fake: FakeSlack) -> dict[str, Any]:
    """The batch card the cards job posts in the approvals channel (as stored there now)."""
    summary = cards_pass(web)
    assert summary.get("posted") == 1, summary
    (card,) = fake.messages(APPROVALS_CHANNEL)
    return card


def press_card(web: LiveWeb, fake: FakeSlack, card: dict[str, Any], action_id: str, *,
               user: str, name: str) -> str:  # fmt: skip
    """Press a button on the card as `user`; the ephemeral answer they read."""
    value = _button(card, action_id)["value"]
    body = block_action_body(
        action_id=action_id, value=value, user_id=user, channel_id=APPROVALS_CHANNEL,
        message_ts=card["ts"], response_url=fake.response_url(name), block_id="batch_decision",
    )  # fmt: skip
    assert slack_post(web, body).status_code == 200
    call = fake.wait_for(RESPONSE_URL, lambda c: c.path == f"/response/{name}", timeout=20)
    assert call.body["response_type"] == "ephemeral" and call.body["replace_original"] is False
    return str(call.body["text"])


def submit_size(web: LiveWeb, opened: dict[str, Any], typed: str, *, user: str) -> httpx.Response:
    """Type a size into the opened modal and submit it."""
    view = opened["view"]
    values = {"batch_size": {"size": {"type": "plain_text_input", "value": typed}}}
    body = view_submission_body(
        view["callback_id"], values, user_id=user, private_metadata=view["private_metadata"]
    )
    return slack_post(web, body)


def _button(card: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(
        e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
        if e.get("action_id") == action_id
    )  # fmt: skip


def _text(card: dict[str, Any]) -> str:
    return json.dumps(card["blocks"], ensure_ascii=False)


def _batch(web: LiveWeb, batch_id: int) -> Batch:
    with web.sessions() as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        return batch


def _enrollments(web: LiveWeb) -> int:
    with web.sessions() as session:
        return session.scalar(select(func.count(Enrollment.id))) or 0


def _current(fake: FakeSlack, card: dict[str, Any]) -> dict[str, Any]:
    return fake.message(APPROVALS_CHANNEL, card["ts"])


def test_a_manager_approves_from_the_card_and_nobody_else_can(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    no_texts = {"sms_consent": "denied"}
    batch_id = pending_rate_drop(
        web, [("Larry Officer", [{}, {}]), ("Maria Lopez", [{}, no_texts])]
    )

    card = posted_card(web, fake_slack)
    shown = _text(card)
    for expected in (
        f"Batch {batch_id}: Rate drop, 4 people", "30-year offer is *6.00 %*",
        "down 0.25 point from 6.25 %", "0.75 point or more above the offer",
        "these members: 1.00", "$100.00/month", "36 months",
        "Larry Officer: 2 people, $640.62/mo", "Maria Lopez: 2 people, $640.62/mo",
        "$1,281.24 a month in total", "3 would be sent", "suppressed 1 (`no_sms_consent` 1)",
        "Sample text", "Reply STOP to opt out", "Sample email", "rates have come down",
    ):  # fmt: skip
        assert expected in shown, expected
    assert _button(card, "approve_batch")["value"] == str(batch_id)
    assert _button(card, "reject_batch")["value"] == str(batch_id)
    assert card["metadata"]["event_payload"]["key"] == f"batch:{batch_id}"

    refused = press_card(web, fake_slack, card, "approve_batch", user=SOMEONE, name="someone")
    assert refused.startswith("Only managers can approve or reject batches")
    assert f"<@{MANAGER}>" in refused
    assert _batch(web, batch_id).status == "pending_approval"
    assert _enrollments(web) == 0
    assert fake_slack.calls("chat.update") == []

    answer = press_card(web, fake_slack, card, "approve_batch", user=MANAGER, name="manager")
    assert answer.startswith(f":white_check_mark: Batch {batch_id} approved: 4 people enrolled")
    batch = _batch(web, batch_id)
    assert (batch.status, batch.decided_by) == ("approved", MANAGER)
    assert _enrollments(web) == 4
    updated = _text(_current(fake_slack, card))
    assert f"Approved by <@{MANAGER}> at" in updated and "4 enrolled" in updated
    assert "approve_batch" not in updated and "Sample text" not in updated

    again = press_card(web, fake_slack, card, "approve_batch", user=MANAGER, name="again")
    assert again == f"Batch {batch_id} is already approved by <@{MANAGER}>."
    late = press_card(web, fake_slack, card, "reject_batch", user=MANAGER, name="late-reject")
    assert late == f"Batch {batch_id} is already approved by <@{MANAGER}>."
    assert _batch(web, batch_id).status == "approved" and _enrollments(web) == 4
    assert "4 enrolled" in _text(_current(fake_slack, card))
    cards_pass(web)
    assert len(fake_slack.messages(APPROVALS_CHANNEL)) == 1  # never a second card


def test_a_rejected_batch_contacts_nobody_and_says_who_rejected_it(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = pending_rate_drop(web, [("Larry Officer", [{}, {}])])
    card = posted_card(web, fake_slack)
    refused = press_card(web, fake_slack, card, "reject_batch", user=SOMEONE, name="someone")
    assert (
        refused.startswith("Only managers") and _batch(web, batch_id).status == "pending_approval"
    )

    answer = press_card(web, fake_slack, card, "reject_batch", user=MANAGER, name="manager")
    assert answer == f"Batch {batch_id} rejected: none of its 2 people is contacted."
    batch = _batch(web, batch_id)
    assert (batch.status, batch.decided_by) == ("rejected", MANAGER)
    assert _enrollments(web) == 0
    updated = _text(_current(fake_slack, card))
    assert f"Rejected by <@{MANAGER}> at" in updated and "nobody in it is contacted" in updated
    assert "approve_batch" not in updated and "reject_batch" not in updated
    again = press_card(web, fake_slack, card, "approve_batch", user=MANAGER, name="again")
    assert again == f"Batch {batch_id} is already rejected by <@{MANAGER}>."
    assert _enrollments(web) == 0


def test_a_batch_whose_rate_moved_expires_and_its_card_says_why(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = pending_rate_drop(web, [("Larry Officer", [{}, {}])])
    card = posted_card(web, fake_slack)
    web.clock.advance(days=1)
    with web.sessions() as session, session.begin():
        set_rate(session, "6.5", on=TODAY + timedelta(days=1))

    answer = press_card(web, fake_slack, card, "approve_batch", user=MANAGER, name="manager")

    why = (f"rates moved from 6.00 % to 6.50 % since batch {batch_id} was made: "
           "run `winback evaluate` for a fresh batch")  # fmt: skip
    assert answer == f":hourglass: Batch {batch_id} was not approved and has expired: {why}."
    assert _batch(web, batch_id).status == "expired"
    assert _enrollments(web) == 0
    updated = _text(_current(fake_slack, card))
    assert "Expired at" in updated and why.replace("`", "") in updated.replace("`", "")
    assert "approve_batch" not in updated and "reject_batch" not in updated
    again = press_card(web, fake_slack, card, "approve_batch", user=MANAGER, name="again")
    assert again.startswith(f"Batch {batch_id} has already expired")
    assert _batch(web, batch_id).status == "expired" and _enrollments(web) == 0


def test_a_big_batch_is_approved_only_with_its_size_typed_in(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    size = CONFIRM_ABOVE + 2
    batch_id = pending_rate_drop(web, [("Larry Officer", [{}] * size)])
    card = posted_card(web, fake_slack)
    assert f"asks for its size ({size})" in _text(card)
    value = _button(card, "approve_batch")["value"]
    body = block_action_body(
        action_id="approve_batch", value=value, user_id=MANAGER, channel_id=APPROVALS_CHANNEL,
        message_ts=card["ts"], response_url=fake_slack.response_url("manager"),
    )  # fmt: skip
    assert slack_post(web, body).status_code == 200
    opened_call = fake_slack.wait_for("views.open", timeout=20)
    (opened,) = fake_slack.opened_views()
    assert opened["trigger_id"] == opened_call.body["trigger_id"]
    assert opened["view"]["callback_id"] == "confirm_batch_approval"
    assert f"*{size} people*" in json.dumps(opened["view"]["blocks"])
    assert _batch(web, batch_id).status == "pending_approval" and _enrollments(web) == 0

    for wrong in (str(size - 1), "all of them", ""):
        refused = submit_size(web, opened, wrong, user=MANAGER)
        assert refused.status_code == 200
        answer = refused.json()
        assert answer["response_action"] == "errors"
        assert set(answer["errors"]) == {"batch_size"}
    assert "is not the number of people" in submit_size(web, opened, "5", user=MANAGER).text
    by_someone = submit_size(web, opened, str(size), user=SOMEONE).json()
    assert by_someone["errors"]["batch_size"].startswith("Only managers")
    assert _batch(web, batch_id).status == "pending_approval" and _enrollments(web) == 0

    accepted = submit_size(web, opened, f" {size} ", user=MANAGER)
    assert accepted.status_code == 200 and accepted.text in ("", "{}")
    told = fake_slack.wait_for("chat.postEphemeral", timeout=20).body
    assert (told["channel"], told["user"]) == (APPROVALS_CHANNEL, MANAGER)
    assert told["text"].startswith(f":white_check_mark: Batch {batch_id} approved: {size} people")
    assert _batch(web, batch_id).status == "approved" and _enrollments(web) == size
    assert f"{size} enrolled" in _text(_current(fake_slack, card))


def test_a_batch_of_many_loan_officers_stays_within_slacks_limits(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    officers = [(f"Officer {n:02d}", [{}]) for n in range(40)]
    pending_rate_drop(web, officers)
    card = posted_card(web, fake_slack)  # the fake refuses what Slack refuses
    assert len(card["blocks"]) <= 50
    for block in card["blocks"]:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    shown = _text(card)
    assert "Officer 00: 1 person" in shown
    assert "…and 25 more loan officers (25 people)" in shown


OTHER_MANAGER = "U0MANAGER2"


@pytest.fixture
def web_of_two(database_url: str, fake_slack: FakeSlack) -> Iterator[LiveWeb]:
    """`winback web` with two managers."""
    yield from slack_web(database_url, fake_slack, SLACK_MANAGER_IDS=f"{MANAGER},{OTHER_MANAGER}")


def test_two_managers_pressing_approve_at_once_enroll_everyone_once(
    web_of_two: LiveWeb, fake_slack: FakeSlack
) -> None:
    web = web_of_two
    batch_id = pending_rate_drop(web, [("Larry Officer", [{}, {}, {}])])
    card = posted_card(web, fake_slack)
    start = threading.Barrier(2)
    answers: dict[str, str] = {}

    def approve(user: str) -> None:
        start.wait()
        answers[user] = press_card(web, fake_slack, card, "approve_batch", user=user, name=user)

    threads = [threading.Thread(target=approve, args=(u,)) for u in (MANAGER, OTHER_MANAGER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = _batch(web, batch_id).decided_by
    assert winner in (MANAGER, OTHER_MANAGER)
    loser = OTHER_MANAGER if winner == MANAGER else MANAGER
    assert answers[winner].startswith(f":white_check_mark: Batch {batch_id} approved: 3")
    assert answers[loser] == f"Batch {batch_id} is already approved by <@{winner}>."
    assert _enrollments(web) == 3
    assert f"Approved by <@{winner}>" in _text(_current(fake_slack, card))


def _home_press(action_id: str, value: str, *, user: str) -> bytes:
    """A button pressed on the App Home (a view container: no response_url)."""
    home = {"id": "V0HOME", "type": "home", "blocks": [], "state": {"values": {}}, "hash": "1.h"}
    payload = {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID, "token": "verification-token-unused", "team": {"id": TEAM_ID},
        "container": {"type": "view", "view_id": home["id"]}, "trigger_id": "1.2.fa4e0trigger",
        "view": home, "actions": [{"type": "button", "action_id": action_id, "block_id": "b",
                                   "value": value, "action_ts": "1.000001"}],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_a_manager_approves_from_the_app_home_and_reads_the_answer_there(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = pending_rate_drop(web, [("Larry Officer", [{}, {}])])
    card = posted_card(web, fake_slack)

    assert slack_post(web, _home_press("approve_batch", str(batch_id), user=SOMEONE)).is_success
    refused = fake_slack.wait_for("views.publish", lambda c: c.body["user_id"] == SOMEONE, 20)
    assert "Only managers can approve or reject batches" in json.dumps(refused.body["view"])
    assert _batch(web, batch_id).status == "pending_approval"

    assert slack_post(web, _home_press("approve_batch", str(batch_id), user=MANAGER)).is_success
    home = fake_slack.wait_for("views.publish", lambda c: c.body["user_id"] == MANAGER, 20)
    assert f"Batch {batch_id} approved: 2 people enrolled" in json.dumps(home.body["view"])
    assert _batch(web, batch_id).status == "approved" and _enrollments(web) == 2
    assert "2 enrolled" in _text(_current(fake_slack, card))


def test_a_batch_left_waiting_past_its_time_expires_and_its_card_loses_its_buttons(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = pending_rate_drop(web, [("Larry Officer", [{}, {}])])
    card = posted_card(web, fake_slack)
    expires_at = _batch(web, batch_id).expires_at
    assert expires_at is not None
    web.clock.at = expires_at + timedelta(minutes=1)

    assert jobs.expire_batches_job(session_factory=web.sessions, now=web.clock.now()) == {
        "expired": [batch_id]
    }
    summary = cards_pass(web)

    assert summary.get("updated") == 1, summary
    updated = _text(_current(fake_slack, card))
    assert "Expired at" in updated
    assert "approve_batch" not in updated and "reject_batch" not in updated
    assert _enrollments(web) == 0
