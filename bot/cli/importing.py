"""Running an import from the CLI: progress bar, rejects file, summary, exit codes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from bot.cli.common import fail
from bot.runtime import Runtime
from core.book.importer import ImportRefused, ImportResult
from core.db import refresh_statistics
from core.flows import import_file

PROGRESS_MIN_BYTES = 512 * 1024  # roughly a few thousand rows
# After an import this big the planner's statistics are refreshed (a few seconds at 1 M rows).
STATISTICS_AFTER_ROWS = 10_000
BOOK_TABLES = ("contacts", "loans", "consent_events")


def run_import(
    rt: Runtime, path: Path, *, fmt: str, rejects: str | None, dry_run: bool, quiet: bool
) -> ImportResult:
    """Import `path` in one transaction (rolled back for --dry-run); exit 2 if refused."""
    if fmt not in ("auto", "generic", "encompass") and not Path(fmt).is_file():
        fail(f"--format must be auto, generic, encompass or a mapping file; {fmt} is none")
    size = path.stat().st_size if path.is_file() else 0
    console = Console(stderr=True)
    show_progress = not quiet and size >= PROGRESS_MIN_BYTES and console.is_terminal
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
        TimeRemainingColumn(), console=console, disable=not show_progress,
    )  # fmt: skip
    task = progress.add_task(f"importing {path.name}", total=size)
    rejects_file, rejects_tmp = _open_rejects(rejects)
    try:
        with progress, rt.sessions() as session, session.begin():
            result = import_file(
                session=session, path=path, fmt=fmt, now=rt.clock.now(), actor=_actor(),
                rejects=rejects_file, on_bytes=lambda n: progress.advance(task, n),
                window_days=rt.config.attribution.window_days,
            )  # fmt: skip
            result.dry_run = dry_run
            if dry_run:
                session.rollback()
    except ImportRefused as exc:
        _discard(rejects_file, rejects_tmp)
        fail(str(exc))
    except BaseException:
        _discard(rejects_file, rejects_tmp)
        raise
    if rejects_file is not None and rejects_tmp is not None and rejects is not None:
        rejects_file.close()
        os.replace(rejects_tmp, rejects)
    if not dry_run and _written(result) >= STATISTICS_AFTER_ROWS:
        refresh_statistics(rt.engine, BOOK_TABLES)
    if not quiet:
        _summary(console, result, rejects)
    return result


def _written(result: ImportResult) -> int:
    return (
        result.contacts_created
        + result.contacts_updated
        + result.loans_created
        + result.loans_updated
    )


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'operator')}"


def _open_rejects(rejects: str | None) -> tuple[TextIO | None, str | None]:
    if not rejects:
        return None, None
    # Written beside the target and renamed at the end, so a refused file leaves no half file.
    directory = os.path.dirname(os.path.abspath(rejects))
    handle, tmp = tempfile.mkstemp(prefix=".rejects-", suffix=".csv", dir=directory)
    return os.fdopen(handle, "w", newline="", encoding="utf-8"), tmp


def _discard(rejects_file: TextIO | None, tmp: str | None) -> None:
    if rejects_file is not None:
        rejects_file.close()
    if tmp:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _summary(console: Console, result: ImportResult, rejects: str | None) -> None:
    verb = "would import" if result.dry_run else "imported"
    people = f"{_count(result.contacts_created, 'person', 'people')} new"
    loans = f"{_count(result.loans_created, 'loan')} new"
    changed = result.contacts_updated + result.loans_updated
    parts = [
        f"{people}, {result.contacts_updated:,} changed",
        f"{loans}, {result.loans_updated:,} changed",
    ]
    if result.contacts_created + result.loans_created + changed == 0:
        parts = ["0 changed: the book already holds every row"]
    if result.los_created:
        parts.append(f"{_count(result.los_created, 'loan officer')} added")
    parts.append(f"{result.rejected:,} rejected")
    parts.append(_count(result.warnings, "warning"))
    typer.echo(f"{verb} {_count(result.rows, 'row')} ({result.format}): {'; '.join(parts)}")
    for message, count in list(result.warning_details.items())[:20]:
        console.print(f"  warning ({count}x): {message}", markup=False, highlight=False)
    if result.rejected:
        where = f"see {rejects}" if rejects else "pass --rejects OUT.csv to see why"
        console.print(f"  {result.rejected} rows rejected: {where}", markup=False)
