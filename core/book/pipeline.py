"""Parsing rows in chunks, in worker processes for big files, while the caller writes.

Normalizing phones and emails is most of an import's CPU time; the database writes are the
rest. Worker processes parse chunk k+1 while the importer writes chunk k, with a bounded
number of chunks in flight so memory stays flat whatever the file size.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from itertools import islice

from core.book.headers import HeaderMap
from core.book.rows import BookRow, RowRejected, attach_custom_fields, parse_row

CHUNK_ROWS = 2000
# Below this size a process pool costs more to start than it saves.
POOL_MIN_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Rejection:
    """A row that was refused: where, its original cells, why."""

    line: int
    fields: list[str]
    reason: str


@dataclass(frozen=True)
class ParseJob:
    """Everything a worker needs to parse rows of one file."""

    headers: list[str]
    header_map: HeaderMap
    today: date
    source: str


def parse_chunk(job: ParseJob, records: list[tuple[int, list[str]]]) -> list[BookRow | Rejection]:
    """Parse a chunk of (line, fields) records into clean rows and rejections, in order."""
    parsed: list[BookRow | Rejection] = []
    for line, fields in records:
        try:
            row = parse_row(fields, line=line, headers=job.headers, header_map=job.header_map,
                            today=job.today, source=job.source)  # fmt: skip
        except RowRejected as exc:
            parsed.append(Rejection(line, fields, str(exc)))
            continue
        attach_custom_fields(row, fields, job.headers, job.header_map)
        parsed.append(row)
    return parsed


def _batches(records: Iterable[tuple[int, list[str]]]) -> Iterator[list[tuple[int, list[str]]]]:
    iterator = iter(records)
    while batch := list(islice(iterator, CHUNK_ROWS)):
        yield batch


def parsed_chunks(
    records: Iterable[tuple[int, list[str]]], job: ParseJob, *, size_hint: int
) -> Iterator[list[BookRow | Rejection]]:
    """Parsed chunks in file order; in worker processes when the file is big."""
    workers = min(2, os.cpu_count() or 1)
    if size_hint < POOL_MIN_BYTES or workers < 2:
        for batch in _batches(records):
            yield parse_chunk(job, batch)
        return
    # "spawn": the parent may hold database connections and threads that fork would copy.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    pending: deque[Future[list[BookRow | Rejection]]] = deque()
    try:
        for batch in _batches(records):
            pending.append(pool.submit(parse_chunk, job, batch))
            if len(pending) >= workers * 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
