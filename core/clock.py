"""One clock for everything time-dependent, so `--now` and tests need no monkeypatching."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Anything that can tell the current UTC time."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock stopped at one instant (the `--now` simulation clock)."""

    at: datetime

    def now(self) -> datetime:
        """The fixed instant."""
        return self.at


def parse_now(value: str | None) -> Clock:
    """A clock for an optional ISO-8601 `--now` value; naive times are read as UTC."""
    if not value:
        return SystemClock()
    at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return FixedClock(at.astimezone(UTC))
