"""Schema migrations (Alembic), run from code so no alembic.ini is needed at run time."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from core.db import normalize_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic config for `url` (or an open connection) using the bundled migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head", connection: Connection | None = None) -> None:
    """Create or migrate the schema at `url` to `revision`."""
    command.upgrade(alembic_config(url, connection), revision)


def pending_revisions(connection: Connection) -> bool:
    """True when the schema behind `connection` is older than the bundled migrations."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(str(connection.engine.url)))
    current = set(MigrationContext.configure(connection).get_current_heads())
    return current != set(script.get_heads())
