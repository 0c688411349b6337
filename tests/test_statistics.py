"""After a big import the planner's statistics are refreshed on both backends."""

from __future__ import annotations

from sqlalchemy import text

from core.db import make_engine, make_sessionmaker, refresh_statistics
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
