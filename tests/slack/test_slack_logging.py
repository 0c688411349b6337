"""Slack traffic never reaches the logs: not a borrower's phone, nor what they wrote."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.runtime import mask_logs
from tests.fakes.slack_api import FakeSlack
from tests.slack.live import LO_CHANNEL

CARD_TEXT = "Dana Diaz (+14155550123, dana@example.com) wrote: yes call me about the refi"


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """The root logger at DEBUG into a buffer, as an operator debugging the worker would set it."""
    root = logging.getLogger()
    saved = (root.level, root.handlers[:])
    quiet = {name: logging.getLogger(name).level for name in ("slack_sdk", "slack_bolt")}
    buffer = io.StringIO()
    root.handlers = [logging.StreamHandler(buffer)]
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.setLevel(saved[0])
        root.handlers = saved[1]
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def test_a_card_posted_with_debug_logging_on_leaves_no_trace_of_its_text(
    fake_slack: FakeSlack, debug_logs: io.StringIO
) -> None:
    mask_logs(logging.DEBUG)
    client = WebClient(token=fake_slack.token, base_url=fake_slack.url)

    assert client.chat_postMessage(channel=LO_CHANNEL, text=CARD_TEXT)["ok"]
    logging.getLogger("winback.worker").debug("posted a card for reply %d", 7)

    logged = debug_logs.getvalue()
    assert "posted a card for reply 7" in logged  # Winback's own debug lines still show
    for secret in ("+14155550123", "4155550123", "dana@example.com", "yes call me"):
        assert secret not in logged
    assert fake_slack.messages(LO_CHANNEL)[-1]["text"] == CARD_TEXT  # and the card went out
