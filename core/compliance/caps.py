"""How often one person may be messaged: the operator's caps and the state caps (§3).

Caps count every message that may have reached the person, on any channel, in the preceding
24 hours / 7 days, exclusive: a message sent exactly 24 h after the last one is allowed.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DAY = timedelta(hours=24)
WEEK = timedelta(days=7)
# Florida, Oklahoma and Maryland: at most 3 messages per 24 h, any channel or number.
STATE_CAPS_24H: dict[str, int] = {"FL": 3, "OK": 3, "MD": 3}


@dataclass
class RecentSends:
    """When one contact was messaged lately (any channel), oldest first."""

    sent_at: list[datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sent_at.sort()

    def record(self, at: datetime) -> None:
        """Count a message just sent, so the rest of a batch sees it."""
        insort(self.sent_at, at)

    def count_since(self, t: datetime) -> int:
        """How many messages were sent strictly after `t`."""
        return len(self.sent_at) - bisect_right(self.sent_at, t)

    def oldest_since(self, t: datetime) -> datetime | None:
        """The earliest message sent strictly after `t`, if any."""
        first = bisect_right(self.sent_at, t)
        return self.sent_at[first] if first < len(self.sent_at) else None

    def released_at(self, *, at: datetime, window: timedelta, limit: int) -> datetime | None:
        """The first instant >= `at` with fewer than `limit` messages in the preceding
        `window`; None when `limit` is 0 (nothing may ever go)."""
        if limit <= 0:
            return None
        first = bisect_right(self.sent_at, at - window)
        counted = len(self.sent_at) - first
        if counted < limit:
            return at
        # All but the newest limit-1 counted messages must leave the window.
        return self.sent_at[first + counted - limit] + window


@dataclass(frozen=True)
class CapHold:
    """A frequency cap that holds a message, and when every cap lets it go (None: never)."""

    rule: str
    until: datetime | None


def check_caps(
    *,
    sends: RecentSends,
    at: datetime,
    states: Iterable[str],
    max_per_24h: int,
    max_per_7d: int,
) -> CapHold | None:
    """The first cap reached at `at` (state caps, then 24 h, then 7 days), or None."""
    caps = [
        (f"cap_{state}_24h", DAY, STATE_CAPS_24H[state])
        for state in sorted(states)
        if state in STATE_CAPS_24H
    ]
    caps += [("cap_24h", DAY, max_per_24h), ("cap_7d", WEEK, max_per_7d)]
    rule: str | None = None
    until: datetime | None = at
    for name, window, limit in caps:
        released = sends.released_at(at=at, window=window, limit=limit)
        if released == at:
            continue
        rule = rule or name
        # Caps only loosen as time passes, so the latest release frees them all.
        until = None if released is None or until is None else max(until, released)
    return None if rule is None else CapHold(rule=rule, until=until)
