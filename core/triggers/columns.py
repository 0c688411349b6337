"""Hand the survivors of a trigger's SQL to numpy as plain integers, the same on both backends.

Dates become day numbers (days since 1970-01-01), rates whole thousandths of a basis point
(6.875 % is 687,500) and money whole cents, so numpy compares them exactly and nothing is
parsed into `Decimal` or `date` objects row by row.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import BigInteger, ColumnElement, Connection, cast, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Integer

Ints = NDArray[np.int64]
RATE_UNITS = 100_000  # a rate column's scale: Numeric(8, 5)
EPOCH = date(1970, 1, 1)


class day_number(FunctionElement[int]):
    """Days since 1970-01-01 of a DATE column (NULL stays NULL)."""

    type = Integer()
    inherit_cache = True


@compiles(day_number, "sqlite")
def _day_number_sqlite(element: day_number, compiler: Any, **kw: Any) -> str:
    # julianday('1970-01-01') is 2440587.5; dates are stored as ISO text.
    return f"CAST(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 AS INTEGER)"


@compiles(day_number)
def _day_number_default(element: day_number, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} - DATE '1970-01-01')"


class unindexed(FunctionElement[Any]):
    """The column, with SQLite told not to seek an index on it (`+column`).

    SQLite's planner has no histograms: it believes `status = 'funded'` picks a sixth of the
    loans when it picks most of them, and seeks an index, then looks up each row in the
    table, ~15× slower than reading the table through. A trigger whose filters keep a large
    share of the book wraps them in this; PostgreSQL plans from real statistics and gets the
    column unchanged.
    """

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


class month_day(FunctionElement[int]):
    """month * 100 + day of a DATE column (Feb 29 is 229), an integer on both backends."""

    type = Integer()
    inherit_cache = True


@compiles(month_day, "sqlite")
def _month_day_sqlite(element: month_day, compiler: Any, **kw: Any) -> str:
    # ISO text 'YYYY-MM-DD': cutting it is ~5x cheaper than strftime on a million rows.
    column = compiler.process(element.clauses, **kw)
    return (
        f"(CAST(substr({column}, 6, 2) AS INTEGER) * 100 + CAST(substr({column}, 9, 2) AS INTEGER))"
    )


@compiles(month_day)
def _month_day_default(element: month_day, compiler: Any, **kw: Any) -> str:
    # date_part is ~2x cheaper than to_char on PostgreSQL.
    column = compiler.process(element.clauses, **kw)
    return f"CAST(date_part('month', {column}) * 100 + date_part('day', {column}) AS INTEGER)"


def rate_units(column: Any) -> ColumnElement[int]:
    """A rate column as whole thousandths of a basis point."""
    return cast(func.round(column * RATE_UNITS), BigInteger)


def day_of(day: date) -> int:
    """A date as a day number."""
    return (day - EPOCH).days


def date_of(day: int) -> date:
    """A day number as a date."""
    return date.fromordinal(EPOCH.toordinal() + int(day))


def fetch_columns(session: Session, query: Any, names: Sequence[str]) -> dict[str, Ints]:
    """Run `query` (every selected value an integer, never NULL) into one array per column."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return dict(zip(names, _packed_columns(connection, query, len(names)), strict=True))
    # Plain tuples from the driver's cursor: a SQLAlchemy Row for each of a million rows cost
    # more than the query. Every value is an integer, so nothing needs converting. In chunks,
    # so the tuples of a whole trigger never sit in memory at once.
    cursor = connection.execute(query).cursor
    chunks = [np.zeros(0, dtype=np.int64)]
    while rows := cursor.fetchmany(_CHUNK_ROWS):
        chunks.append(
            np.fromiter(
                itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows) * len(names)
            )
        )
    table = np.concatenate(chunks).reshape(-1, len(names))
    return {name: table[:, index] for index, name in enumerate(names)}


_CHUNK_ROWS = 20_000


def _packed_columns(connection: Connection, query: Any, width: int) -> list[Ints]:
    """SQLite: each column's values as one text value built by SQLite, parsed by numpy.

    sqlite3 lets go of the GIL while SQLite works, but a row at a time: two threads fetching
    rows hand the GIL to each other for every row, and ran slower together than one after the
    other. One aggregated row is one step, so the whole query runs without the GIL (two
    trigger queries truly run at once) and no Python object is built per row. One
    `group_concat` per column, not one of the concatenated row: that one allocated strings
    for every row and two threads queued on SQLite's allocator. Every aggregate of one query
    sees the rows in the same order, so the columns stay aligned.
    """
    rows = query.subquery()
    packed = connection.execute(select(*(func.group_concat(cell, " ") for cell in rows.c))).one()
    columns = [np.fromstring(text or "", dtype=np.int64, sep=" ") for text in packed]
    if len({len(column) for column in columns}) > 1:
        raise ValueError(f"a trigger query returned a NULL or non-integer value ({width} columns)")
    return columns
