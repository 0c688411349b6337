"""After a big import the planner's statistics are refreshed on both backends."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.db import SQLITE_MMAP_BYTES, make_engine, make_sessionmaker, refresh_statistics, unmapped
from tests.triggers.factories import make_loan


def test_refreshing_statistics_records_them_for_the_planner(database_url: str) -> None:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session, session.begin():
        for _ in range(3):
            make_loan(session)
    refresh_statistics(engine, ("contacts", "loans"))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            analyzed = connection.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1")).scalars()
            assert {"contacts", "loans"} <= set(analyzed)
        else:
            rows = connection.execute(
                text(
                    "SELECT relname, last_vacuum IS NOT NULL, last_analyze IS NOT NULL "
                    "FROM pg_stat_user_tables WHERE schemaname = current_schema()"
                )
            ).all()
            done = {name for name, vacuumed, analyzed in rows if vacuumed and analyzed}
            assert {"contacts", "loans"} <= done
    engine.dispose()


def test_an_import_works_unmapped_and_gives_the_map_back(session: Session) -> None:
    """An import's pages would all count as resident memory through SQLite's memory map."""
    if session.get_bind().dialect.name != "sqlite":
        with unmapped(session):  # nothing to do on PostgreSQL, and nothing breaks
            assert session.execute(text("SELECT 1")).scalar() == 1
        return

    def mapped() -> int:
        return int(session.execute(text("PRAGMA mmap_size")).scalar() or 0)

    assert mapped() == SQLITE_MMAP_BYTES
    with unmapped(session):
        assert mapped() == 0
    assert mapped() == SQLITE_MMAP_BYTES
