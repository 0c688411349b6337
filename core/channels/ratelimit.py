"""A thread-safe token bucket that paces sends to what the provider allows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Lets `rate_per_second` sends through on average, with bursts of up to `burst`."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated_at = clock()

    def acquire(self) -> None:
        """Take one token, waiting until it is available."""
        with self._lock:
            self._refill()
            # Reserve the token now (the balance may go negative) and wait outside the lock,
            # so each waiting thread owns a distinct future slot and none oversleeps another.
            self._tokens -= 1.0
            wait = -self._tokens / self.rate_per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)

    def try_acquire(self) -> bool:
        """Take one token if one is available right now; never waits."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated_at)
        self._updated_at = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_second)
