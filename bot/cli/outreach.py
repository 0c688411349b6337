"""Outreach commands: `dispatch`, `tick`, `worker`, `optout`, `whois`, `pause`, `resume`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bot.cli.common import (
    JsonOption,
    NowOption,
    app,
    fail,
    money_text,
    print_json,
    rate_text,
    runtime,
)
from bot.runtime import mask_logs
from core.outreach.optout import OptOutError, record_opt_out, whois
from core.outreach.switches import pause, resume
from core.privacy import mask_contact_details

# The dispatcher, the jobs and the scheduler are imported by the commands that run them: the
# CLI imports every command module at start, and these cost ~0.6 s.

ByOption = Annotated[str, typer.Option("--by", help="Who does it (recorded in the audit trail).")]
LimitOption = Annotated[int, typer.Option("--limit", help="At most this many messages.", min=1)]
Target = Annotated[str, typer.Argument(metavar="PHONE|EMAIL", help="A phone number or email.")]


def _rules(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items())) or "none"


def _dispatch_line(report: dict[str, Any]) -> str:
    return (
        f"dispatch: sent {report['sent']}, failed {report['failed']}, unknown {report['unknown']}, "
        f"call tasks {report['tasks']}; held: {_rules(report['held'])}; "
        f"suppressed: {_rules(report['suppressed'])}"
    )


@app.command("dispatch")
def dispatch_command(
    now: NowOption = None, limit: LimitOption = 100_000, as_json: JsonOption = False
) -> None:
    """Send every due touch, exactly once, as the compliance rules allow."""
    from bot.worker import worker_id
    from core.outreach.dispatcher import dispatch

    mask_logs()
    rt = runtime(now)
    options = rt.dispatch_options(worker_id=worker_id(), limit=limit)
    report = dispatch(session_factory=rt.sessions, now=rt.clock.now(), options=options).as_json()
    if as_json:
        print_json(report)
    else:
        typer.echo(_dispatch_line(report))


@app.command("tick")
def tick_command(
    now: NowOption = None,
    fetch: Annotated[
        bool, typer.Option("--fetch/--no-fetch", help="Fetch today's rates first.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """One pass of everything the worker does: rates, evaluation, expiries, recovery, dispatch."""
    from bot.worker import worker_id
    from core import jobs

    mask_logs()
    rt = runtime(now)
    summary = jobs.tick(
        session_factory=rt.sessions,
        now=rt.clock.now(),
        options=rt.dispatch_options(worker_id=worker_id()),
        feed=rt.rate_feed if fetch else None,
        posting=rt.posting_options(worker_id()),
    )
    if as_json:
        print_json(summary)
        return
    for line in _tick_lines(summary):
        typer.echo(line)


def _tick_lines(summary: dict[str, Any]) -> list[str]:
    """A tick's summary as an operator reads it: one line per step, held rates called out."""
    rates = summary["rates"]
    if "skipped" in rates:
        lines = [f"rates: not fetched ({rates['skipped']})"]
    elif "error" in rates:
        lines = [f"rates: the feed failed, nothing recorded: {rates['error']}"]
    else:
        lines = [f"rates: {rates['inserted']} new observation(s), {rates['updated']} corrected"]
    for held in rates.get("held", []):
        lines.append(
            f"  held, not used until confirmed: {held['product']} {rate_text(held['rate'])} "
            f"of {held['date']} ({held['why']}): `winback rates confirm --product "
            f"{held['product']} --date {held['date']}` if it is right"
        )
    evaluation = summary["evaluation"]
    if "skipped" in evaluation:
        lines.append(f"evaluation: skipped ({evaluation['skipped']})")
    elif not evaluation.get("evaluated"):
        lines.append("evaluation: not needed (no new rate, less than a day since the last)")
    else:
        batches = evaluation.get("batches", [])
        lines.append(f"evaluation: ran ({evaluation['why']}), {len(batches)} new batch(es)")
        for batch in batches:
            lines.append(
                f"  batch {batch['id']}: {batch['trigger']}, {batch['size']:,} people, "
                f"{batch['status'].replace('_', ' ')}"
            )
    expired = summary["expired"]
    lines.append("expired batches: " + (", ".join(str(b) for b in expired) if expired else "none"))
    recovered = summary["recovered"]
    lines.append(
        f"interrupted sends marked unknown (never resent): {len(recovered)}"
        if recovered
        else "interrupted sends: none"
    )
    cards = summary.get("cards") or {}
    lines.append(
        "cards: " + (", ".join(f"{n} {what}" for what, n in cards.items()) if cards else "none due")
    )
    lines.append(_dispatch_line(summary["dispatch"]))
    return lines


