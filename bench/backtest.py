"""`python -m bench backtest [--loans N]`: `winback backtest` over 2015-2026 (612 survey weeks).

Times the command as a broker runs it (a new process: Python start, the private import, the
bundled rate history, the replay, the JSON report) on the bundled sample book, on a generated
2,000-loan book and on a generated N-loan book. The generated books go to the temporary
directory (never the repository) and are reused by later runs. Wall time is the median of
`--runs`; CPU time (user + system, the import's worker processes included) and the load
average are shown beside it, since other work on the machine stretches wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.common import print_table, run_child
from core.samplebook import demo_book_path, write_book_csv

START, END = "2015-01-01", "2026-09-24"
NOW = "2026-09-24T15:00:00Z"


def _book(loans: int, folder: Path) -> Path:
    """A generated book of `loans` rows (seed 11, as of the end of the history), made once."""
    path = folder / f"winback_backtest_book_{loans}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_book_csv(path, rows=loans, seed=11, as_of=date(2026, 9, 24))
        print(f"generated {path} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time_backtest(book: Path, runs: int, people: Path | None) -> dict[str, object]:
    """Run the command `runs` times; the median wall and CPU time, and what it reported."""
    command = [sys.executable, "-m", "bot.cli.__main__", "backtest", "--book", str(book)]
    command += ["--from", START, "--to", END, "--now", NOW, "--json"]
    if people is not None:
        command += ["--people", str(people)]
    walls, cpus, peaks, loads = [], [], [], []
    report: dict[str, object] = {}
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        before = _children_cpu()
        child = run_child(command)
        cpus.append(_children_cpu() - before)
        walls.append(child["seconds"])
        peaks.append(child["peak_rss_mb"])
        report = child["output"]
        print(f"{book.name}: {walls[-1]:.1f} s (cpu {cpus[-1]:.1f} s)", file=sys.stderr)
    totals = report["totals"]
    assert isinstance(totals, dict)
    return {
        "book": book.name,
        "rows": report["rows_imported"],
        "people_csv": "yes" if people is not None else "no",
        "median_s": round(statistics.median(walls), 2),
        "min_s": round(min(walls), 2),
        "max_s": round(max(walls), 2),
        "cpu_s": round(statistics.median(cpus), 2),
        "peak_rss_mb": round(max(peaks)),
        "weeks": len(report["weeks"]),  # type: ignore[arg-type]
        "fired": sum(totals["fired"].values()),
        "people_fired": totals["people_fired"],
        "load_1m": round(statistics.median(loads), 1),
    }


def main(argv: list[str]) -> None:
    """Time the backtest on the sample book, 2,000 loans and N loans."""
    parser = argparse.ArgumentParser(prog="python -m bench backtest")
    parser.add_argument("--loans", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is shown")
    parser.add_argument("--people", action="store_true", help="also write the people CSV")
    parser.add_argument("--books", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    books = [demo_book_path(), *(_book(n, args.books) for n in sorted({2_000, args.loans}))]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        people = Path(scratch) / "people.csv" if args.people else None
        for book in books:
            rows.append(_time_backtest(book, args.runs, people))
    print_table(
        f"winback backtest {START} -> {END} as a new process (goal: <= 5 s for 2,000 loans, "
        f"<= 60 s for 50,000; median of {args.runs}; {os.cpu_count()} cores; cpu = user + "
        "system of the command and its import workers; load_1m = load average before each run)",
        rows,
    )
