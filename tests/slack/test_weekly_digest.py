"""The weekly digest: made once per ISO week however many workers check, posted once to the
approvals channel with the week's figures, not before Monday 8:00 in the default time zone.

The week (America/New_York, summer time): Monday 2026-09-21 08:00 to Monday 2026-09-28 08:00,
i.e. 12:00 UTC to 12:00 UTC. In it:

- Pia (refinance): enrolled Tuesday, texted, replies Wednesday, claimed; a new $300,000 loan
  funded Friday, credited to the outreach.
- Ravi (refinance): enrolled Tuesday, emailed, replies Thursday (nobody claims it).
- Sam (repeat purchase): enrolled Thursday, texted, replies Friday.
- Old Olga (refinance): enrolled and texted in early September: outside the week.
- A rate-drop batch of 12 waits for approval since Sunday (its own card posted back then).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.blocks.common import MAX_BLOCKS, View
from bot.blocks.digest import digest_card
from bot.blocks.text import view_text
from bot.cli import app
from bot.runtime import Runtime
from core import jobs
from core.attribution.service import credit_funded_loans
from core.batches.models import APPROVED, PENDING_APPROVAL, Batch
from core.book.models import Contact, Loan
from core.cards.actions import claim_reply
from core.cards.batch_view import batch_card_key
from core.cards.models import BATCH, DIGEST, POSTED, Card
from core.cards.service import make_card
from core.config import ConfigError, load_config
from core.digest import DigestView, PendingBatch, SegmentReplies
from core.outreach import models as outbox
from core.outreach.models import Message
from core.settings import load_settings
from core.stats import lift_of
from tests.fakes.slack_api import FakeSlack
from tests.inbound.stored import received
from tests.slack.live import APPROVALS_CHANNEL, slack_settings
from tests.triggers.factories import make_contact, make_enrollment, make_lo, make_loan
from tests.web import MovableClock

DUE = datetime(2026, 9, 28, 12, 0, tzinfo=UTC)  # Monday 08:00 in New York
WEEK_START = DUE - timedelta(days=7)


def _runtime(database_url: str, fake: FakeSlack | None, tmp_path: Path, **config: str) -> Runtime:
    """The runtime a worker builds, with Slack pointed at the fake (or no Slack: the log)."""
    values = slack_settings(fake) if fake is not None else {}
    if config:
        path = tmp_path / "winback.toml"
        path.write_text("[digest]\n" + "".join(f"{k} = {v}\n" for k, v in config.items()))
        values["WINBACK_CONFIG"] = str(path)
    settings = load_settings(DATABASE_URL=database_url, **values)
    return Runtime(settings=settings, clock=MovableClock(at=DUE))


@pytest.fixture
def worker(database_url: str, fake_slack: FakeSlack, tmp_path: Path) -> Iterator[Runtime]:
    """A worker's runtime with Slack set up, on SQLite and PostgreSQL."""
    runtime = _runtime(database_url, fake_slack, tmp_path)
    yield runtime
    runtime.engine.dispose()


def digest_pass(rt: Runtime, at: datetime) -> dict[str, Any]:
    """One run of the worker's digest job at `at`."""
    return jobs.digest_job(session_factory=rt.sessions, now=at, config=rt.config)


def cards_pass(rt: Runtime, at: datetime, owner: str = "test-worker") -> dict[str, Any]:
    """One run of the worker's cards job at `at` (it posts what is due)."""
    return jobs.cards_job(session_factory=rt.sessions, now=at, posting=rt.posting_options(owner),
                          replies=rt.config.replies)  # fmt: skip


def digest_cards(rt: Runtime) -> list[Card]:
    """The digest cards in the database, by key."""
    with rt.sessions() as session:
        return list(session.scalars(select(Card).where(Card.kind == DIGEST).order_by(Card.key)))


def digests_in_slack(fake: FakeSlack) -> list[dict[str, Any]]:
    """The digest messages in the approvals channel."""
    return [
        message for message in fake.messages(APPROVALS_CHANNEL)
        if message["metadata"]["event_payload"]["key"].startswith("digest:")
    ]  # fmt: skip


def as_text(message: dict[str, Any]) -> str:
    """A posted message's blocks as the sandbox prints them."""
    return view_text(View(text=message["text"], blocks=message["blocks"]))


