"""What every benchmark needs: scratch databases, child processes with peak memory, a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get(
    "WINBACK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
OUT = Path(os.environ.get("WINBACK_BENCH_OUT", "bench/out"))


@contextmanager
def scratch_database(backend: str) -> Iterator[str]:
    """A new empty database URL (SQLite file or PostgreSQL schema), removed afterwards."""
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        path = OUT / f"{name}.db"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {name}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


def run_child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command; its wall time, peak RSS (MB) and parsed JSON stdout (if any)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"benchmark child failed ({process.returncode}): {' '.join(args)}")
    payload = json.loads(output.strip().splitlines()[-1]) if output.strip() else {}
    return {"seconds": elapsed, "peak_rss_mb": usage.ru_maxrss / 1024, "output": payload}


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """A small aligned table on stdout, plus the raw JSON line for scripts."""
    print(f"\n{title}")
    if rows:
        keys = list(rows[0])
        widths = {key: max(len(key), *(len(str(row[key])) for row in rows)) for key in keys}
        print("  ".join(key.ljust(widths[key]) for key in keys))
        for row in rows:
            print("  ".join(str(row[key]).ljust(widths[key]) for key in keys))
    print(json.dumps({"benchmark": title, "rows": rows}))
