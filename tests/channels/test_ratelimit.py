"""The token bucket keeps sends at the configured pace, measured on a fake clock."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.channels.ratelimit import TokenBucket


class FakeTime:
    """A clock that only moves when someone sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.mark.parametrize(("rate", "burst"), [(1.0, 1), (10.0, 1), (30.0, 5), (0.5, 3)])
def test_long_run_rate_stays_within_five_percent(rate: float, burst: int) -> None:
    time = FakeTime()
    bucket = TokenBucket(rate, burst, clock=time.clock, sleep=time.sleep)
    start = time.now

    for _ in range(2000):
        bucket.acquire()

    achieved = 2000 / (time.now - start)
    assert abs(achieved - rate) / rate <= 0.05


def test_burst_goes_through_at_once_then_sends_are_paced() -> None:
    time = FakeTime()
    bucket = TokenBucket(10.0, burst=3, clock=time.clock, sleep=time.sleep)

    for _ in range(5):
        bucket.acquire()

    assert time.sleeps == pytest.approx([0.1, 0.1])


def test_idle_time_refills_only_up_to_the_burst() -> None:
    time = FakeTime()
    bucket = TokenBucket(1.0, burst=2, clock=time.clock, sleep=time.sleep)
    bucket.acquire()
    bucket.acquire()
    time.now += 3600  # an idle hour must not bank 3600 sends

    assert bucket.try_acquire()
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


def test_waiting_threads_get_distinct_slots() -> None:
    # The clock stands still, so each thread's sleep shows which slot it reserved.
    time = FakeTime()
    time.sleep = time.sleeps.append  # type: ignore[method-assign]
    bucket = TokenBucket(4.0, burst=1, clock=time.clock, sleep=time.sleep)
    threads = [threading.Thread(target=bucket.acquire) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(time.sleeps) == pytest.approx([n / 4.0 for n in range(1, 40)])


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.2, max_value=50.0),
    burst=st.integers(min_value=1, max_value=5),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=40),
)
def test_no_window_ever_exceeds_burst_plus_rate(rate: float, burst: int, gaps: list[float]) -> None:
    time = FakeTime()
    bucket = TokenBucket(rate, burst, clock=time.clock, sleep=time.sleep)
    granted: list[float] = []
    for gap in gaps:
        time.now += gap  # the caller was busy before asking again
        bucket.acquire()
        granted.append(time.now)

    for first in range(len(granted)):
        for last in range(first, len(granted)):
            window = granted[last] - granted[first]
            assert last - first + 1 <= burst + rate * window + 1e-6


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
