"""`python -m bench inbound [--backend sqlite|postgresql|both] [--requests 2000] [--clients 20]`.

Per backend: a fresh database with a book whose first texts went out for real (the dispatcher
through the real Twilio client to the fake Twilio), then `winback web` as its own process on
127.0.0.1, and --requests signed Twilio webhooks from --clients concurrent clients: warm
replies (from the book and from strangers), STOPs, HELPs and status callbacks (sent, then
delivered) for the messages really sent, each with its own I-Twilio-Idempotency-Token, plus
~5 % retries of an earlier webhook (same token, same form, same signature).

Latency is request sent → response received. The routes commit the ledger row and its effect
before they answer, so this bounds "request → committed row" from above. Afterwards the
database is checked: every unique webhook has exactly one ledger row and its effect (a reply,
an opt-out, a delivery event), and no retry made a second row, reply or opt-out.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from bench.common import OUT, print_table, scratch_database
from bench.inbound_check import verify
from core.migrate import upgrade

NOW = datetime.fromisoformat("2026-09-24T18:00:00+00:00")
SHARES = {"status": 0.40, "warm": 0.35, "stop": 0.15, "help": 0.10}  # of the unique webhooks
RETRY_SHARE = 0.05
STRANGER_SHARE = 0.10  # of warm replies: numbers not in the book
WARM = ("Yes call me", "what rate?", "Not now, maybe next year", "who is this?",
        "Sounds good 👍", "Can you call after 5pm", "How much would I save", "ok")  # fmt: skip
STOPS = ("STOP", "stop", "Stop texting me", "UNSUBSCRIBE", "remove me")
HELPS = ("HELP", "help", "INFO")
TARGETS = {"p50": 20.0, "p99": 200.0}  # ms


@dataclass(frozen=True)
class Webhook:
    """One signed webhook as Twilio would deliver it."""

    kind: str  # warm, stop, help, status
    path: str
    form: dict[str, str]
    token: str  # I-Twilio-Idempotency-Token
    signature: str
    retry: bool = False


@dataclass(frozen=True)
class Person:
    """Someone in the bench's book whose first text was really sent."""

    contact_id: int
    phone: str
    provider_id: str


def _secrets() -> dict[str, str]:
    from tests.web import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, INBOUND_SECRET, SECRET_KEY

    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": FROM_NUMBER, "EMAIL_INBOUND_SECRET": INBOUND_SECRET,
            "WINBACK_SECRET_KEY": SECRET_KEY}  # fmt: skip


def build_book(url: str, people: int) -> list[Person]:
    """`people` Californians with a text due, dispatched for real; who got what."""
    from sqlalchemy import select

    from bench.dispatch import SMS_ONLY
    from core.channels.email import SandboxEmailSender
    from core.db import make_engine, make_sessionmaker
    from core.outreach.dispatcher import dispatch
    from core.outreach.models import Message
    from core.tracks.config import load_tracks
    from tests.fakes.twilio_api import FakeTwilio
    from tests.outreach import dispatch_options, live_settings, seed_due_texts, twilio_sender

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    seed_due_texts(sessions, people, now=NOW)
    twilio = FakeTwilio().start()
    try:
        options = dispatch_options(
            live_settings(url, twilio), twilio_sender(twilio), SandboxEmailSender(),
            tracks=load_tracks(SMS_ONLY), limit=10_000_000,
        )  # fmt: skip
        report = dispatch(session_factory=sessions, now=NOW, options=options)
    finally:
        twilio.stop()
    if report.sent != people:
        sys.exit(f"the bench's book: {report.sent} of {people} texts sent ({report.as_json()})")
    from core.book.models import Contact

    with sessions() as session:
        rows = session.execute(
            select(Message.contact_id, Contact.phone, Message.provider_id)
            .join(Contact, Contact.id == Message.contact_id)
            .order_by(Message.id)
        ).all()
    engine.dispose()
    return [Person(contact_id, phone, provider_id) for contact_id, phone, provider_id in rows]


