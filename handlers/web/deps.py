"""What every web handler needs, handed in by the process that builds the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from core.clock import Clock
from core.inbound.router import ReplyRouter
from core.settings import Settings

PAGES_FOLDER = Path(__file__).resolve().parents[2] / "templates" / "web"


@dataclass
class WebDeps:
    """Settings, sessions, the clock and the reply router for the web handlers."""

    settings: Settings
    sessions: Callable[[], Session]
    clock: Clock
    router: ReplyRouter

    def now(self) -> datetime:
        """The current time (WINBACK_NOW fixes it, for tests)."""
        return self.clock.now()

    @cached_property
    def pages(self) -> Environment:
        """The Jinja2 environment for the borrower-facing pages (templates/web/, autoescaped)."""
        return Environment(
            loader=FileSystemLoader(PAGES_FOLDER),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
