"""Cards that are not warm replies, and cards with no Slack set up (the sandbox and the demo)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import jobs
from core.channels.email import SandboxEmailSender
from core.channels.sms import SandboxSmsSender
from core.outreach.models import TASK_OPEN, Message
from tests.fakes.slack_api import FakeSlack
from tests.inbound.texting import text
from tests.outreach import NOW, run_dispatch
from tests.slack.live import LO_CHANNEL, book_with_officer, settled, slack_web
from tests.web import LiveWeb, live_web

ANA = {"first_name": "Ana", "last_name": "Diaz", "phone": "+14155550123"}


def _cards_pass(web: LiveWeb) -> dict:
    return jobs.cards_job(
        session_factory=web.sessions, now=web.clock.now(),
        posting=web.runtime.posting_options("test-worker"), replies=web.runtime.config.replies,
    )  # fmt: skip


def test_without_slack_the_card_is_written_readably_to_the_log_without_the_phone(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack_cards")
    for web in live_web(database_url, real_router=True):
        book_with_officer(web, [ANA], channel=None)
        text(web, "Yes call me after 5", ANA["phone"])
        settled(web)
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.slack_cards")
        assert "Ana Diaz texted back" in logged and "Yes call me after 5" in logged
        assert "[Claim]  [Snooze 1 hour]  [Not interested]  [Stop outreach]" in logged
        assert "555-0123" not in logged and "+14155550123" not in logged
        assert "+1415***0123" in logged
        (line,) = [r for r in caplog.records if "texted back" in r.getMessage()]
        assert "<@" not in line.getMessage() and "<!date" not in line.getMessage()


def test_a_call_task_step_becomes_a_call_this_borrower_card(
    database_url: str, fake_slack: FakeSlack
) -> None:
    for web in slack_web(database_url, fake_slack):
        book_with_officer(web, [ANA])
        day_14 = NOW + timedelta(days=14, hours=1)
        run_dispatch(web.sessions, web.settings, SandboxSmsSender(), SandboxEmailSender(),
                     now=day_14)  # fmt: skip
        with web.sessions() as session:
            tasks = session.scalars(select(Message).where(Message.status == TASK_OPEN)).all()
        assert len(tasks) == 1
        web.clock.at = day_14
        assert _cards_pass(web)["posted"] == 1
        (card,) = fake_slack.messages(LO_CHANNEL)
        blocks = str(card["blocks"])
        assert "Call Ana Diaz" in blocks and "(415) 555-0123" in blocks and "Rate drop" in blocks
        assert _cards_pass(web) == {}
        assert len(fake_slack.messages(LO_CHANNEL)) == 1