def plan(requests: int) -> dict[str, int]:
    """How many webhooks of each kind, retries, and people the book needs."""
    retries = round(requests * RETRY_SHARE)
    unique = requests - retries
    counts = {kind: int(unique * share) for kind, share in SHARES.items()}
    counts["status"] -= counts["status"] % 2  # each message gets 'sent' then 'delivered'
    counts["warm"] += unique - sum(counts.values())
    strangers = int(counts["warm"] * STRANGER_SHARE)
    people = counts["status"] // 2 + counts["warm"] - strangers + counts["stop"] + counts["help"]
    return {**counts, "strangers": strangers, "retries": retries, "people": people}


def workload(
    people: list[Person], counts: dict[str, int], base_url: str, seed: int = 7
) -> list[Webhook]:
    """The webhooks in sending order: shuffled, each retry well after its original."""
    rng = random.Random(seed)
    secrets = _secrets()
    sign = RequestValidator(secrets["TWILIO_AUTH_TOKEN"]).compute_signature
    who = iter(people)
    hooks: list[Webhook] = []

    def add(kind: str, path: str, form: dict[str, str]) -> None:
        form = {"AccountSid": secrets["TWILIO_ACCOUNT_SID"], "ApiVersion": "2010-04-01", **form}
        signature = sign(base_url + path, form)
        hooks.append(Webhook(kind, path, form, str(uuid.UUID(int=rng.getrandbits(128))), signature))

    for _ in range(counts["status"] // 2):
        person = next(who)
        for status in ("sent", "delivered"):
            add("status", "/twilio/status", {"MessageSid": person.provider_id,
                "MessageStatus": status, "SmsStatus": status,
                "From": secrets["TWILIO_FROM_NUMBER"], "To": person.phone})  # fmt: skip
    senders = [next(who).phone for _ in range(counts["warm"] - counts["strangers"])]
    senders += [f"+1312{n:07d}" for n in range(counts["strangers"])]  # not in the book
    stops = [next(who).phone for _ in range(counts["stop"])]
    helps = [next(who).phone for _ in range(counts["help"])]
    for kind, phones, texts in (("warm", senders, WARM), ("stop", stops, STOPS),
                                ("help", helps, HELPS)):  # fmt: skip
        for phone in phones:
            add(kind, "/twilio/sms", _sms_form(rng, phone, rng.choice(texts), secrets))
    rng.shuffle(hooks)
    return _with_retries(hooks, counts["retries"], rng)


def _sms_form(rng: random.Random, phone: str, body: str, secrets: dict[str, str]) -> dict[str, str]:
    sid = f"SM{rng.getrandbits(128):032x}"
    return {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "From": phone,
            "To": secrets["TWILIO_FROM_NUMBER"], "Body": body, "NumSegments": "1",
            "NumMedia": "0", "SmsStatus": "received"}  # fmt: skip


def _with_retries(hooks: list[Webhook], retries: int, rng: random.Random) -> list[Webhook]:
    # At least 5 clients' worth of requests after the original: it has normally been answered,
    # as when Twilio retries after a timeout. A few may still race it, which the ledger handles.
    gap = 100
    for original in rng.sample(range(len(hooks) - gap), retries):
        again = replace(hooks[original], retry=True)
        hooks.insert(rng.randint(original + gap, len(hooks)), again)
    return hooks


@dataclass
class Sent:
    """What one request got back."""

    hook: Webhook
    status: int
    ms: float
    body: str
    started: float = 0.0  # time.time() when it was due (for matching later effects)


def send_all(
    base: str, hooks: list[Webhook], clients: int, rate: float | None
) -> tuple[list[Sent], float]:
    """Every webhook, in order, from `clients` threads with a keep-alive connection each.

    Without `rate` each client sends its next webhook as soon as the last one is answered (the
    server's saturation). With `rate` (webhooks/s over all clients) webhook i is due at i/rate
    and its latency counts from then, so a server falling behind is charged for the wait too.
    """
    results: list[Sent] = []
    lock = threading.Lock()
    queue = iter(enumerate(hooks))
    origin = time.perf_counter() + 0.2

    def client() -> None:
        with httpx.Client(base_url=base, timeout=30.0) as http:
            while True:
                with lock:
                    i, hook = next(queue, (0, None))
                if hook is None:
                    return
                started = time.perf_counter()
                if rate:
                    started = origin + i / rate
                    time.sleep(max(0.0, started - time.perf_counter()))
                results.append(_post(http, hook, started))  # list.append is atomic

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - began


def _post(http: httpx.Client, hook: Webhook, started: float) -> Sent:
    headers = {"X-Twilio-Signature": hook.signature, "I-Twilio-Idempotency-Token": hook.token}
    try:
        response = http.post(hook.path, data=hook.form, headers=headers)
        status, body = response.status_code, response.text
    except httpx.TransportError as exc:
        status, body = 0, repr(exc)
    elapsed = time.perf_counter() - started
    return Sent(hook, status, elapsed * 1000, body, time.time() - elapsed)


class WebProcess:
    """`winback web` as a child process on 127.0.0.1 (stderr kept in bench/out)."""

    def __init__(
        self, url: str, port: int, base_url: str, extra_env: dict[str, str] | None = None
    ) -> None:
        from tests.outreach import COMPANY

        self.log = OUT / f"inbound-web-{port}.log"
        env = {**os.environ, **COMPANY, **_secrets(), "DATABASE_URL": url,
               "PUBLIC_BASE_URL": base_url, "TWILIO_API_URL": "http://127.0.0.1:9",
               "WINBACK_NOW": (NOW + timedelta(hours=1)).isoformat()}  # fmt: skip
        env.pop("SLACK_BOT_TOKEN", None)
        env.update(extra_env or {})
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "web", "--port", str(port)],
                env=env, stdout=log, stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[1],
            )  # fmt: skip
        self.base = base_url

    def wait_ready(self) -> None:
        """Until /healthz answers 200 (exits the bench if the process dies)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"winback web exited ({self.process.returncode}): see {self.log}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        sys.exit(f"winback web did not answer /healthz within 60 s: see {self.log}")

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGKILL if it lingers; only our own child."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile of `values` (q in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))]


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """One backend: book, server, webhooks, checks; the table row."""
    from tests.web import free_port

    counts = plan(args.requests)
    with scratch_database(backend) as url:
        upgrade(url)
        people = build_book(url, counts["people"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        hooks = workload(people, counts, base)
        web = WebProcess(url, port, base)
        try:
            web.wait_ready()
            load_before = os.getloadavg()[0]
            results, seconds = send_all(base, hooks, args.clients, args.rate)
            load_after = os.getloadavg()[0]
        finally:
            web.stop()
        check = verify(url, hooks, results)
    latencies = [r.ms for r in results]
    for kind in sorted({r.hook.kind for r in results}):
        mine = [r.ms for r in results if r.hook.kind == kind]
        print(f"  {backend} {kind}: p50 {percentile(mine, 0.5):.1f} ms, "
              f"p99 {percentile(mine, 0.99):.1f} ms ({len(mine)})", file=sys.stderr)  # fmt: skip
    codes = Counter(r.status for r in results)
    return {"backend": backend, "requests": len(results), "clients": args.clients,
            "offered": f"{args.rate:g}/s" if args.rate else "saturating",
            "p50 ms": f"{percentile(latencies, 0.5):.1f}",
            "p99 ms": f"{percentile(latencies, 0.99):.1f}",
            "max ms": f"{max(latencies):.0f}", "req/s": round(len(results) / seconds),
            "statuses": " ".join(f"{code}×{n}" for code, n in sorted(codes.items())),
            "lost": check["lost"], "duplicated": check["duplicated"],
            "load 1m": f"{load_before:.2f}→{load_after:.2f}"}  # fmt: skip


def main(argv: list[str]) -> None:
    """Run the inbound benchmark per backend and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench inbound")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--rate", type=float, default=None, help="webhooks/s in all (default: as fast as answered)"
    )
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    rows = []
    for backend in backends:
        rows.append(run(backend, args))
        print(f"{backend} done", file=sys.stderr)
    print_table(
        f"inbound: {args.requests} signed Twilio webhooks from {args.clients} clients "
        f"(targets p50 <= {TARGETS['p50']:.0f} ms, p99 <= {TARGETS['p99']:.0f} ms, 0 lost, "
        "0 duplicated)",
        rows,
    )
    failed = [row["backend"] for row in rows if row["lost"] or row["duplicated"]]
    if failed:
        sys.exit(f"webhooks lost or duplicated on: {', '.join(failed)}")
