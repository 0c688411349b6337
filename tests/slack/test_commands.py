"""`/winback` end to end: a signed slash command over HTTP, the ack, the answer at response_url."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from core import jobs
from core.audit.models import AuditEvent
from core.batches.models import APPROVED, EXPIRED, PENDING_APPROVAL, REJECTED, Batch
from core.book.models import OPTED_OUT, Contact
from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.consent.models import ConsentEvent, Suppression
from core.flows import evaluate
from core.outreach.models import Enrollment
from core.outreach.switches import is_paused
from tests.fakes.slack_api import RESPONSE_URL, FakeSlack
from tests.outreach import NOW, run_dispatch
from tests.slack.live import (
    APPROVALS_CHANNEL,
    LO_USER,
    MANAGER,
    book_with_officer,
    slack_web,
    slash,
)
from tests.triggers.factories import (
    default_config,
    make_contact,
    make_lo,
    make_loan,
    set_rate,
    shipped_tracks,
)
from tests.web import LiveWeb

ANA = {"first_name": "Ana", "last_name": "Diaz", "phone": "+14155550123",
       "email": "ana.diaz@example.com"}  # fmt: skip
BEN = {"first_name": "Ben", "last_name": "Okafor", "phone": "+14155550188"}
STRANGER = "U0STRANGER"
_names = itertools.count(1)


@pytest.fixture
def web(database_url: str, fake_slack: FakeSlack) -> Iterator[LiveWeb]:
    """`winback web` with Slack set up, on SQLite and PostgreSQL."""
    yield from slack_web(database_url, fake_slack)


def _ask(
    web: LiveWeb, fake: FakeSlack, words: str, *, user: str = MANAGER
) -> tuple[httpx.Response, dict[str, Any]]:
    """Type `/winback words`: the HTTP answer (the ack) and what arrived at the response_url."""
    name = f"ask{next(_names)}"
    acked = slash(web, words, user=user, response_url=fake.response_url(name))
    assert acked.status_code == 200
    assert acked.text == "" or json.loads(acked.text) == {
        "text": "Working on it…", "response_type": "ephemeral"
    }  # fmt: skip
    call = fake.wait_for(RESPONSE_URL, lambda c: c.path == f"/response/{name}", timeout=20)
    return acked, call.body


def _said(answer: dict[str, Any]) -> str:
    return answer["text"] + json.dumps(answer.get("blocks", []), ensure_ascii=False)


def _help_ack(web: LiveWeb, fake: FakeSlack, words: str) -> tuple[str, str]:
    """The ack of text answered with the help: (its notification text, all it shows)."""
    name = f"help{next(_names)}"
    acked = slash(web, words, user=MANAGER, response_url=fake.response_url(name))
    assert acked.status_code == 200
    body = acked.json()
    assert body["response_type"] == "ephemeral"
    return body["text"], json.dumps(body["blocks"], ensure_ascii=False)


def _pending_batch(web: LiveWeb, people: list[dict[str, Any]], rate: str = "6.0") -> int:
    """People whose loans are worth refinancing, in a rate-drop batch waiting for approval."""
    with web.sessions() as session, session.begin():
        officer = make_lo(session, name="Pam Officer")
        for fields in people:
            make_loan(session, make_contact(session, lo=officer, **fields))
        set_rate(session, rate)
        (batch,) = evaluate(
            session=session, now=NOW, config=default_config(), tracks=shipped_tracks(),
            only=["rate_drop"],
        ).batches  # fmt: skip
        assert batch.status == PENDING_APPROVAL
        return batch.id


def _batch(web: LiveWeb, batch_id: int) -> Batch:
    with web.sessions() as session:
        found = session.get(Batch, batch_id)
        assert found is not None
        return found


def _enrolled(web: LiveWeb) -> int:
    with web.sessions() as session:
        return len(session.scalars(select(Enrollment.id)).all())


def _buttons(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (element["action_id"], element["value"])
        for block in answer["blocks"] if block["type"] == "actions"
        for element in block["elements"]
    ]  # fmt: skip


# --- help, unknown and malformed text -----------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "problem"),
    [
        ("help", None),
        ("", None),
        ("segmnts", "`segmnts` is not a `/winback` command"),
        ("approve abc", "`approve` needs a batch number"),
        ("segment nosuch", "There is no segment `nosuch`"),
        ("stats 14d", "`stats` takes a period"),
        ("whois someone", "needs a phone number or an email address"),
        ("segment refi " + "x" * 5000, "too long"),
    ],
)
def test_unknown_or_malformed_text_gets_the_help_in_the_ack(
    web: LiveWeb, fake_slack: FakeSlack, words: str, problem: str | None
) -> None:
    notification, shown = _help_ack(web, fake_slack, words)
    for usage in ("/winback segments", "/winback segment refi [@lo]", "/winback batches",
                  "/winback approve 12", "/winback stats", "/winback stats chart",
                  "/winback rate", "/winback pause",
                  "/winback whois PHONE|EMAIL", "/winback optout PHONE|EMAIL",
                  "refinance (or refi)"):  # fmt: skip
        assert usage in shown, usage
    if problem:
        assert problem in shown and problem in notification
    assert "Traceback" not in shown


# --- the ack comes first ------------------------------------------------------------------------


def test_the_http_answer_is_the_ack_and_the_answer_follows_at_the_response_url(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    fake_slack.slow(RESPONSE_URL, 4.0)  # the answer is held up on its way: the ack is not
    acked = slash(web, "segments", user=LO_USER, response_url=fake_slack.response_url("slow"))
    assert acked.status_code == 200
    assert acked.json() == {"text": "Working on it…", "response_type": "ephemeral"}
    assert fake_slack.responses("slow") == []  # the ack left before the answer was delivered
    call = fake_slack.wait_for(RESPONSE_URL, lambda c: c.path == "/response/slow", timeout=20)
    assert "Refinance" in _said(call.body) and call.body["response_type"] == "ephemeral"


# --- segments -----------------------------------------------------------------------------------


def test_segments_counts_people_per_segment_and_per_loan_officer(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA, BEN])
    acked, answer = _ask(web, fake_slack, "segments", user=LO_USER)
    assert acked.json()["text"] == "Working on it…"
    assert answer["response_type"] == "ephemeral"
    assert "refinance 2" in answer["text"] and "stalled 0" in answer["text"]
    shown = _said(answer)
    assert "*Refinance* `refinance`\\n2" in shown
    assert "*Larry Officer* — refinance 2" in shown


def test_segment_refi_lists_the_best_people_with_their_numbers(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA, BEN])
    _, answer = _ask(web, fake_slack, "segment refi")  # a manager: everyone
    shown = _said(answer)
    assert "Top 2 · Refinance" in shown
    for fact in ("Ana Diaz", "Ben Okafor", "(Larry Officer)", "note 7.00 % → 6.00 %", "saves $",
                 "/mo", "break-even "):  # fmt: skip
        assert fact in shown, fact
    assert "+14155550123" not in shown  # numbers are the figures, not the phone

    _, mine = _ask(web, fake_slack, "segment refinance", user=LO_USER)  # the LO: their own
    assert "Your top 2 · Refinance" in _said(mine)

    _, theirs = _ask(web, fake_slack, f"segment refi <@{LO_USER}|larry>")
    assert "Larry Officer's top 2 · Refinance" in _said(theirs)

    _, nobody = _ask(web, fake_slack, "segment stalled", user=LO_USER)
    assert "Stalled applications: nobody of yours now" in _said(nobody)


def test_segment_for_someone_who_is_not_a_loan_officer_says_so(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA])
    _, answer = _ask(web, fake_slack, "segment refi <@U0NOTANLO|sam>")
    assert "<@U0NOTANLO> is not a loan officer in Winback" in answer["text"]


# --- batches, approve, reject -------------------------------------------------------------------


def test_batches_shows_pending_ones_with_buttons_for_managers_only(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = _pending_batch(web, [ANA, BEN])
    _, answer = _ask(web, fake_slack, "batches")
    assert _buttons(answer) == [("approve_batch", str(batch_id)), ("reject_batch", str(batch_id))]
    shown = _said(answer)
    assert f"*Batch {batch_id}* · Rate drop → `refinance` · *2 people*" in shown
    assert "Waiting for approval (1)" in shown

    _, seen_by_lo = _ask(web, fake_slack, "batches", user=LO_USER)
    assert _buttons(seen_by_lo) == []
    assert "Only managers can approve or reject batches" in _said(seen_by_lo)


def test_a_manager_approves_a_batch_and_its_people_are_enrolled(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = _pending_batch(web, [ANA, BEN])
    _, answer = _ask(web, fake_slack, f"approve {batch_id}")
    assert answer["text"] == (
        f":white_check_mark: Batch {batch_id} approved: 2 people enrolled. Their first touches "
        "go out at the next dispatch."
    )
    batch = _batch(web, batch_id)
    assert (batch.status, batch.decided_by) == (APPROVED, MANAGER)
    assert _enrolled(web) == 2

    _, again = _ask(web, fake_slack, f"approve {batch_id}")
    assert again["text"] == f"Batch {batch_id} is already approved by <@{MANAGER}>."
    assert _enrolled(web) == 2


def test_approving_with_the_command_brings_the_batch_card_up_to_date(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = _pending_batch(web, [ANA])
    posting = web.runtime.posting_options("test-worker")
    summary = jobs.cards_job(session_factory=web.sessions, now=web.clock.now(), posting=posting,
                             replies=web.runtime.config.replies)  # fmt: skip
    assert summary.get("posted") == 1, summary
    (card,) = fake_slack.messages(APPROVALS_CHANNEL)
    assert "approve_batch" in json.dumps(card["blocks"])
    _ask(web, fake_slack, f"approve {batch_id}")
    shown = json.dumps(fake_slack.message(APPROVALS_CHANNEL, card["ts"])["blocks"])
    assert f"Approved by <@{MANAGER}> at" in shown and "approve_batch" not in shown


def test_a_manager_rejects_a_batch_and_nobody_is_enrolled(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = _pending_batch(web, [ANA])
    _, answer = _ask(web, fake_slack, f"reject #{batch_id}")
    assert answer["text"] == f"Batch {batch_id} rejected: none of its 1 person is contacted."
    assert _batch(web, batch_id).decided_by == MANAGER
    assert (_batch(web, batch_id).status, _enrolled(web)) == (REJECTED, 0)


def test_approving_after_the_rate_moved_expires_the_batch_and_says_why(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    batch_id = _pending_batch(web, [ANA])
    with web.sessions() as session, session.begin():
        set_rate(session, "5.5")  # half a point below the batch's 6.0: past the tolerance
    _, answer = _ask(web, fake_slack, f"approve {batch_id}")
    assert answer["text"].startswith(
        f":hourglass: Batch {batch_id} was not approved and has expired: rates moved"
    )
    assert (_batch(web, batch_id).status, _enrolled(web)) == (EXPIRED, 0)  # the expiry committed


def test_approving_a_batch_that_does_not_exist_says_so(web: LiveWeb, fake_slack: FakeSlack) -> None:
    _, answer = _ask(web, fake_slack, "approve 4242")
    assert answer["text"] == "There is no batch 4242. Nothing was changed."


def test_a_big_batch_is_approved_only_with_its_size_typed_in(
    database_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    config = tmp_path / "winback.toml"
    config.write_text("[replies]\nconfirm_batch_size_above = 1\n")
    for web in slack_web(database_url, fake_slack, WINBACK_CONFIG=str(config)):
        batch_id = _pending_batch(web, [ANA, BEN])
        _, bare = _ask(web, fake_slack, f"approve {batch_id}")
        assert bare["text"] == (
            f"Batch {batch_id} has 2 people: to approve that many at once, type its size too: "
            f"`/winback approve {batch_id} 2`. Nothing changed yet."
        )
        _, wrong = _ask(web, fake_slack, f"approve {batch_id} 3")
        assert wrong["text"] == f"Batch {batch_id} has 2 people, not 3: nothing was changed."
        assert (_batch(web, batch_id).status, _enrolled(web)) == (PENDING_APPROVAL, 0)
        _, typed = _ask(web, fake_slack, f"approve {batch_id} 2")
        assert typed["text"].startswith(f":white_check_mark: Batch {batch_id} approved: 2 people")
        assert (_batch(web, batch_id).status, _enrolled(web)) == (APPROVED, 2)


@pytest.mark.parametrize("words", ["approve {id}", "reject {id}"])
def test_someone_not_a_manager_cannot_decide_a_batch(
    web: LiveWeb, fake_slack: FakeSlack, words: str
) -> None:
    batch_id = _pending_batch(web, [ANA])
    _, answer = _ask(web, fake_slack, words.format(id=batch_id), user=LO_USER)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == (
        f"Only managers can approve or reject batches: ask <@{MANAGER}>. Nothing was changed."
    )
    batch = _batch(web, batch_id)
    assert (batch.status, batch.decided_by, _enrolled(web)) == (PENDING_APPROVAL, None, 0)


# --- stats --------------------------------------------------------------------------------------


def test_stats_shows_the_funnel_by_segment_trigger_and_loan_officer(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA, BEN])
    assert _dispatch(web).sent == 2
    acked, answer = _ask(web, fake_slack, "stats", user=LO_USER)
    assert acked.json()["text"] == "Working on it…"
    shown = _said(answer)
    assert "Funnel · last 30 days · by segment" in shown
    assert answer["text"].startswith("Funnel · last 30 days · by segment: enrolled 2, sent 2,")
    table = next(b["text"]["text"] for b in answer["blocks"] if "```" in b["text"].get("text", ""))
    lines = table.strip("`\n").splitlines()
    assert lines[0].split()[:4] == ["segment", "enrolled", "sent", "deliv."]
    assert lines[1].split()[:3] == ["refinance", "2", "2"]
    assert lines[-1].split()[:3] == ["total", "2", "2"]
    assert "Rates: reply 0.0 %" in shown
    # The book's batch was approved with nobody held out: the lift waits for more people.
    assert "*Did outreach cause it?* Funded, rate_drop: not enough data yet" in shown

    _, by_lo = _ask(web, fake_slack, "stats all by lo")
    assert "Funnel · all time · by lo" in _said(by_lo)
    assert "Larry Officer" in _said(by_lo)
    _, by_trigger = _ask(web, fake_slack, "stats by trigger 7d")
    assert "Funnel · last 7 days · by trigger" in _said(by_trigger)
    assert "rate_drop" in _said(by_trigger)


def test_stats_of_a_quiet_period_says_nothing_happened(web: LiveWeb, fake_slack: FakeSlack) -> None:
    _, answer = _ask(web, fake_slack, "stats 7d")
    assert "Nothing happened in this period." in _said(answer)


# --- rate ---------------------------------------------------------------------------------------


def test_rate_shows_todays_offers(web: LiveWeb, fake_slack: FakeSlack) -> None:
    _, before = _ask(web, fake_slack, "rate", user=LO_USER)
    assert "no market rate recorded yet" in _said(before)
    with web.sessions() as session, session.begin():
        set_rate(session, "6.125")
    _, answer = _ask(web, fake_slack, "rate", user=LO_USER)
    assert answer["text"] == "Offer rates: 30y 6.125 %"
    shown = _said(answer)
    assert "*30-year fixed*: *6.125 %*" in shown and "= 6.125%" in shown
    assert "*15-year fixed*: no market rate recorded yet" in shown


# --- pause and resume ---------------------------------------------------------------------------


def _dispatch(web: LiveWeb) -> Any:
    return run_dispatch(web.sessions, web.settings, SandboxSmsSender(), SandboxEmailSender(),
                        now=web.clock.now())  # fmt: skip


def test_a_manager_pauses_and_nothing_goes_out_until_resumed(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    book_with_officer(web, [ANA, BEN])
    _, answer = _ask(web, fake_slack, "pause rates are jumping")
    assert answer["response_type"] == "ephemeral"
    assert f"Outreach paused by <@{MANAGER}> (rates are jumping)" in answer["text"]
    with web.sessions() as session:
        assert is_paused(session)
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "outreach.paused")
        ).one()
        assert (event.actor, event.reason) == (MANAGER, "rates are jumping")
    paused = _dispatch(web)
    assert paused.sent == 0 and paused.held.get("paused", 0) > 0

    _, resumed = _ask(web, fake_slack, "resume")
    assert f"Outreach resumed by <@{MANAGER}>" in resumed["text"]
    with web.sessions() as session:
        assert not is_paused(session)
    assert _dispatch(web).sent > 0


@pytest.mark.parametrize("words", ["pause", "resume"])
def test_someone_not_a_manager_cannot_pause_or_resume(
    web: LiveWeb, fake_slack: FakeSlack, words: str
) -> None:
    if words == "resume":
        _ask(web, fake_slack, "pause")
    _, answer = _ask(web, fake_slack, words, user=LO_USER)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == (
        f"Only managers can {words} outreach: ask <@{MANAGER}>. Nothing was changed."
    )
    with web.sessions() as session:
        assert is_paused(session) is (words == "resume")
        actors = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action.like("outreach.%"))
        ).all()
    assert LO_USER not in actors


# --- whois and optout ---------------------------------------------------------------------------


def test_whois_shows_a_contact_and_logs_no_phone_or_email(
    web: LiveWeb, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # what the product logs
    book_with_officer(web, [ANA])
    _, answer = _ask(web, fake_slack, "whois (415) 555-0123", user=LO_USER)
    assert answer["response_type"] == "ephemeral"
    shown = _said(answer)
    for fact in ("Ana Diaz", "LO Larry Officer", "Phone (415) 555-0123", "SMS consent *granted*",
                 "Email ana.diaz@example.com", "Loan LN", "funded, 7.00 %, $400,000",
                 "Track "):  # fmt: skip
        assert fact in shown, fact
    _, by_email = _ask(web, fake_slack, "whois <mailto:Ana.Diaz@example.com|Ana.Diaz@example.com>")
    assert "Ana Diaz" in _said(by_email)
    _, nobody = _ask(web, fake_slack, "whois +14155550999")
    assert nobody["text"] == "Nobody in the book has that phone number or email."
    for secret in ("555-0123", "5550123", "ana.diaz@", "Ana.Diaz@", "5550999"):
        assert secret not in caplog.text


def test_optout_stops_everything_with_the_slack_user_as_actor(
    web: LiveWeb, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # what the product logs
    book = book_with_officer(web, [ANA, BEN])
    _, answer = _ask(web, fake_slack, "optout +14155550123", user=LO_USER)
    assert "Opted out 1 contact with +1415***0123" in answer["text"]
    assert f"(by <@{LO_USER}>)" in answer["text"]
    ana, ben = (book.contact(contact_id) for contact_id in book.contacts)
    assert (ana.sms_consent, ana.email_consent) == (OPTED_OUT, OPTED_OUT)
    assert ben.sms_consent != OPTED_OUT
    with web.sessions() as session:
        events = session.scalars(
            select(ConsentEvent).where(ConsentEvent.contact_id == ana.id)
            .where(ConsentEvent.new_state == OPTED_OUT)
        ).all()  # fmt: skip
        assert {e.channel for e in events} == {"sms", "email"}
        assert {(e.actor, e.source) for e in events} == {(LO_USER, "opt_out/slack")}
        suppressed = session.scalars(select(Suppression.value)).all()
    assert "+14155550123" in suppressed
    assert "+14155550123" not in caplog.text and "5550123" not in caplog.text


def test_optout_of_an_address_nobody_has_still_suppresses_it(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    _, answer = _ask(web, fake_slack, "optout <mailto:zed@example.com|zed@example.com>")
    assert answer["text"].startswith("Nobody in the book has z***@e***.com")
    with web.sessions() as session:
        assert session.scalars(select(Suppression.value)).all() == ["zed@example.com"]
        assert session.scalars(select(Contact.id)).all() == []


# --- failures -----------------------------------------------------------------------------------


def test_a_failure_gets_a_friendly_answer_and_a_log_line_without_details(
    web: LiveWeb, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    book_with_officer(web, [ANA])
    with web.sessions() as session, session.begin():
        session.execute(text("DROP TABLE switches"))  # the pause switch cannot be read
    _, answer = _ask(web, fake_slack, "pause")
    assert answer["text"].startswith("Sorry, `/winback pause` failed on our side.")
    assert "Traceback" not in _said(answer) and "switches" not in _said(answer)
    (line,) = [r for r in caplog.records if r.getMessage().startswith("/winback pause failed")]
    assert "OperationalError" in line.getMessage() or "ProgrammingError" in line.getMessage()
    assert "core/outreach/switches.py:" in line.getMessage()  # where, in our own code
    assert line.exc_info is None


def test_an_answer_slack_refuses_is_logged(
    web: LiveWeb, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake_slack.fail_next(RESPONSE_URL, status=500)
    _ask(web, fake_slack, "rate")
    wanted = "/winback rate: Slack refused the answer (HTTP 500)"
    for _ in range(200):  # logged once the refusal reached the listener, just after the fake
        if any(wanted in record.getMessage() for record in caplog.records):
            return
        time.sleep(0.05)
    raise AssertionError("the refused answer was not logged")
