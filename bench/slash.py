"""`python -m bench slash --backend sqlite|postgresql --contacts N`: `/winback` over a big book.

The book is `bench stats`'s (N people with a funded loan each, a fifth of them with outreach),
the market the bundled PMMS history with a dip on the day, so `segments` has real work. A live
`winback web` with Slack pointed at the fake Slack on 127.0.0.1 gets signed slash commands:

- **ack**: request sent → HTTP answer (Slack gives up after 3 s), every command, while the
  slow answers of the others are being computed in the same process;
- **answer**: request sent → the ephemeral answer posted to the command's response_url,
  for commands typed one at a time (a person asking) and then `--clients` at once (a team
  meeting where everyone asks at once).

Goals (issue 10): ack p99 <= 300 ms, answer <= 3 s at 1,000,000 loans.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import print_table, scratch_database
from bench.inbound import WebProcess
from bench.replies import slack_env
from bench.stats import NOW, build
from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade
from core.rates.service import load_history, record_manual_rate

COMMANDS = ("stats", "stats 30d by segment", "stats all by lo", "segments",
            "segment refinance")  # fmt: skip
DIP = {"30y": "5.875", "15y": "5.125"}


def _market(url: str) -> None:
    """The PMMS history and a dip on the day, as `bench evaluate` has."""
    from decimal import Decimal

    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session, session.begin():
        load_history(session=session, path=Path("core/data/pmms_weekly.csv"), now=NOW)
        for product, rate in DIP.items():
            record_manual_rate(session=session, rate=Decimal(rate), product=product,
                               on=NOW.date(), now=NOW, actor="bench")  # fmt: skip
    sessions.kw["bind"].dispose()


class Asker:
    """Types slash commands into the live web process and times ack and answer."""

    def __init__(self, base: str, fake: Any) -> None:
        self.base, self.fake = base, fake
        self.acks: list[float] = []
        self.pending: dict[str, tuple[float, str]] = {}  # response name -> (sent at, command)
        self._lock = threading.Lock()

    def ask(self, client: httpx.Client, text: str) -> None:
        """One `/winback <text>` from the manager; its ack time is noted."""
        from tests.slack.live import MANAGER, SIGNING_SECRET
        from tests.slack.signing import signed_headers, slash_command_body

        name = uuid.uuid4().hex
        body = slash_command_body(text=text, user_id=MANAGER,
                                  response_url=self.fake.response_url(name))  # fmt: skip
        headers = signed_headers(SIGNING_SECRET, body)
        sent = time.time()
        answer = client.post(self.base + "/slack/events", content=body, headers=headers)
        acked = time.time() - sent
        if answer.status_code != 200:
            sys.exit(f"/winback {text}: HTTP {answer.status_code}")
        with self._lock:
            self.acks.append(acked)
            self.pending[name] = (sent, text)

    def answers(self, timeout: float) -> dict[str, list[float]]:
        """Seconds from each command to its answer, by command (waits up to `timeout`)."""
        deadline = time.monotonic() + timeout
        found: dict[str, float] = {}
        while time.monotonic() < deadline and len(found) < len(self.pending):
            for call in self.fake.calls("response_url"):
                name = call.path.rsplit("/", 1)[-1]
                if name in self.pending and name not in found:
                    found[name] = call.received_at.timestamp() - self.pending[name][0]
            time.sleep(0.05)
        if len(found) < len(self.pending):
            sys.exit(f"{len(self.pending) - len(found)} answers never came within {timeout} s")
        by_command: dict[str, list[float]] = {}
        for name, seconds in found.items():
            by_command.setdefault(self.pending[name][1], []).append(seconds)
        self.pending.clear()
        return by_command


def _round(asker: Asker, clients: int, repeat: int) -> dict[str, list[float]]:
    """Every command `repeat` times, `clients` at a time; the answers' times."""
    queue = [text for _ in range(repeat) for text in COMMANDS]
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    text = queue.pop(0)
                asker.ask(client, text)

    if clients == 1:  # a person waits for the answer before asking again
        collected: dict[str, list[float]] = {}
        with httpx.Client(timeout=30) as client:
            for text in queue:
                asker.ask(client, text)
                for command, seconds in asker.answers(60).items():
                    collected.setdefault(command, []).extend(seconds)
        return collected
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return asker.answers(120)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(backend: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Build the book, start the web process, ask alone and then all at once."""
    from tests.fakes.slack_api import running_fake_slack
    from tests.web import free_port

    rows = []
    with scratch_database(backend) as url, running_fake_slack() as fake:
        upgrade(url)
        started = time.perf_counter()
        build(url, args.contacts)
        _market(url)
        print(f"{backend}: book ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**slack_env(fake.url), "WINBACK_NOW": (NOW + timedelta(hours=1)).isoformat()}
        web = WebProcess(url, port, base, extra_env=env)
        try:
            web.wait_ready()
            asker = Asker(base, fake)
            with httpx.Client(timeout=30) as client:  # warm the process (imports, pools)
                asker.ask(client, "help")  # answered in the ack: nothing comes to response_url
            asker.pending.clear()
            for clients in (1, args.clients):
                asker.acks.clear()
                answers = _round(asker, clients, args.repeat)
                every = [s for seconds in answers.values() for s in seconds]
                rows.append({
                    "backend": backend, "contacts": args.contacts, "at_once": clients,
                    "commands": len(asker.acks),
                    "ack_p50_ms": round(_p(asker.acks, 0.5) * 1000, 1),
                    "ack_p99_ms": round(_p(asker.acks, 0.99) * 1000, 1),
                    "answer_p50_s": round(statistics.median(every), 2),
                    "answer_max_s": round(max(every), 2),
                    **{f"{c}_s": round(statistics.median(answers[c]), 2) for c in COMMANDS},
                })  # fmt: skip
                print(rows[-1], file=sys.stderr, flush=True)
        finally:
            web.stop()
    return rows


def main(argv: list[str]) -> None:
    """Run on one backend or both; print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench slash")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4, help="commands typed at once")
    parser.add_argument("--repeat", type=int, default=3, help="times each command is asked")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    rows = [row for backend in backends for row in run(backend, args)]
    print_table(
        f"/winback over {args.contacts:,} people (goal: ack p99 <= 300 ms, answer <= 3 s)", rows
    )