def _batch(session: Session, trigger: str, segment: str, status: str = APPROVED) -> Batch:
    decided = WEEK_START - timedelta(days=30) if status == APPROVED else None
    batch = Batch(trigger=trigger, segment=segment, status=status, size=12,
                  created_at=WEEK_START - timedelta(days=30), decided_at=decided,
                  decided_by="manager" if decided else None)  # fmt: skip
    session.add(batch)
    session.flush()
    return batch


def _enrolled(session: Session, contact: Contact, loan: Loan, batch: Batch, at: datetime,
              channel: str = "sms") -> Message:  # fmt: skip
    """Enroll `contact` from `batch` at `at`; their first touch, sent an hour later."""
    enrollment = make_enrollment(session, contact, loan, batch, at)
    sent = at + timedelta(hours=1)
    message = Message(
        enrollment_id=enrollment.id, contact_id=contact.id, step=1, channel=channel,
        template="intro", status=outbox.SENT, due_at=sent, sent_at=sent, updated_at=sent,
    )  # fmt: skip
    session.add(message)
    session.flush()
    return message


def build_week(rt: Runtime) -> int:
    """The people of the module docstring; the pending batch's id."""
    day = lambda n, hour=15: WEEK_START + timedelta(days=n, hours=hour - 12)  # noqa: E731
    with rt.sessions() as session, session.begin():
        lo = make_lo(session, name="Alice Adams")
        refi = _batch(session, "rate_drop", "refinance")
        repeat = _batch(session, "loan_age", "repeat_purchase")

        def person(name: str) -> tuple[Contact, Loan]:
            contact = make_contact(session, lo=lo, first_name=name)
            return contact, make_loan(session, contact)

        pia, loan = person("Pia")
        _enrolled(session, pia, loan, refi, day(1))
        reply = received(session, sender=pia.phone, body="Yes call me", contacts=[pia],
                         now=day(2))  # fmt: skip
        claim_reply(session, reply_id=reply.id, by="U0ALICE", now=day(2, 16))
        make_loan(session, pia, amount="300000", funded=date(2026, 9, 25))

        ravi, loan = person("Ravi")
        _enrolled(session, ravi, loan, refi, day(1), channel="email")
        received(session, sender=ravi.email, body="What rate?", contacts=[ravi], now=day(3),
                 channel="email")  # fmt: skip

        sam, loan = person("Sam")
        _enrolled(session, sam, loan, repeat, day(3))
        received(session, sender=sam.phone, body="maybe next year", contacts=[sam], now=day(4))

        olga, loan = person("Olga")
        _enrolled(session, olga, loan, refi, WEEK_START - timedelta(days=20))

        credit_funded_loans(session=session, contact_ids=[pia.id], now=day(5), window_days=120)
        waiting = _batch(session, "rate_drop", "refinance", status=PENDING_APPROVAL)
        waiting.created_at = day(6)
        # Its approval card went out when it was made; only the digest is new this Monday.
        card = make_card(session, key=batch_card_key(waiting.id), kind=BATCH, now=day(6),
                         batch_id=waiting.id)  # fmt: skip
        card.status, card.channel, card.ts = POSTED, APPROVALS_CHANNEL, "1.1"
        waiting_id = waiting.id
    # The replies' cards went out as they came in; only the digest is new on Monday.
    cards_pass(rt, DUE - timedelta(hours=1))
    return waiting_id


def test_the_digest_is_posted_once_to_the_approvals_channel_with_the_weeks_figures(
    worker: Runtime, fake_slack: FakeSlack
) -> None:
    batch_id = build_week(worker)
    at = DUE + timedelta(minutes=7)

    assert digest_pass(worker, at) == {"made": "digest:2026-W40"}
    assert digest_pass(worker, at + timedelta(minutes=10)) == {}  # the next check: nothing new
    assert cards_pass(worker, at).get("posted") == 1

    (message,) = digests_in_slack(fake_slack)
    assert message["metadata"]["event_payload"]["key"] == "digest:2026-W40"
    shown = as_text(message)
    for expected in (
        "Weekly digest: Sep 21 – Sep 28, 2026",
        "from Mon Sep 21 08:00 to Mon Sep 28 08:00 (America/New_York)",
        "Enrolled: 3 people", "Messaged: 3 people", "Replied: 3", "Claimed: 1",
        "Funded: 1 ($300,000)",
        "1. Refinance: 2 replies, 100.0 % of 2 people reached",
        "2. Repeat purchase: 1 reply, 100.0 % of 1 person reached",
        "Rate drop: not enough data yet", "Loan milestone: not enough data yet",
        "Waiting for approval: 1 batch",
        f"Batch {batch_id}: Rate drop, Refinance, 12 people, since 2026-09-27",
        "/winback stats chart` for the picture",
    ):  # fmt: skip
        assert expected in shown, (expected, shown)
    assert "quiet week" not in shown
    assert message["text"].startswith("Weekly digest Sep 21 – Sep 28, 2026: 3 enrolled")

    assert cards_pass(worker, at + timedelta(minutes=1)) == {}
    assert digest_pass(worker, at + timedelta(hours=5)) == {}
    assert len(digests_in_slack(fake_slack)) == 1
    (card,) = digest_cards(worker)
    assert (card.key, card.status, card.channel) == ("digest:2026-W40", POSTED, APPROVALS_CHANNEL)


