"""Health checks for the web process and operators."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError


def database_answers(engine: Engine) -> tuple[bool, str | None]:
    """(True, None) when the database answers a trivial query, else (False, the reason)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()
        return False, reason[0] if reason else type(exc).__name__
    return True, None
