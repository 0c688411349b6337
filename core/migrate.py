"""Schema migrations (Alembic), run from code so no alembic.ini is needed at run time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from core.db import make_engine, normalize_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic config for `url` (or an open connection) using the bundled migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


# Alembic narrates every run at INFO ("Context impl SQLiteImpl.", "Will assume non-transactional
# DDL."): noise in an operator's terminal. Warnings and errors still come through.
logging.getLogger("alembic").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade` did: the revision before (None: a new database) and the revisions applied."""

    before: str | None
    applied: tuple[str, ...]
    head: str


def upgrade(url: str, revision: str = "head", connection: Connection | None = None) -> Upgrade:
    """Create or migrate the schema at `url` to `revision`; what was applied."""
    config = alembic_config(url, connection)
    before = _current(url, connection)
    command.upgrade(config, revision)
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head() or ""
    applied = [
        step.revision
        for step in script.walk_revisions(base="base", head=head)
        if before is None or step.revision not in _ancestry(script, before)
    ]
    return Upgrade(before=before, applied=tuple(reversed(applied)), head=head)


def _ancestry(script: ScriptDirectory, revision: str) -> set[str]:
    return {step.revision for step in script.walk_revisions(base="base", head=revision)}


def _current(url: str, connection: Connection | None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    if connection is not None:
        return MigrationContext.configure(connection).get_current_revision()
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as probe:
            return MigrationContext.configure(probe).get_current_revision()
    finally:
        engine.dispose()


def pending_revisions(connection: Connection) -> bool:
    """True when the schema behind `connection` is older than the bundled migrations."""
    from alembic.runtime.migration import MigrationContext

    script = ScriptDirectory.from_config(alembic_config(str(connection.engine.url)))
    current = set(MigrationContext.configure(connection).get_current_heads())
    return current != set(script.get_heads())
