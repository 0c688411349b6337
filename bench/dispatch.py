"""`python -m bench dispatch --messages N`: the outbox dispatcher against loopback providers.

Per backend: N due texts to reachable Californians (open window at --now) go through the real
dispatcher and the real Twilio client to the strict fake Twilio, which runs in a process of
its own (with TCP_NODELAY) so the dispatcher's numbers are the dispatcher's. Reported:

- SMS/s sustained, for 1 worker and for --workers worker processes (goal >= 250 SMS/s);
- the compliance decision alone (`decide`), timed per message over all N: mean and p99 in µs
  (goal <= 1 ms; every number is distinct, so the zone lookups really run);
- the SMS rate limit: a short pass with a 100/s token bucket, configured vs achieved (goal
  within 5 %);
- email/s to aiosmtpd over one reused SMTP connection (goal >= 100/s).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from bench.common import print_table, scratch_database
from core.channels.email import SandboxEmailSender, SmtpEmailSender
from core.channels.ratelimit import TokenBucket
from core.compliance.caps import RecentSends
from core.compliance.engine import Recipient, decide
from core.config import load_config
from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade
from core.outreach.dispatcher import DispatchOptions, DispatchReport, dispatch
from core.tracks.config import load_tracks

SMS_ONLY = {"refinance": {"steps": [{"delay_days": 0, "channel": "sms", "template": "intro"}]}}


def _servers(pipe: Connection) -> None:
    """Child process: the fake Twilio and aiosmtpd, until told to stop; then their counts."""
    from tests.fakes.twilio_api import FakeTwilio
    from tests.outreach import LoopbackController, Mailbox

    twilio = FakeTwilio().start()
    mailbox = Mailbox()
    smtp = LoopbackController(mailbox, hostname="127.0.0.1", port=0)
    smtp.start()
    pipe.send({"twilio_url": twilio.url, "sid": twilio.account_sid, "token": twilio.auth_token,
               "smtp_url": f"smtp://127.0.0.1:{smtp.port}"})  # fmt: skip
    pipe.recv()
    pipe.send({"texts": len(twilio.messages), "emails": len(mailbox.received),
               "errors": twilio.take_errors()})  # fmt: skip
    smtp.stop()
    twilio.stop()


class _Stamped:
    """An SMS sender that notes when each text was handed to it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.at: list[float] = []

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> Any:
        """Note the time, then send through the real sender."""
        self.at.append(time.perf_counter())
        return self.inner.send(to=to, body=body, status_callback=status_callback)


def _pass(
    url: str, now: datetime, servers: dict[str, Any], **options: Any
) -> tuple[float, DispatchReport, _Stamped]:
    """One dispatch pass in this process; (seconds, report, the stamped SMS sender)."""
    from tests.outreach import live_settings, twilio_sender_for

    sessions = make_sessionmaker(make_engine(url))
    email = options.pop("email", SandboxEmailSender())
    sms = _Stamped(twilio_sender_for(servers["twilio_url"], servers["sid"], servers["token"]))
    started = time.perf_counter()
    run = DispatchOptions(
        settings=live_settings(url), config=load_config(),
        tracks=load_tracks(options.pop("tracks", SMS_ONLY)), worker_id="bench", sms=sms,
        email=email, limit=10_000_000, **options,
    )  # fmt: skip
    report = dispatch(session_factory=sessions, now=now, options=run)
    return time.perf_counter() - started, report, sms


def _worker(url: str, now: str, servers: dict[str, Any]) -> int:
    return _pass(url, datetime.fromisoformat(now), servers)[1].sent


def _seed(url: str, count: int, now: datetime, channel: str = "sms") -> None:
    from tests.outreach import seed_due_texts

    seed_due_texts(make_sessionmaker(make_engine(url)), count, now=now, channel=channel)


def _sms_throughput(
    backend: str, workers: int, args: argparse.Namespace, servers: dict[str, Any]
) -> dict[str, Any]:
    with scratch_database(backend) as url:
        upgrade(url)
        _seed(url, args.messages, args.now)
        started = time.perf_counter()
        if workers == 1:
            sent = _pass(url, args.now, servers)[1].sent
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                sent = sum(pool.starmap(_worker, [(url, args.now.isoformat(), servers)] * workers))
        seconds = time.perf_counter() - started
    return {"measure": "SMS/s sustained", "backend": backend, "workers": workers,
            "messages": sent, "seconds": round(seconds, 1), "value": round(sent / seconds),
            "goal": ">= 250"}  # fmt: skip


