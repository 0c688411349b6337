"""`python -m bench replies [--backend sqlite|postgresql|both] [--replies 500] [--clients 20]
[--rate R]`.

Per backend: a book whose first texts went out for real, spread over 50 loan officers with a
Slack channel each; `winback web` as its own process with Slack pointed at the loopback fake
Web API; --replies signed warm replies to /twilio/sms from --clients concurrent clients (10 %
from numbers not in the book, which go to the team channel). Latency is webhook request sent →
the matching chat.postMessage received by the fake (matched by the card's metadata key).

Then again with the fake answering about half of chat.postMessage calls with a 500: the web
process's first attempts fail, and a worker (the cards job, here in the bench's own process, as
`winback worker` runs it) retries until every card is posted. Either way: 0 lost, 0 doubled.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from typing import Any

from bench.common import print_table, scratch_database
from bench.inbound import WebProcess, build_book, percentile, send_all, workload
from core.migrate import upgrade

TARGETS = {"p50": 100.0, "p99": 1000.0}  # ms
OFFICERS = 50
TEAM_CHANNEL = "C0BENCHTEAM"
SETTLE_SECONDS = 120


def spread_over_officers(url: str) -> None:
    """Give the book 50 loan officers, each with a Slack channel, loans dealt round-robin."""
    from datetime import UTC, datetime

    from sqlalchemy import select, update

    from core.book.models import Contact, Loan, LoanOfficer
    from core.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    now = datetime.now(UTC)
    with make_sessionmaker(engine)() as session, session.begin():
        officers = [
            LoanOfficer(email=f"lo{n}@bench.example", name=f"Officer {n}", nmls_id=f"{7000 + n}",
                        slack_channel_id=f"C0BENCH{n:03d}", created_at=now, updated_at=now)
            for n in range(OFFICERS)
        ]  # fmt: skip
        session.add_all(officers)
        session.flush()
        for n, contact_id in enumerate(session.scalars(select(Contact.id).order_by(Contact.id))):
            lo_id = officers[n % OFFICERS].id
            session.execute(update(Contact).where(Contact.id == contact_id).values(lo_id=lo_id))
            session.execute(update(Loan).where(Loan.contact_id == contact_id).values(lo_id=lo_id))
    engine.dispose()


def slack_env(fake_url: str) -> dict[str, str]:
    """The web process's Slack settings, pointed at the fake."""
    from tests.slack.live import APPROVALS_CHANNEL, BOT_TOKEN, MANAGER, SIGNING_SECRET

    # The real clock in both processes: retries and the SLA are measured from the present.
    return {"WINBACK_NOW": "", "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_url, "SLACK_APPROVALS_CHANNEL": APPROVALS_CHANNEL,
            "SLACK_TEAM_CHANNEL": TEAM_CHANNEL, "SLACK_MANAGER_IDS": MANAGER}  # fmt: skip


