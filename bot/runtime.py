"""The running system's parts, built once from settings: database, clock, senders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, parse_now
from core.config import Config, load_config
from core.db import make_engine, make_sessionmaker
from core.migrate import pending_revisions, upgrade
from core.settings import Settings, SettingsError, load_settings
from core.tracks.config import Track, load_tracks


@dataclass
class Runtime:
    """Settings plus the objects every command and process shares."""

    settings: Settings
    clock: Clock
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        """The database engine (created on first use)."""
        return self._engine or make_engine(self.settings.DATABASE_URL)

    @cached_property
    def config(self) -> Config:
        """Triggers, math, rates and compliance configuration (defaults + WINBACK_CONFIG)."""
        return load_config(self.settings.WINBACK_CONFIG)

    @cached_property
    def tracks(self) -> Mapping[str, Track]:
        """The tracks, with the operator's [tracks] overrides, templates checked to exist."""
        return load_tracks(self.config.tracks or None)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, on a schema that is known to be current."""
        self._ensure_schema()
        return make_sessionmaker(self.engine)

    def _ensure_schema(self) -> None:
        # The embedded SQLite default has one user, so it migrates itself; a shared
        # PostgreSQL is migrated deliberately by the operator (Procfile `release`).
        with self.engine.connect() as connection:
            behind = pending_revisions(connection)
        if not behind:
            return
        if self.engine.dialect.name == "sqlite":
            upgrade(self.settings.DATABASE_URL)
        else:
            raise SettingsError(
                "setting DATABASE_URL points at a schema that is not up to date: "
                "run `winback db upgrade`"
            )


def build_runtime(now: str | None = None) -> Runtime:
    """Read settings and build the runtime; `now` (or WINBACK_NOW) fixes the clock."""
    settings = load_settings()
    return Runtime(settings=settings, clock=parse_now(now or settings.WINBACK_NOW))