def test_not_before_monday_eight_in_the_default_time_zone(
    worker: Runtime, fake_slack: FakeSlack
) -> None:
    for early in (DUE - timedelta(days=1), DUE - timedelta(minutes=1)):  # Sunday; 07:59 Monday
        assert digest_pass(worker, early) == {}
        cards_pass(worker, early)
    assert digest_cards(worker) == [] and fake_slack.messages(APPROVALS_CHANNEL) == []

    assert digest_pass(worker, DUE) == {"made": "digest:2026-W40"}  # 08:00 sharp
    assert cards_pass(worker, DUE).get("posted") == 1
    # Nothing happened: still posted, saying so, with the batches (none) and the lift (none).
    shown = as_text(digests_in_slack(fake_slack)[0])
    assert "A quiet week: nobody was enrolled, messaged or heard from." in shown
    assert "Enrolled: 0 people" in shown and "Waiting for approval: no batch." in shown
    assert "Holdout lift: not enough data yet" in shown


def test_two_workers_checking_and_posting_at_once_make_and_post_one_digest(
    worker: Runtime, fake_slack: FakeSlack
) -> None:
    build_week(worker)
    at = DUE + timedelta(minutes=3)
    made: list[dict[str, Any]] = []
    start = threading.Barrier(4)

    def check() -> None:
        start.wait()
        made.append(digest_pass(worker, at))

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(made, key=len) == [{}, {}, {}, {"made": "digest:2026-W40"}]
    assert len(digest_cards(worker)) == 1
    # Their cards jobs: the first posts it, the others find nothing left to post.
    posted = [cards_pass(worker, at, owner=f"worker-{n}").get("posted", 0) for n in range(4)]
    assert posted == [1, 0, 0, 0]
    assert len(digests_in_slack(fake_slack)) == 1
    digest_posts = [c for c in fake_slack.calls("chat.postMessage") if "digest" in c.body["text"]]
    assert len(digest_posts) == 1


def test_each_week_gets_its_own_digest_and_a_late_worker_does_not_post_a_stale_one(
    worker: Runtime, fake_slack: FakeSlack
) -> None:
    build_week(worker)
    digest_pass(worker, DUE + timedelta(minutes=1))
    cards_pass(worker, DUE + timedelta(minutes=1))

    thursday = DUE + timedelta(days=3)
    assert digest_pass(worker, thursday) == {}
    next_monday = DUE + timedelta(days=7, minutes=2)
    assert digest_pass(worker, next_monday) == {"made": "digest:2026-W41"}
    cards_pass(worker, next_monday)  # the digest, and the unclaimed replies' escalations

    first, second = digests_in_slack(fake_slack)
    assert second["metadata"]["event_payload"]["key"] == "digest:2026-W41"
    shown = as_text(second)
    assert "Weekly digest: Sep 28 – Oct 5, 2026" in shown
    assert "Enrolled: 0 people" in shown and "Replied: 0" in shown  # the week after was quiet
    assert "Enrolled: 3 people" in as_text(first)
    assert [card.key for card in digest_cards(worker)] == ["digest:2026-W40", "digest:2026-W41"]

    # A worker down all Monday: Tuesday morning is within a day's catch-up, Wednesday is not.
    assert digest_pass(worker, DUE + timedelta(days=15)) == {"made": "digest:2026-W42"}
    assert digest_pass(worker, DUE + timedelta(days=23)) == {}