@app.command("worker")
def worker_command() -> None:
    """Run the scheduler: dispatch every 30 s, rates, evaluation, expiries, recovery."""
    from bot.worker import run_worker

    run_worker(runtime())


@app.command("optout")
def optout_command(target: Target, by: ByOption = "cli", as_json: JsonOption = False) -> None:
    """Record an opt-out: every channel, at once, queued messages cancelled."""
    mask_logs()
    rt = runtime()
    try:
        with rt.sessions() as session, session.begin():
            result = record_opt_out(
                session=session, address=target, channel=None, source="cli", by=by,
                now=rt.clock.now(), evidence=f"recorded by {by} from the command line",
            )  # fmt: skip
    except OptOutError as exc:
        fail(f"{mask_contact_details(target)}: {exc}")
    payload = {
        "opted_out": result.contact_ids,
        "cancelled": result.cancelled,
        "suppressed": result.suppressed,
    }
    if as_json:
        print_json(payload)
    else:
        who = (
            f"{len(result.contact_ids)} contact(s)" if result.contact_ids else "nobody in the book"
        )
        typer.echo(f"opted out {who}; {result.cancelled} queued message(s) cancelled")


@app.command("whois")
def whois_command(target: Target, as_json: JsonOption = False) -> None:
    """A contact's consent per channel, loans, sequences and messages (for staff: never logged)."""
    rt = runtime()
    try:
        with rt.sessions() as session:
            found = whois(session=session, address=target)
    except OptOutError as exc:
        fail(f"{mask_contact_details(target)}: {exc}")
    if as_json:
        print_json({"contacts": found})
        return
    if not found:
        typer.echo("nobody in the book has that phone or email")
    for person in found:
        for line in _whois_lines(person):
            typer.echo(line)


def _whois_lines(person: dict[str, Any]) -> list[str]:
    """One person as staff read them: who, each channel they can be reached on, their loans,
    tracks and messages; a channel they have no address for is not shown."""
    consent = person["consent"]
    lines = [f"#{person['id']} {person['name']} · LO {person['loan_officer'] or 'none'}"]
    if person["phone"]:
        lines.append(
            f"  phone {person['phone']} ({person['phone_status']}) · "
            f"SMS consent {consent['sms']['state']}"
        )
    if person["email"]:
        lines.append(f"  email {person['email']} · email consent {consent['email']['state']}")
    if person["suppressed"]:
        lines.append(f"  on the suppression list: {', '.join(person['suppressed'])}")
    for loan in person["loans"]:
        facts = [loan["status"]]
        if loan["note_rate"] is not None:
            facts.append(rate_text(loan["note_rate"]))
        if loan["amount"] is not None:
            facts.append(money_text(loan["amount"]))
        lines.append(f"  loan {loan['loan_number']}: {', '.join(facts)}")
    for enrollment in person["enrollments"]:
        stopped = f" ({enrollment['stop_reason']})" if enrollment["stop_reason"] else ""
        lines.append(f"  track {enrollment['track']}: {enrollment['status']}{stopped}")
    for message in person["messages"]:
        rule = f" ({message['rule']})" if message["rule"] else ""
        lines.append(f"  step {message['step']} {message['channel']}: {message['status']}{rule}")
    return lines


@app.command("pause")
def pause_command(
    by: ByOption = "cli",
    reason: Annotated[str | None, typer.Option("--reason", help="Why (audit trail).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Hold every marketing message until `winback resume`."""
    rt = runtime()
    with rt.sessions() as session, session.begin():
        pause(session=session, by=by, reason=reason, now=rt.clock.now())
    if as_json:
        print_json({"paused": True, "by": by, "reason": reason})
    else:
        typer.echo(f"outreach paused by {by}")


@app.command("resume")
def resume_command(by: ByOption = "cli", as_json: JsonOption = False) -> None:
    """Let outreach flow again."""
    rt = runtime()
    with rt.sessions() as session, session.begin():
        resume(session=session, by=by, now=rt.clock.now())
    if as_json:
        print_json({"paused": False, "by": by})
    else:
        typer.echo(f"outreach resumed by {by}")