class CardsWorker:
    """The worker's cards job, every second, on its own thread (the retries of a flaky Slack)."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        import os

        from bot.runtime import Runtime
        from core.clock import parse_now
        from core.settings import load_settings

        os.environ.update({"DATABASE_URL": url, **env})
        settings = load_settings()
        self.runtime = Runtime(settings=settings, clock=parse_now(None))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from core import jobs

        options = self.runtime.posting_options("bench-worker")
        while not self.stop.wait(1.0):
            jobs.cards_job(session_factory=self.runtime.sessions, now=self.runtime.clock.now(),
                           posting=options, replies=self.runtime.config.replies)  # fmt: skip


def run(backend: str, args: argparse.Namespace, flaky: bool) -> dict[str, Any]:
    """One backend, one Slack behaviour: the table row."""
    from tests.fakes.slack_api import running_fake_slack
    from tests.web import free_port

    counts = {"status": 0, "warm": args.replies, "stop": 0, "help": 0,
              "strangers": args.replies // 10, "retries": 0}  # fmt: skip
    with scratch_database(backend) as url, running_fake_slack() as fake:
        upgrade(url)
        people = build_book(url, args.replies - counts["strangers"])
        spread_over_officers(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        hooks = workload(people, counts, base)
        env = slack_env(fake.url)
        if flaky:
            fake.flaky("chat.postMessage", 0.5)
        web = WebProcess(url, port, base, extra_env=env)
        worker = CardsWorker(url, env)  # the product runs web + worker
        try:
            web.wait_ready()
            worker.thread.start()
            results, _seconds = send_all(base, hooks, args.clients, args.rate)
            settled = wait_for_cards(url, args.replies)
        finally:
            worker.stop.set()
            worker.thread.join(10)
            web.stop()
        return row(backend, flaky, url, fake, results, settled, args.rate)


def wait_for_cards(url: str, expected: int) -> bool:
    """Until every reply is routed (its card posted), or SETTLE_SECONDS pass."""
    from sqlalchemy import func, select

    from core.db import make_engine
    from core.inbound.models import Reply

    engine = make_engine(url)
    deadline = time.monotonic() + SETTLE_SECONDS
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                routed = connection.scalar(
                    select(func.count()).select_from(Reply).where(Reply.routed_at.is_not(None))
                )
            if routed >= expected:
                return True
            time.sleep(0.2)
        return False
    finally:
        engine.dispose()


def row(backend: str, flaky: bool, url: str, fake: Any, results: list, settled: bool,
        rate: float | None = None) -> dict:  # fmt: skip
    """Match each card at the fake to its webhook; latencies, lost and doubled."""
    from sqlalchemy import select

    from core.db import make_engine
    from core.inbound.models import InboundEvent, Reply

    engine = make_engine(url)
    with engine.connect() as connection:
        token_of = dict(connection.execute(
            select(Reply.id, InboundEvent.idempotency_key)
            .join(InboundEvent, InboundEvent.id == Reply.inbound_event_id)
        ).all())  # fmt: skip
    engine.dispose()
    started = {r.hook.token: r.started for r in results}
    landed: Counter[str] = Counter()
    latencies = []
    for call in fake.calls("chat.postMessage"):
        if not call.ok:
            continue
        key = (call.body.get("metadata") or {}).get("event_payload", {}).get("key", "")
        landed[key] += 1
        if landed[key] == 1 and key.startswith("reply:"):
            token = token_of.get(int(key.split(":")[1]))
            if token in started:
                latencies.append((call.received_at.timestamp() - started[token]) * 1000)
    keys = {f"reply:{reply_id}" for reply_id in token_of}
    lost = len(keys - set(landed)) + (len(results) - len(token_of))
    doubled = sum(1 for key in keys if landed[key] > 1)
    failed = sum(1 for call in fake.calls("chat.postMessage") if not call.ok)
    return {"backend": backend, "slack": "50 % 500s" if flaky else "healthy",
            "arrival": f"{rate:g}/s" if rate else "saturating",
            "replies": len(results), "cards": sum(1 for k in keys if landed[k]),
            "p50 ms": f"{percentile(latencies, 0.5):.1f}" if latencies else "-",
            "p99 ms": f"{percentile(latencies, 0.99):.1f}" if latencies else "-",
            "max ms": f"{max(latencies):.0f}" if latencies else "-",
            "slack 500s": failed, "lost": lost, "doubled": doubled,
            "settled": "yes" if settled else f"no (after {SETTLE_SECONDS} s)"}  # fmt: skip


def main(argv: list[str]) -> None:
    """Run the replies benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench replies")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--replies", type=int, default=500)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=None,
                        help="replies/s over all clients (open loop); default: as fast as "
                        "the server answers")  # fmt: skip
    parser.add_argument("--healthy-only", action="store_true", help="skip the 50 %% 500s run")
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    rows = []
    for backend in backends:
        for flaky in (False, True) if not args.healthy_only else (False,):
            rows.append(run(backend, args, flaky))
            print(f"{backend} {'flaky' if flaky else 'healthy'} done", file=sys.stderr)
    print_table(
        f"replies: {args.replies} warm replies from {args.clients} clients → cards at the fake "
        f"Slack (targets p50 <= {TARGETS['p50']:.0f} ms, p99 <= {TARGETS['p99']:.0f} ms, "
        "0 lost, 0 doubled)",
        rows,
    )
    if any(r["lost"] or r["doubled"] for r in rows):
        sys.exit("cards lost or doubled")
