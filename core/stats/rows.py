"""The funnel's rows and the period parser (the counting itself is in core.stats.queries)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

BY = ("segment", "trigger", "lo", "variant")
COLUMNS = (
    "enrolled", "sent", "delivered", "failed", "suppressed", "opened", "clicked", "replied",
    "claimed", "funded", "opted_out",
)  # fmt: skip
EXTRA_COUNTS = (
    "reached", "reached_settled", "unknown", "machine_opened", "machine_clicked", "visited",
    "replied_claimed",
)  # fmt: skip
PERIODS = {"7d": 7, "30d": 30, "90d": 90}
ACCEPTED = "7d, 30d, 90d, all or a date (YYYY-MM-DD)"
UNASSIGNED = "unassigned"
# The variant group of an enrollment that ran no experiment: "refinance (no variant)".
NO_VARIANT = "(no variant)"
CHANNELS = ("sms", "email")


def parse_since(text: str, now: datetime) -> datetime | None:
    """The period's start for 7d/30d/90d/all or an ISO date; ValueError with one line if not."""
    word = text.strip().lower()
    if word == "all":
        return None
    if word in PERIODS:
        return now - timedelta(days=PERIODS[word])
    try:
        start = _moment(text.strip())
    except (ValueError, OverflowError):
        raise ValueError(f"since must be {ACCEPTED}, not {_shown(text)}") from None
    if start > now:
        raise ValueError(
            f"since {start.date().isoformat()} is after now ({now.date().isoformat()})"
        )
    return start


def _moment(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time(), UTC)
    except ValueError:
        moment = datetime.fromisoformat(text)
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)


def _shown(text: str) -> str:
    # repr() keeps a pasted newline or control character from breaking the one error line.
    return repr(text[:40]) + ("…" if len(text) > 40 else "")


@dataclass
class FunnelRow:
    """One group's counts (or the totals)."""

    group: str
    name: str | None = None  # the loan officer's name, when grouped by lo
    counts: Counter[str] = field(default_factory=Counter)
    suppressed_by_rule: Counter[str] = field(default_factory=Counter)
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    claim_minutes: list[float] = field(default_factory=list)

    @property
    def median_minutes_to_claim(self) -> float | None:
        """Median minutes from a warm reply to its claim, over the claims in the period."""
        if not self.claim_minutes:
            return None
        return round(statistics.median(self.claim_minutes), 1)

    @property
    def funded_volume(self) -> float:
        """The credited loans' amounts, in dollars."""
        return self.counts["funded_volume_cents"] / 100

    def rates(self) -> dict[str, float | None]:
        """The funnel's ratios (see the module docstring), None when nothing to divide by."""
        c = self.counts
        return {
            "open": _ratio(c["opened"], self.sent_by_channel["email"]),
            "click": _ratio(c["clicked"], c["sent"]),
            "reply": _ratio(c["replied"], c["reached"]),
            "claim": _ratio(c["replied_claimed"], c["replied"]),
            "funded": _ratio(c["funded"], c["reached_settled"]),
            "opt_out": _ratio(c["opted_out"], c["reached"]),
        }

    def as_json(self) -> dict[str, Any]:
        """The SPEC's keys first, then the extras."""
        payload: dict[str, Any] = {"group": self.group}
        payload |= {column: self.counts[column] for column in COLUMNS}
        payload["funded_volume"] = self.funded_volume
        payload |= {column: self.counts[column] for column in EXTRA_COUNTS}
        if self.name is not None:
            payload["name"] = self.name
        return payload | {
            "suppressed_by_rule": dict(sorted(self.suppressed_by_rule.items())),
            "sent_by_channel": {channel: self.sent_by_channel[channel] for channel in CHANNELS},
            "median_minutes_to_claim": self.median_minutes_to_claim,
            "rates": self.rates(),
        }

    def add(self, other: FunnelRow) -> None:
        """Fold another row into this one (the totals)."""
        self.counts.update(other.counts)
        self.suppressed_by_rule.update(other.suppressed_by_rule)
        self.sent_by_channel.update(other.sent_by_channel)
        self.claim_minutes.extend(other.claim_minutes)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Funnel:
    """The funnel over one period, one row per group, and the totals."""

    since: datetime | None
    until: datetime
    by: str
    rows: list[FunnelRow]
    totals: FunnelRow
    period: str | None = None  # what the user asked for (30d, all, 2026-09-01), if known
    lift: list[Any] = field(default_factory=list)  # core.stats.lift.Lift per trigger

    def as_json(self) -> dict[str, Any]:
        """SPEC §4's object: since, by, rows, totals (plus from/until)."""
        return {
            "since": self.period or (self.since.isoformat() if self.since else "all"),
            "by": self.by,
            "rows": [row.as_json() for row in self.rows],
            "totals": self.totals.as_json(),
            "from": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "lift": [each.as_json() for each in self.lift],
        }
