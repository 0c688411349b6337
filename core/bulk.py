"""Fast bulk inserts for big imports: COPY on PostgreSQL, one executemany on SQLite.

SQLAlchemy's executemany builds and type-processes every row through its compiler, which
was most of a million-row import's database time. Here the column types' own bind
processors are applied directly, so values are converted exactly as SQLAlchemy would.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def _remember_last(processor: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """The processor, skipping the work when a column repeats the same object (created_at)."""
    if processor is None:
        return None
    last_in: Any = object()
    last_out: Any = None

    def process(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is not last_in:
            last_in, last_out = value, processor(value)
        return last_out

    return process


def any_of(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)` as one parameter, so a 2,000-value list needs no 2,000 binds."""
    listed = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, listed, type_=postgresql.ARRAY(column.type)))
    each = func.json_each(bindparam(None, json.dumps(listed))).table_valued("value")
    return column.in_(select(each.c.value))


def allocate_ids(session: Session, table: Table, count: int) -> list[int]:
    """Primary keys for `count` new rows, taken up front (a bulk INSERT … RETURNING is slow).

    PostgreSQL draws them from the table's sequence. SQLite continues after the highest id:
    safe because a writer holds SQLite's write lock for the whole transaction.
    """
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        sequence = text(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
            "FROM generate_series(1, :count)"
        )
        return list(session.scalars(sequence, {"count": count}))
    highest = session.scalar(select(func.max(table.c.id))) or 0
    return list(range(highest + 1, highest + 1 + count))


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` inside the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = [column for column in table.columns if column.name in rows[0]]
    names = [column.name for column in columns]
    fetch = operator.itemgetter(*names)
    # Only columns whose type converts values (dates, times, JSON, …) pay for a call.
    converted = [
        (index, processor)
        for index, column in enumerate(columns)
        if (processor := _remember_last(column.type._cached_bind_processor(dialect)))
    ]

    def values(row: dict[str, Any]) -> list[Any]:
        cells = list(fetch(row)) if len(names) > 1 else [fetch(row)]
        for index, processor in converted:
            if cells[index] is not None:
                cells[index] = processor(cells[index])
        return cells

    column_list = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    table_name = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table_name} ({column_list}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(values(row))
        return
    placeholders = ", ".join("?" for _ in names)
    connection.exec_driver_sql(
        f"INSERT INTO {table_name} ({column_list}) VALUES ({placeholders})",
        [tuple(values(row)) for row in rows],
    )


def insert_for(session: Session) -> Callable[..., Any]:
    """The INSERT construct of this session's database, which has ON CONFLICT DO NOTHING (the
    guard every "at most once" row relies on): PostgreSQL's or SQLite's."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
