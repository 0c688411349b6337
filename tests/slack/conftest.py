"""The `fake_slack` fixture: a running strict fake Slack Web API for every Slack test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.slack_api import FakeSlack, running_fake_slack


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A running fake Slack; the test fails if it saw a request Winback should never send."""
    with running_fake_slack() as fake:
        yield fake
    unexpected = fake.take_unexpected()
    if unexpected:
        pytest.fail(f"the fake Slack saw unexpected requests: {unexpected}")
