"""The App Home over real HTTP: opened (a signed app_home_opened) → views.publish on the fake.

A loan officer sees their replies to claim, the ones they claimed with no outcome yet, today's
calls and their 30-day funnel; a manager also sees the batches to decide and the pause switch;
anyone else is told what Winback is and whom to ask.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, update

from bot.blocks.home import MAX_HOME_BLOCKS, home_view
from core.audit.models import AuditEvent
from core.batches.models import PENDING_APPROVAL, Batch
from core.book.models import Contact, LoanOfficer
from core.cards.home import (
    BATCH_LIMIT,
    LIST_LIMIT,
    HomeBatch,
    HomeCall,
    HomeData,
    HomeReply,
    PauseState,
)
from core.inbound.models import Reply
from core.outreach.models import SENT, TASK_OPEN, Message
from core.outreach.switches import is_paused
from core.stats import Funnel, FunnelRow
from tests.fakes.slack_api import Call, FakeSlack
from tests.inbound.texting import text
from tests.outreach import NOW
from tests.slack.live import (
    LO_CHANNEL,
    LO_USER,
    MANAGER,
    book_with_officer,
    press,
    settled,
    slack_post,
    slack_web,
)
from tests.slack.signing import APP_ID, BOT_USER_ID, TEAM_ID, event_body
from tests.web import LiveWeb

ANA = {"first_name": "Ana", "last_name": "Diaz", "phone": "+14155550123"}
BEN = {"first_name": "Ben", "last_name": "Okafor", "phone": "+14155550124"}
CARA = {"first_name": "Cara", "last_name": "Lind", "phone": "+14155550125"}
DAN = {"first_name": "Dan", "last_name": "Moss", "phone": "+14155550126"}
STRANGER = "U0SOMEONE"
_serial = itertools.count(1)


@pytest.fixture
def web(database_url: str, fake_slack: FakeSlack) -> Iterator[LiveWeb]:
    """`winback web` with Slack set up, on SQLite and PostgreSQL."""
    yield from slack_web(database_url, fake_slack)


def open_home(web: LiveWeb, fake: FakeSlack, user: str, tab: str = "home") -> dict[str, Any]:
    """Open the App Home as Slack reports it; the view then published for `user`."""
    seen = {id(call) for call in fake.calls("views.publish")}
    event = {"type": "app_home_opened", "user": user, "channel": fake.dm_channel(user),
             "tab": tab, "event_ts": f"{int(time.time())}.{next(_serial):06d}"}  # fmt: skip
    assert slack_post(web, event_body(event)).status_code == 200
    return _published(fake, user, seen)


def press_on_home(web: LiveWeb, fake: FakeSlack, user: str, action_id: str) -> dict[str, Any]:
    """Press the button `action_id` on the user's Home as it is; the Home published after."""
    home = fake.home_view(user)
    assert home is not None, "the Home was never published"
    button = _button(home, action_id)
    assert button is not None, f"no {action_id} button on the Home"
    seen = {id(call) for call in fake.calls("views.publish")}
    response = slack_post(web, _home_action_body(home, user, action_id, button.get("value", "")))
    assert response.status_code == 200
    return _published(fake, user, seen)


def _published(fake: FakeSlack, user: str, seen: set[int]) -> dict[str, Any]:
    def fresh(call: Call) -> bool:
        return id(call) not in seen and call.body.get("user_id") == user

    call = fake.wait_for("views.publish", fresh)
    assert call.ok, call.answer
    view = call.body["view"]
    assert view["type"] == "home" and len(view["blocks"]) <= MAX_HOME_BLOCKS
    return view


