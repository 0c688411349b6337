"""The demo's narrator, its clock and its numbers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Say = Callable[[str], None]
QUOTE = "     | "  # a real message or card, shown as the person reading it sees it


@dataclass
class DemoResult:
    """The demo's numbers (SPEC §4 `winback demo --json`)."""

    book: int = 0
    eligible: int = 0
    batch_size: int = 0
    sent: int = 0
    held: int = 0
    replies: int = 0
    cards: int = 0
    claimed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The contract's keys, then the story's details."""
        return {
            "book": self.book,
            "eligible": self.eligible,
            "batch_size": self.batch_size,
            "sent": self.sent,
            "held": self.held,
            "replies": self.replies,
            "cards": self.cards,
            "claimed": self.claimed,
            **self.extra,
        }


@dataclass
class Story:
    """Numbered steps, with notes and quoted messages under them (nothing in --json mode)."""

    say: Say
    steps: int = 0

    def step(self, text: str) -> None:
        """The next numbered line of the story."""
        self.steps += 1
        self.say(f"{self.steps}. {text}")

    def note(self, text: str) -> None:
        """A line under the current step."""
        self.say(f"   {text}")

    def quote(self, text: str) -> None:
        """A message or card exactly as its reader sees it, set off by a bar."""
        for line in text.splitlines():
            self.say(f"{QUOTE}{line}".rstrip())


class StoryClock:
    """The demo's clock: the story moves it forward, and the in-process web app reads it."""

    def __init__(self, at: datetime) -> None:
        self._at = at
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The story's current time."""
        with self._lock:
            return self._at

    def move_to(self, at: datetime) -> datetime:
        """Move forward to `at` (never back: cards and replies are stamped with this clock)."""
        with self._lock:
            self._at = max(self._at, at)
            return self._at
