"""`python -m bench evaluate --loans N`: every trigger, and `segments`, over an N-loan book.

The book is the seeded sample generator's, imported through the real importer; the market is
the bundled PMMS history plus a manual dip on the evaluation day, so rate_drop has real work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from bench.common import OUT, print_table, run_child, scratch_database
from core.book.models import FUNDED, Loan
from core.config import load_config
from core.db import make_engine, make_sessionmaker
from core.flows import evaluate, offers_on, trigger_context
from core.rates.service import load_history, record_manual_rate
from core.samplebook import write_book_csv
from core.segments import counts_of, find_segments
from core.tracks.config import load_tracks
from core.triggers.registry import TRIGGERS

NOW = datetime(2026, 9, 25, 15, 0, tzinfo=UTC)
DIP = {"30y": Decimal("5.875"), "15y": Decimal("5.125")}


def _prepare(url: str, book: Path) -> None:
    cli = [sys.executable, "-m", "bot.cli.__main__"]
    run_child([*cli, "db", "upgrade"], env={"DATABASE_URL": url})
    run_child(
        [*cli, "import", str(book), "--json", "--now", NOW.isoformat()], env={"DATABASE_URL": url}
    )
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session, session.begin():
        load_history(session=session, path=Path("core/data/pmms_weekly.csv"), now=NOW)
        for product, rate in DIP.items():
            record_manual_rate(
                session=session, rate=rate, product=product, on=NOW.date(), now=NOW, actor="bench"
            )


def _median_seconds(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    """The median wall time of `runs` calls of `work`, and the last call's answer."""
    times, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def _measure(url: str, runs: int) -> dict[str, object]:
    config = load_config()
    tracks = load_tracks()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        offers = offers_on(session=session, now=NOW, config=config)
        threshold = config.triggers.rate_drop.threshold_points
        bare, spread = _median_seconds(
            runs,
            lambda: session.scalar(
                select(func.count())
                .select_from(Loan)
                .where(Loan.status == FUNDED, Loan.note_rate >= offers["30y"].rate + threshold)
            ),
        )

        def segments() -> dict[str, int]:
            # As `winback segments` runs it: two read sessions in parallel.
            return counts_of(
                find_segments(session=session, now=NOW, config=config, readers=sessions)
            )

        segments_s, counts = _median_seconds(runs, segments)

        def find_every_trigger() -> int:
            # What `evaluate` does before it writes: every trigger, one loan per person.
            ctx = trigger_context(session=session, now=NOW, config=config)
            return sum(
                len(trigger.find(ctx, for_segment=False).best_per_contact())
                for trigger in TRIGGERS.values()
            )

        triggers_s, found = _median_seconds(runs, find_every_trigger)
    cli = run_child(
        [sys.executable, "-m", "bot.cli.__main__", "segments", "--json", "--now", NOW.isoformat()],
        env={"DATABASE_URL": url},
    )
    with sessions() as session, session.begin():
        started = time.perf_counter()
        result = evaluate(session=session, now=NOW, config=config, tracks=tracks)
        evaluate_s = time.perf_counter() - started
    with sessions() as session, session.begin():
        started = time.perf_counter()
        again = evaluate(session=session, now=NOW, config=config, tracks=tracks)
        steady_s = time.perf_counter() - started
    engine.dispose()
    assert isinstance(counts, dict)
    return {
        "triggers_s": round(triggers_s, 2),
        "people_found": found,
        "bare_count_s": round(bare, 3),
        "distance": f"{triggers_s / bare:.0f}x" if bare else "n/a",
        "rate_spread_loans": spread,
        "segments_s": round(segments_s, 2),
        "segments_cli_s": round(cli["seconds"], 2),
        "refinance": counts["refinance"],
        "evaluate_s": round(evaluate_s, 2),
        "batches": len(result.batches),
        "batched_people": sum(batch.size for batch in result.batches),
        "again_s": round(steady_s, 2),
        "again_batches": len(again.batches),
    }


def main(argv: list[str]) -> None:
    """Build the book once per backend, then time evaluate and segments."""
    parser = argparse.ArgumentParser(prog="python -m bench evaluate")
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=3, help="timed runs; the median is shown")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    book = OUT / f"book_{args.loans}.csv"
    if not book.exists():
        write_book_csv(book, rows=args.loans, seed=11, dirty_share=0.01)
    rows = []
    for backend in args.backends.split(","):
        with scratch_database(backend) as url:
            started = time.perf_counter()
            _prepare(url, book)
            print(
                f"{backend}: book ready in {time.perf_counter() - started:.0f} s", file=sys.stderr
            )
            rows.append({"backend": backend, **_measure(url, args.runs)})
            print(rows[-1], file=sys.stderr, flush=True)
    print_table(
        f"every trigger over {args.loans} loans (goal: triggers <= 5 s, segments <= 2 s; "
        f"median of {args.runs}); segments_cli = `winback segments` as a new process; "
        "evaluate = triggers + batches + enrolling auto-approved ones; again = a second run",
        rows,
    )