def test_winback_digest_prints_what_the_channel_reads(
    worker: Runtime, fake_slack: FakeSlack, database_url: str
) -> None:
    build_week(worker)
    at = DUE + timedelta(minutes=5)
    digest_pass(worker, at)
    cards_pass(worker, at)
    (message,) = digests_in_slack(fake_slack)

    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    week = runner.invoke(app, ["digest", "--week", "2026-W40", "--now", at.isoformat()], env=env)
    assert week.exit_code == 0, week.output
    assert week.stdout.strip() == as_text(message).strip()

    preview = runner.invoke(app, ["digest", "--now", "2026-09-28T12:00:00Z"], env=env)
    assert preview.exit_code == 0, preview.output
    assert "Enrolled: 3 people" in preview.stdout and "Funded: 1 ($300,000)" in preview.stdout

    as_json = runner.invoke(app, ["digest", "--json", "--now", at.isoformat()], env=env)
    payload = json.loads(as_json.stdout)
    assert (payload["enrolled"], payload["messaged"], payload["replied"]) == (3, 3, 3)
    assert (payload["claimed"], payload["funded"], payload["funded_volume"]) == (1, 1, 300000.0)
    assert [s["segment"] for s in payload["top_segments"]] == ["refinance", "repeat_purchase"]

    wrong = runner.invoke(app, ["digest", "--week", "2026-W61"], env=env)
    assert wrong.exit_code == 2 and "--week must be an ISO week" in wrong.output


def test_a_disabled_digest_posts_nothing(
    database_url: str, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    rt = _runtime(database_url, fake_slack, tmp_path, enabled="false")
    build_week(rt)
    for at in (DUE, DUE + timedelta(minutes=30), DUE + timedelta(days=7)):
        assert digest_pass(rt, at) == {}
        cards_pass(rt, at)
    with rt.sessions() as session:
        assert session.scalar(select(func.count(Card.id)).where(Card.kind == DIGEST)) == 0
    assert fake_slack.messages(APPROVALS_CHANNEL) == []
    rt.engine.dispose()


def test_without_slack_the_digest_goes_to_the_log(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt = _runtime(database_url, None, tmp_path, weekday='"friday"', hour="17")
    friday_five = datetime(2026, 9, 25, 21, 0, tzinfo=UTC)  # 17:00 in New York
    caplog.set_level("INFO", logger="bot.slack_cards")
    assert digest_pass(rt, friday_five) == {"made": "digest:2026-W39"}
    assert cards_pass(rt, friday_five) == {"posted": 1}
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.slack_cards")
    assert "card digest:2026-W39 (Slack is not set up)" in logged
    assert "Weekly digest: Sep 18 – Sep 25, 2026" in logged and "A quiet week" in logged
    rt.engine.dispose()


@pytest.mark.parametrize(
    ("section", "says"),
    [({"weekday": "funday"}, "digest.weekday"), ({"hour": 24}, "digest.hour")],
)
def test_a_wrong_digest_setting_is_one_line_naming_it(section: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config(overrides={"digest": section})
    assert load_config(overrides={"digest": {"weekday": " Friday "}}).digest.weekday == "friday"


def test_a_big_week_stays_within_slacks_limits_and_shows_a_measured_lift() -> None:
    lift = lift_of("rate_drop", messaged=400, messaged_funded=40, holdout=100, holdout_funded=4)
    view = DigestView(
        week="2026-W40", since=WEEK_START, until=DUE, zone="America/New_York", enrolled=1200,
        messaged=1100, replied=90, claimed=70, funded=6, funded_volume=2_100_000.0,
        top_segments=tuple(SegmentReplies(f"segment_{n}", 10 - n, 100) for n in range(5)),
        lift=(lift,),
        pending=tuple(PendingBatch(n, "rate_drop", "refinance", 50, WEEK_START) for n in range(10)),
        pending_total=37,
    )  # fmt: skip

    card = digest_card(view)
    shown = view_text(card)

    assert len(card.blocks) <= MAX_BLOCKS
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in card.blocks)
    assert "Enrolled: 1,200 people" in shown and "Funded: 6 ($2,100,000)" in shown
    assert "• Rate drop: +6.0 points (95 %: " in shown and "400 messaged vs 100 held out" in shown
    assert "Waiting for approval: 37 batches" in shown
    assert "…and 27 more: `/winback batches`" in shown
    assert shown.count("• Batch ") == 10 and "5. Segment 4: 6 replies" in shown
