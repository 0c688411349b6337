"""`winback db upgrade`."""

from __future__ import annotations

import typer

from bot.cli.common import app, runtime
from core.migrate import upgrade

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (Alembic)."""
    rt = runtime()
    upgrade(rt.settings.DATABASE_URL)
    typer.echo("database is up to date", err=True)
