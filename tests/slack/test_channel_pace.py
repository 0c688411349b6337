"""Slack's pace of about one message per second per channel, with short bursts (GCRA)."""

from __future__ import annotations

import pytest

from bot.slack_cards import ChannelPace


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_four_goes_at_once_then_one_a_second_and_a_long_queue_comes_back_later() -> None:
    clock = Clock()
    pace = ChannelPace(clock=clock)
    waits = [pace.reserve("C1") for _ in range(7)]
    assert waits[:4] == [(True, 0.0)] * 4  # four replies landing together are not held back
    assert waits[4:] == [(True, 1.0), (True, 2.0), (True, 3.0)]
    refused, again = pace.reserve("C1")  # an eighth would tie a thread up for 4 s
    assert not refused and again == pytest.approx(1.05)
    assert pace.reserve("C2") == (True, 0.0)  # another channel is not held up

    clock.now += again  # asked again when told: its slot is within the longest wait
    reserved, wait = pace.reserve("C1")
    assert reserved and wait == pytest.approx(2.95)


def test_a_quiet_channel_has_its_full_burst_again() -> None:
    clock = Clock()
    pace = ChannelPace(clock=clock)
    for _ in range(6):
        pace.reserve("C1")
    clock.now += 10
    assert [pace.reserve("C1") for _ in range(4)] == [(True, 0.0)] * 4
