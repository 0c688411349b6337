"""The scheduler process (`winback worker`): the core jobs on a timer, state in our tables.

APScheduler 3 runs plain core functions (core/jobs.py) with ``coalesce=True,
max_instances=1``: a job that overran is never run twice at once, and missed runs collapse
into one. Nothing lives in APScheduler's job store; every job reads what it needs from the
database, so a restart loses nothing. SIGTERM (the platform stopping a dyno) ends the
dispatch pass after the message in flight and shuts down cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.runtime import Runtime, mask_logs
from core import jobs
from core.outreach.context import company_from_settings

logger = logging.getLogger("winback.worker")

# How often each job runs (seconds). Evaluate decides by itself whether there is work.
EVERY = {
    "cards": 5,  # warm replies are posted at once; this retries, escalates and reminds
    "dispatch": 30,
    "recover": 60,
    "expire": 300,
    "evaluate": 3600,
    "fetch_rates": 4 * 3600,
    "digest": 600,  # one indexed look-up: the weekly digest is made within minutes of its hour
}


def worker_id() -> str:
    """This process, as recorded on the messages it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _job(
    name: str, run: Callable[[datetime], dict[str, Any]], clock: Callable[[], datetime]
) -> Callable[[], None]:
    def job() -> None:
        summary = run(clock())
        logger.info("%s: %s", name, summary)

    job.__name__ = name
    return job


def job_functions(rt: Runtime, stop: threading.Event) -> dict[str, Callable[[datetime], Any]]:
    """The core jobs bound to this runtime, each taking the current time."""
    sessions = rt.sessions
    options = rt.dispatch_options(worker_id=worker_id(), limit=1000, stop=stop)
    posting = rt.posting_options(worker_id())
    return {
        "cards": lambda now: jobs.cards_job(
            session_factory=sessions, now=now, posting=posting, replies=rt.config.replies
        ),
        "dispatch": lambda now: jobs.dispatch_job(
            session_factory=sessions, now=now, options=options
        ),
        "recover": lambda now: jobs.recover_in_flight_job(session_factory=sessions, now=now),
        "expire": lambda now: jobs.expire_batches_job(session_factory=sessions, now=now),
        "evaluate": lambda now: jobs.evaluate_job(
            session_factory=sessions, now=now, config=rt.config, tracks=rt.tracks
        ),
        "fetch_rates": lambda now: jobs.fetch_rates_job(
            session_factory=sessions, now=now, feed=rt.rate_feed, rates=rt.config.rates
        ),
        "digest": lambda now: jobs.digest_job(session_factory=sessions, now=now, config=rt.config),
    }  # fmt: skip


def build_scheduler(
    rt: Runtime, stop: threading.Event, kind: type[BaseScheduler] = BlockingScheduler
) -> BaseScheduler:
    """The scheduler with every job registered (first runs right away); `kind` is
    BackgroundScheduler when it shares its process with the web server (`winback serve`)."""
    scheduler = kind(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    )
    started = datetime.now(UTC)
    for name, run in job_functions(rt, stop).items():
        scheduler.add_job(
            _job(name, run, rt.clock.now),
            IntervalTrigger(seconds=EVERY[name], timezone=UTC),
            id=name,
            name=name,
            next_run_time=started,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=60,
        )
    return scheduler


def ready_to_work(rt: Runtime) -> None:
    """Fail now, with one line, rather than inside the first send (a setting is missing)."""
    company_from_settings(rt.settings)
    _ = (rt.sessions, rt.sms_sender, rt.email_sender, rt.sms_rate_limiter, rt.tracks)


def start_in_background(rt: Runtime) -> Callable[[], None]:
    """The worker's jobs on a background scheduler in this process; the function that stops
    them (the dispatch pass in progress ends after its message in flight)."""
    ready_to_work(rt)
    stop = threading.Event()
    scheduler = build_scheduler(rt, stop, BackgroundScheduler)
    scheduler.start()
    logger.info("worker jobs started in this process: %s", EVERY)

    def shut_down() -> None:
        stop.set()
        scheduler.shutdown(wait=True)
        logger.info("worker jobs stopped")

    return shut_down


def run_worker(rt: Runtime) -> None:
    """Run until SIGTERM or SIGINT; the pass in progress ends after its message in flight."""
    mask_logs()
    ready_to_work(rt)
    stop = threading.Event()
    scheduler = build_scheduler(rt, stop)

    def shut_down(signum: int, _frame: object) -> None:
        logger.info("signal %d: finishing the message in flight, then stopping", signum)
        stop.set()
        scheduler.shutdown(wait=True)  # running jobs see `stop` and return promptly

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    logger.info("worker %s started: %s", worker_id(), EVERY)
    scheduler.start()
    logger.info("worker stopped")
