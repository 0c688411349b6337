"""`python -m bench import --rows N`: generate a book, time `winback import` on each backend."""

from __future__ import annotations

import argparse
import sys
import time

from bench.common import OUT, print_table, run_child, scratch_database
from core.samplebook import write_book_csv


def main(argv: list[str]) -> None:
    """Generate the book once, import it into a fresh SQLite and PostgreSQL database."""
    parser = argparse.ArgumentParser(prog="python -m bench import")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--dirty-share", type=float, default=0.01)
    args = parser.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    book = OUT / f"book_{args.rows}.csv"
    if not book.exists():
        started = time.perf_counter()
        write_book_csv(book, rows=args.rows, seed=11, dirty_share=args.dirty_share)
        print(f"generated {book} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    results = []
    for backend in args.backends.split(","):
        with scratch_database(backend) as url:
            run_child([sys.executable, "-m", "bot.cli.__main__", "db", "upgrade"],
                      env={"DATABASE_URL": url})  # fmt: skip
            child = run_child(
                [sys.executable, "-m", "bot.cli.__main__", "import", str(book), "--json",
                 "--now", "2026-09-24T15:00:00Z"],
                env={"DATABASE_URL": url},
            )  # fmt: skip
        report = child["output"]
        results.append({
            "backend": backend,
            "rows": report["rows"],
            "seconds": round(child["seconds"], 1),
            "rows_per_s": round(report["rows"] / child["seconds"]),
            "peak_rss_mb": round(child["peak_rss_mb"]),
            "contacts": report["contacts_created"],
            "loans": report["loans_created"],
            "rejected": report["rejected"],
        })  # fmt: skip
    print_table(f"import {args.rows} rows (goal: >= 10,000 rows/s, peak RSS <= 300 MB)", results)
