"""`winback db upgrade`."""

from __future__ import annotations

import typer
from sqlalchemy.engine import make_url

from bot.cli.common import app, runtime
from core.db import normalize_url
from core.migrate import upgrade

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (Alembic)."""
    rt = runtime()
    url = rt.settings.DATABASE_URL
    done = upgrade(url)
    where = make_url(normalize_url(url)).render_as_string(hide_password=True)
    if done.before is None:
        typer.echo(
            f"created the schema in {where}: {len(done.applied)} migrations applied "
            f"(now at {done.head})",
            err=True,
        )
    elif done.applied:
        typer.echo(
            f"migrated {where} from {done.before} to {done.head}: applied "
            f"{', '.join(done.applied)}",
            err=True,
        )
    else:
        typer.echo(f"{where} is up to date (schema {done.head})", err=True)