def _home_action_body(home: dict[str, Any], user: str, action_id: str, value: str) -> bytes:
    """A block_actions payload from a Home tab button (view container, no response_url)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "verification-token-unused",
        "container": {"type": "view", "view_id": home["id"]},
        "trigger_id": f"{next(_serial)}.{int(time.time())}.fa4e0trigger",
        "team": {"id": TEAM_ID, "domain": "fake-workspace"},
        "enterprise": None,
        "is_enterprise_install": False,
        "view": {**home, "state": {"values": {}}, "hash": "1.fakehash", "bot_id": BOT_USER_ID},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "text": {"type": "plain_text", "text": action_id},
                "action_ts": f"{int(time.time())}.{next(_serial):06d}",
            },
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def _elements(view: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for block in view["blocks"]:
        if block.get("accessory"):
            yield block["accessory"]
        yield from block.get("elements", [])


def _button(view: dict[str, Any], action_id: str, value: str | None = None) -> dict | None:
    return next(
        (e for e in _elements(view) if e.get("action_id") == action_id
         and (value is None or e.get("value") == value)),
        None,
    )  # fmt: skip


def _shown(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def _section_after(view: dict[str, Any], title_start: str) -> str:
    """The blocks under one header, up to the next header, as text."""
    blocks, inside = [], False
    for block in view["blocks"]:
        if block["type"] == "header":
            inside = block["text"]["text"].startswith(title_start)
            continue
        if inside:
            blocks.append(block)
    return json.dumps(blocks, ensure_ascii=False)


def _reply_of(web: LiveWeb, first_name: str) -> int:
    with web.sessions() as session:
        return session.scalars(
            select(Reply.id).join(Contact, Contact.id == Reply.contact_id)
            .where(Contact.first_name == first_name)
        ).one()  # fmt: skip


def _reply_texted(web: LiveWeb, fake: FakeSlack, person: dict[str, str], words: str) -> int:
    posts = len(fake.calls("chat.postMessage"))
    text(web, words, person["phone"])
    fake.wait_for("chat.postMessage", lambda c: len(fake.calls("chat.postMessage")) > posts)
    settled(web)
    return _reply_of(web, person["first_name"])


def _open_call_task(web: LiveWeb, first_name: str, due_in: timedelta) -> None:
    with web.sessions() as session, session.begin():
        contact_id = session.scalars(
            select(Contact.id).where(Contact.first_name == first_name)
        ).one()
        session.execute(
            update(Message)
            .where(Message.contact_id == contact_id, Message.channel == "call_task")
            .values(status=TASK_OPEN, due_at=web.clock.now() + due_in)
        )


def _pending_batch(web: LiveWeb, size: int = 42) -> int:
    with web.sessions() as session, session.begin():
        batch = Batch(trigger="rate_drop", segment="rate_drop_30y", status=PENDING_APPROVAL,
                      size=size, created_at=web.clock.now(),
                      expires_at=web.clock.now() + timedelta(days=3))  # fmt: skip
        session.add(batch)
        session.flush()
        return batch.id


def test_a_loan_officer_sees_replies_to_claim_claimed_ones_calls_and_the_funnel(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA, BEN, CARA, DAN])
    with web.sessions() as session, session.begin():  # one text went out to Ana
        first = session.scalars(
            select(Message).join(Contact, Contact.id == Message.contact_id)
            .where(Contact.first_name == "Ana").order_by(Message.step).limit(1)
        ).one()  # fmt: skip
        first.status, first.sent_at = SENT, web.clock.now()
    ana = _reply_texted(web, fake_slack, ANA, "Yes call me after 5")
    ben = _reply_texted(web, fake_slack, BEN, "what rate could I get?")
    press(web, "claim_reply", str(ben), user=LO_USER, response_url=fake_slack.response_url("lo"))
    _open_call_task(web, "Cara", timedelta(hours=1))
    _open_call_task(web, "Dan", timedelta(days=3))  # not today's

    home = open_home(web, fake_slack, LO_USER)

    waiting = _section_after(home, "Warm replies to claim")
    assert "Ana Diaz" in waiting and "Yes call me after 5" in waiting and "Interested" in waiting
    assert "Ben" not in waiting
    assert _button(home, "claim_reply", str(ana)) is not None
    assert _button(home, "claim_reply", str(ben)) is None
    claimed = _section_after(home, "Claimed by you")
    assert "Ben Okafor" in claimed and "what rate could I get?" in claimed and "claimed" in claimed
    calls = _section_after(home, "Calls for today")
    assert "Call Cara Lind" in calls and "Dan" not in calls
    funnel = _section_after(home, "Last 30 days")
    for figure in ("*Reached*\\n1", "*Replied*\\n2", "*Claimed*\\n1", "*Funded*\\n0"):
        assert figure in funnel, figure
    shown = _shown(home)
    assert "pause_outreach" not in shown and "approve_batch" not in shown  # managers only
    assert "+1415" not in shown and "555-01" not in shown  # no phone numbers on the Home


def test_an_officer_is_found_by_their_slack_email_and_remembered(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    with web.sessions() as session, session.begin():
        session.execute(update(LoanOfficer).values(slack_user_id=None))
        email = session.scalars(select(LoanOfficer.email)).one()
    fake_slack.add_user("U0NEWLO", email, "Larry Officer")
    _reply_texted(web, fake_slack, ANA, "yes please")

    home = open_home(web, fake_slack, "U0NEWLO")
    assert "Ana Diaz" in _section_after(home, "Warm replies to claim")
    with web.sessions() as session:
        assert session.scalars(select(LoanOfficer.slack_user_id)).one() == "U0NEWLO"
    lookups = len(fake_slack.calls("users.lookupByEmail"))
    assert lookups == 1
    open_home(web, fake_slack, "U0NEWLO")
    assert len(fake_slack.calls("users.lookupByEmail")) == lookups  # remembered: no new lookup


def test_claim_on_the_home_claims_updates_the_card_and_refreshes_the_home(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    ana = _reply_texted(web, fake_slack, ANA, "Yes call me after 5")
    open_home(web, fake_slack, LO_USER)

    home = press_on_home(web, fake_slack, LO_USER, "claim_reply")

    with web.sessions() as session:
        assert session.get(Reply, ana).claimed_by == LO_USER
    assert "You claimed this reply" in _shown(home)
    assert "Ana Diaz" in _section_after(home, "Claimed by you")
    assert _button(home, "claim_reply") is None
    (card,) = fake_slack.messages(LO_CHANNEL)
    assert f"Claimed by <@{LO_USER}>" in json.dumps(card["blocks"])  # the card says so too


def test_a_manager_sees_pending_batches_and_pauses_then_resumes_outreach(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    batch_id = _pending_batch(web)

    home = open_home(web, fake_slack, MANAGER)
    batches = _section_after(home, "Batches waiting for approval (1)")
    assert f"Batch {batch_id}" in batches and "Rate drop" in batches and "42 people" in batches
    assert _button(home, "approve_batch", str(batch_id)) is not None
    assert _button(home, "reject_batch", str(batch_id)) is not None
    assert "Outreach is running" in _shown(home)
    assert "Last 30 days, the whole team" in _shown(home)

    home = press_on_home(web, fake_slack, MANAGER, "pause_outreach")
    with web.sessions() as session:
        assert is_paused(session)
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "outreach.paused"))
        assert [event.actor for event in audit] == [MANAGER]
    assert f"Outreach is paused* by <@{MANAGER}>" in _shown(home)
    assert _button(home, "resume_outreach") is not None and _button(home, "pause_outreach") is None

    home = press_on_home(web, fake_slack, MANAGER, "resume_outreach")
    with web.sessions() as session:
        assert not is_paused(session)
    assert "Outreach is running" in _shown(home) and "Outreach resumed" in _shown(home)


def test_someone_else_pressing_pause_changes_nothing(web: LiveWeb, fake_slack: FakeSlack) -> None:
    book_with_officer(web, [ANA])
    open_home(web, fake_slack, MANAGER)
    manager_home = fake_slack.home_view(MANAGER)
    assert manager_home is not None
    seen = {id(call) for call in fake_slack.calls("views.publish")}
    button = _button(manager_home, "pause_outreach")
    assert button is not None
    # An old or forged Home: the press comes from a loan officer.
    slack_post(web, _home_action_body(manager_home, LO_USER, "pause_outreach", button["value"]))
    home = _published(fake_slack, LO_USER, seen)
    with web.sessions() as session:
        assert not is_paused(session)
    assert "Only managers can pause or resume outreach" in _shown(home)


def test_someone_neither_officer_nor_manager_is_told_what_winback_is_and_whom_to_ask(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    home = open_home(web, fake_slack, STRANGER)
    shown = _shown(home)
    assert "Winback" in shown and "warm reply" in shown
    assert f"<@{MANAGER}>" in shown and STRANGER in shown
    assert [e for e in _elements(home) if e.get("type") == "button"] == []
    assert "Ana" not in shown


def test_long_lists_are_capped_and_say_how_many_more(web: LiveWeb, fake_slack: FakeSlack) -> None:
    people = [
        {"first_name": f"P{n:02d}", "last_name": "Borrower", "phone": f"+1415555{n:04d}"}
        for n in range(LIST_LIMIT + 2)
    ]
    book_with_officer(web, people)
    for person in people:
        _reply_texted(web, fake_slack, person, "yes")

    home = open_home(web, fake_slack, LO_USER)
    waiting = _section_after(home, f"Warm replies to claim ({LIST_LIMIT + 2})")
    assert waiting.count('"claim_reply"') == LIST_LIMIT
    assert "and 2 more in your channel" in waiting


def test_opening_the_messages_tab_publishes_nothing(web: LiveWeb, fake_slack: FakeSlack) -> None:
    seen = {id(call) for call in fake_slack.calls("views.publish")}
    event = {"type": "app_home_opened", "user": LO_USER, "tab": "messages",
             "channel": fake_slack.dm_channel(LO_USER), "event_ts": "1.000001"}  # fmt: skip
    assert slack_post(web, event_body(event)).status_code == 200
    open_home(web, fake_slack, MANAGER)  # a Home tab opened afterwards is published
    users = [c.body["user_id"] for c in fake_slack.calls("views.publish") if id(c) not in seen]
    assert users == [MANAGER]


def test_the_fullest_home_stays_within_slacks_100_blocks() -> None:
    reply = HomeReply(reply_id=1, name="Ana Diaz", excerpt="yes " * 40, received_at=NOW,
                      classification="interested", channel="sms", claimed_at=NOW,
                      snoozed_until=NOW)  # fmt: skip
    call = HomeCall(message_id=1, name="Cara Lind", task="Call about the rate drop", due_at=NOW)
    batch = HomeBatch(batch_id=7, trigger="rate_drop", segment="rate_drop_30y", size=40,
                      created_at=NOW, expires_at=NOW)  # fmt: skip
    data = HomeData(
        slack_user_id=MANAGER, is_manager=True, officer_id=1, officer_name="Larry Officer",
        officer_email="lo@broker.com",
        unclaimed=(reply,) * LIST_LIMIT, unclaimed_total=500, claimed=(reply,) * LIST_LIMIT,
        claimed_total=500, calls=(call,) * LIST_LIMIT, calls_total=500,
        batches=(batch,) * BATCH_LIMIT, batches_total=80,
        pause=PauseState(paused=True, changed_by=MANAGER, changed_at=NOW, reason=None),
    )  # fmt: skip
    mine = FunnelRow(group="lo@broker.com", name="Larry Officer",
                     counts=Counter(reached=9, replied=5, claimed=3, funded=1))  # fmt: skip
    by_officer = Funnel(since=NOW - timedelta(days=30), until=NOW, by="lo", rows=[mine],
                        totals=mine, period="30d")  # fmt: skip
    view = home_view(data, funnel=by_officer, managers=[MANAGER], notice="Outreach paused.")
    assert len(view["blocks"]) <= MAX_HOME_BLOCKS
    shown = _shown(view)
    assert "Nothing sent in the last 30 days" not in shown and "*Reached*\\n9" in shown
    assert shown.count("and 490 more") == 3 and "and 75 more in the approvals channel" in shown
