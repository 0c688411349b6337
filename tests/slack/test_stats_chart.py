"""`/winback stats chart`: the funnel's PNG uploaded to the channel asked from (files_upload_v2
against the fake Slack), the lift in `/winback stats`, and the sandbox's saved file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from bot.command_text import Command, parse_command
from bot.runtime import Runtime
from bot.slack_app import SlackDeps
from handlers.slack.commands import handle_winback_command
from tests.cli.test_stats_chart import PNG_MAGIC, build_lift_scenario
from tests.fakes.slack_api import RESPONSE_URL, UPLOAD, FakeSlack
from tests.outreach import NOW, sandbox_settings
from tests.slack.live import LO_CHANNEL, MANAGER, slack_post, slack_web
from tests.slack.signing import slash_command_body
from tests.web import LiveWeb, MovableClock

ASKED_IN = "C0FUNNELS"


@pytest.fixture
def web(database_url: str, fake_slack: FakeSlack) -> Iterator[LiveWeb]:
    """`winback web` with Slack set up, over the lift scenario, on SQLite and PostgreSQL."""
    for live in slack_web(database_url, fake_slack):
        with live.sessions() as session, session.begin():
            build_lift_scenario(session)
        yield live


def ask(web: LiveWeb, fake: FakeSlack, words: str, name: str, channel: str = ASKED_IN) -> Any:
    """Type `/winback words` in `channel`; what arrived at the response_url."""
    body = slash_command_body(text=words, user_id=MANAGER, channel_id=channel,
                              response_url=fake.response_url(name))  # fmt: skip
    acked = slack_post(web, body)
    assert acked.status_code == 200
    assert acked.json() == {"text": "Working on it…", "response_type": "ephemeral"}
    return fake.wait_for(RESPONSE_URL, lambda c: c.path == f"/response/{name}", timeout=30).body


def test_stats_chart_uploads_a_png_to_the_channel_it_was_asked_in(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    answer = ask(web, fake_slack, "stats chart by trigger", "chart")

    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(f":bar_chart: The funnel chart is posted in <#{ASKED_IN}>")
    (upload,) = fake_slack.uploads()
    assert upload.channel == ASKED_IN and upload.filename.endswith(".png")
    assert upload.filename.startswith("winback-funnel-30d-by-trigger-")
    assert upload.content is not None and upload.content.startswith(PNG_MAGIC)
    assert len(upload.content) > 20_000
    picture = matplotlib.image.imread(io.BytesIO(upload.content), format="png")
    assert picture.shape[1] >= 1200
    (shared,) = fake_slack.messages(ASKED_IN)
    assert shared["text"] == f"Winback funnel · last 30 days · by trigger (asked by <@{MANAGER}>)"
    assert shared["files"][0]["size"] == len(upload.content)
    methods = [c.method for c in fake_slack.calls() if c.method.startswith("files.") or
               c.method == UPLOAD]  # fmt: skip
    assert methods == ["files.getUploadURLExternal", UPLOAD, "files.completeUploadExternal"]


def test_a_chart_slack_refuses_is_told_and_nothing_is_shared(
    web: LiveWeb, fake_slack: FakeSlack
) -> None:
    fake_slack.error_next("files.completeUploadExternal", "not_in_channel")
    answer = ask(web, fake_slack, "stats chart 7d", "refused", channel=LO_CHANNEL)

    assert "I could not post the funnel chart" in answer["text"]
    assert "`/invite @Winback`" in answer["text"]
    assert fake_slack.messages(LO_CHANNEL) == []


def test_stats_text_shows_the_lift_in_one_short_line(web: LiveWeb, fake_slack: FakeSlack) -> None:
    answer = ask(web, fake_slack, "stats by trigger", "text")

    shown = answer["text"] + json.dumps(answer["blocks"], ensure_ascii=False)
    line = next(
        element["text"]
        for block in answer["blocks"] if block["type"] == "context"
        for element in block["elements"] if "Did outreach cause it?" in element["text"]
    )  # fmt: skip
    assert line == (
        "*Did outreach cause it?* Funded, rate_drop: lift +15.0 points (95 % interval +4.7 to "
        "+25.4), messaged 20.0 % of 100 vs held out 5.0 % of 40"
    )
    assert "Funnel · last 30 days · by trigger" in shown
    assert fake_slack.uploads() == []


@dataclass
class Responses:
    """Stands in for Bolt's respond(): records each answer (Slack took it: HTTP 200)."""

    said: list[dict[str, Any]] = field(default_factory=list)
    status_code: int = 200

    def __call__(self, **answer: Any) -> Responses:
        self.said.append(answer)
        return self


def test_without_slack_the_chart_is_saved_and_the_answer_says_where(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(settings=sandbox_settings(database_url), clock=MovableClock())
    assert not runtime.settings.slack_enabled
    with runtime.sessions() as session, session.begin():
        build_lift_scenario(session)
    deps = SlackDeps(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock,
                     config=runtime.config, tracks=lambda: runtime.tracks)  # fmt: skip
    monkeypatch.chdir(tmp_path)
    respond = Responses()
    command = {"text": "stats chart all by lo", "user_id": MANAGER, "channel_id": ASKED_IN}
    try:
        handle_winback_command(command, respond, {"winback": deps}, client=None)  # type: ignore[arg-type]
    finally:
        runtime.engine.dispose()

    (saved,) = tmp_path.glob("winback-funnel-all-by-lo-*.png")
    assert saved.read_bytes().startswith(PNG_MAGIC)
    assert saved.name == f"winback-funnel-all-by-lo-{NOW:%Y%m%d-%H%M%S}.png"
    (answer,) = respond.said
    assert answer["response_type"] == "ephemeral"
    assert (
        answer["text"]
        == f":bar_chart: Slack is not set up, so the funnel chart is saved at `{saved}`."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stats chart", Command(name="stats", chart=True)),
        ("stats chart 7d by lo", Command(name="stats", since="7d", by="lo", chart=True)),
        (
            "stats 90d chart by triggers",
            Command(name="stats", since="90d", by="trigger", chart=True),
        ),
        ("stats CHART all", Command(name="stats", since="all", chart=True)),
    ],
)
def test_stats_chart_is_read(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


def test_a_second_chart_word_gets_the_stats_help() -> None:
    command = parse_command("stats chart chart")
    assert command.name == "help" and command.problem is not None
    assert "`chart` for a picture" in command.problem and "`by lo`" in command.problem


def test_the_help_mentions_stats_chart() -> None:
    from bot.blocks.commands import help_view

    shown = json.dumps(help_view().blocks, ensure_ascii=False)
    assert "/winback stats chart [7d|30d|90d|all]" in shown