def _decide_for(recipient: Recipient, at: datetime, config: Any) -> None:
    decide(recipient=recipient, channel="sms", at=at, recent_sends=RecentSends(), paused=False,
           config=config, rendered_text="Pat, see https://x/s/t - Larry, Maple, NMLS 1. "
           "Reply STOP to opt out", first_of_track=True)  # fmt: skip


def _decision_time(args: argparse.Namespace) -> dict[str, Any]:
    """`decide` alone, per message, over N distinct Californians with a text due."""
    from tests.outreach import phone_number

    config = load_config().compliance
    timings = []
    # One warm-up decision loads the ZIP and holiday tables, once per process.
    _decide_for(Recipient(-1, phone_number(999_999), None, "ok", "granted", "granted", "CA",
                          "94105"), args.now, config)  # fmt: skip
    for n in range(args.messages):
        recipient = Recipient(n, phone_number(n), f"pat{n}@example.com", "ok", "granted",
                              "granted", "CA", "94105")  # fmt: skip
        started = time.perf_counter_ns()
        _decide_for(recipient, args.now, config)
        timings.append((time.perf_counter_ns() - started) / 1000)
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    return {"measure": "decide() µs mean / p99", "backend": "-", "workers": 1,
            "messages": len(timings), "seconds": round(sum(timings) / 1e6, 2),
            "value": f"{statistics.fmean(timings):.0f} / {p99:.0f}", "goal": "<= 1000"}  # fmt: skip


def _rate_limit(args: argparse.Namespace, servers: dict[str, Any]) -> dict[str, Any]:
    configured = 100.0
    count = args.rate_messages
    with scratch_database("sqlite") as url:
        upgrade(url)
        _seed(url, count, args.now)
        bucket = TokenBucket(rate_per_second=configured, burst=1)
        seconds, report, sms = _pass(url, args.now, servers, rate_limiter=bucket)
    # Sustained rate: texts handed to Twilio between the first hand-over and the last.
    achieved = (len(sms.at) - 1) / (sms.at[-1] - sms.at[0])
    off = abs(achieved - configured) / configured * 100
    return {"measure": "rate limit achieved/s", "backend": "sqlite", "workers": 1,
            "messages": report.sent, "seconds": round(seconds, 1),
            "value": f"{achieved:.1f} of {configured:.0f} ({off:.1f} % off)",
            "goal": "within 5 %"}  # fmt: skip


def _email_throughput(
    backend: str, args: argparse.Namespace, servers: dict[str, Any]
) -> dict[str, Any]:
    with scratch_database(backend) as url:
        upgrade(url)
        _seed(url, args.emails, args.now, channel="email")
        with SmtpEmailSender(servers["smtp_url"]) as email:
            seconds, report, _ = _pass(url, args.now, servers, email=email, tracks={})
    return {"measure": "email/s (one SMTP connection)", "backend": backend, "workers": 1,
            "messages": report.sent, "seconds": round(seconds, 1),
            "value": round(report.sent / seconds), "goal": ">= 100"}  # fmt: skip


def main(argv: list[str]) -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench dispatch")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--emails", type=int, default=2_000)
    parser.add_argument("--rate-messages", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (PostgreSQL)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--now", type=datetime.fromisoformat,
                        default=datetime.fromisoformat("2026-09-24T18:00:00+00:00"))  # fmt: skip
    args = parser.parse_args(argv)

    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    server_process = spawn.Process(target=_servers, args=(theirs,), daemon=True)
    server_process.start()
    servers = ours.recv()
    rows = [_decision_time(args)]
    for backend in args.backends.split(","):
        rows.append(_sms_throughput(backend, 1, args, servers))
        if backend == "postgresql" and args.workers > 1:
            rows.append(_sms_throughput(backend, args.workers, args, servers))
        rows.append(_email_throughput(backend, args, servers))
        print(f"{backend} done", file=sys.stderr)
    rows.append(_rate_limit(args, servers))
    ours.send("stop")
    seen = ours.recv()
    server_process.join(10)
    print(f"fake Twilio received {seen['texts']} texts, aiosmtpd {seen['emails']} emails, "
          f"protocol errors: {seen['errors'] or 'none'}", file=sys.stderr)  # fmt: skip
    print_table(f"dispatch {args.messages} SMS, {args.emails} emails", rows)
