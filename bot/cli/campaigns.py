"""Campaign commands: `segments`, `evaluate`, `batches`, `batch show`, `preview`, `approve`,
`reject`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import typer

from bot.cli.common import (
    JsonOption,
    NowOption,
    app,
    fail,
    money_text,
    print_json,
    print_table,
    rate_text,
    runtime,
)
from bot.runtime import Runtime
from core.batches.models import PENDING_APPROVAL, Batch
from core.batches.service import BatchError, list_batches
from core.book.service import list_loan_officers
from core.decisions import APPROVED, REJECTED, decide_batch
from core.flows import Evaluation, evaluate
from core.outreach.batch_details import batch_details
from core.outreach.preview import PreviewError, next_touches
from core.outreach.touch import Sender
from core.segments import counts_by_lo, counts_of, find_segments
from core.tracks.config import Track, track_for_trigger

batch_app = typer.Typer(help="One batch, before and after its decision.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")


def _batch_json(batch: Batch, *, full: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": batch.id,
        "trigger": batch.trigger,
        "segment": batch.segment,
        "size": batch.size,
        "status": batch.status,
    }
    if full:
        payload["created_at"] = batch.created_at.isoformat()
        payload["decided_by"] = batch.decided_by
        payload["rate"] = batch.rate_source
    return payload


@app.command("segments")
def segments_command(
    by_lo: Annotated[bool, typer.Option("--by-lo", help="Also break counts down by LO.")] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """People per segment, counted live over the book."""
    rt = runtime(now)
    with rt.sessions() as session:
        found = find_segments(
            session=session, now=rt.clock.now(), config=rt.config, readers=rt.sessions
        )
        counts = counts_of(found)
        breakdown = counts_by_lo(session, found) if by_lo else None
    if as_json:
        print_json({"segments": counts, **({"by_lo": breakdown} if breakdown else {})})
        return
    if breakdown is None:
        print_table(("segment", "people"), [(n, f"{c:,}") for n, c in counts.items()], right=(1,))
        return
    with rt.sessions() as session:
        names = {o.email: o.name for o in list_loan_officers(session=session)}
    names["unassigned"] = "(no loan officer)"
    officers = sorted(breakdown, key=lambda email: (email == "unassigned", names[email].lower()))
    rows = [("everyone", *(f"{n:,}" for n in counts.values()))]
    rows += [(names[e], *(f"{n:,}" for n in breakdown[e].values())) for e in officers]
    print_table(("loan officer", *counts), rows, right=range(1, len(counts) + 1))


@app.command("evaluate")
def evaluate_command(now: NowOption = None, as_json: JsonOption = False) -> None:
    """Run every enabled trigger; each finds only people who newly qualify."""
    rt = runtime(now)
    with rt.sessions() as session, session.begin():
        result = evaluate(session=session, now=rt.clock.now(), config=rt.config, tracks=rt.tracks)
        created = [_batch_json(batch) for batch in result.batches]
    if as_json:
        print_json({"batches": created})
        return
    if not created:
        typer.echo("nobody newly qualifies: no batch created")
    for batch in created:
        typer.echo(
            f"batch {batch['id']}: {batch['trigger']} ({batch['segment']}), "
            f"{_people(batch['size'])}, {batch['status']}"
            + _reserved_text(result.reserved.get(batch["trigger"], {}))
        )
    batched = {batch["trigger"] for batch in created}
    for trigger, holders in result.reserved.items():
        if trigger not in batched:  # everyone it found is held by a higher-priority trigger
            typer.echo(f"{trigger}: no batch{_reserved_text(holders)}")
    if created:
        typer.echo(_evaluation_summary(result, rt.tracks))


def _evaluation_summary(result: Evaluation, tracks: Mapping[str, Track]) -> str:
    """'scheduled 1,204 people on 4 tracks (3,610 touches); 1 batch of 212 waits for approval:
    `winback batch show 7`'."""
    by_id = {batch.id: batch for batch in result.batches}
    started = [(by_id[i], r) for i, r in result.enrolled.items() if r.enrolled]
    names = {t.name for b, _ in started if (t := track_for_trigger(tracks, b.trigger))}
    people = sum(r.enrolled for _, r in started)
    touches = sum(r.messages_scheduled for _, r in started)
    track_word = "track" if len(names) == 1 else "tracks"
    line = f"scheduled {people:,} {'person' if people == 1 else 'people'} on {len(names)} "
    line += f"{track_word} ({touches:,} {'touch' if touches == 1 else 'touches'})"
    waiting = [b for b in result.batches if b.status == PENDING_APPROVAL]
    if not waiting:
        return line + "; nothing waits for approval"
    sizes = " and ".join(f"{b.size:,}" for b in waiting)
    verb = "batch" if len(waiting) == 1 else "batches"
    wait = "waits" if len(waiting) == 1 else "wait"
    shows = ", ".join(f"`winback batch show {b.id}`" for b in waiting)
    return f"{line}; {len(waiting)} {verb} of {sizes} {wait} for approval: {shows}"


def _people(count: int) -> str:
    return f"{count} person" if count == 1 else f"{count} people"


def _reserved_text(holders: dict[str, int]) -> str:
    """'; 1 person already in a pending rate_drop batch', for each trigger holding people."""
    return "".join(
        f"; {_people(count)} already in a pending {trigger} batch"
        for trigger, count in holders.items()
    )


def _enrolled_text(enrolled: int, on_track: dict[str, int]) -> str:
    """'12 people enrolled; 2 already on the pmi_removal track'."""
    walking = [f"{count} already on the {track} track" for track, count in on_track.items()]
    return "; ".join([f"{_people(enrolled)} enrolled", *walking])


@app.command("batches")
def batches_command(
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Batches, newest first."""
    rt = runtime()
    with rt.sessions() as session:
        rows = [_batch_json(b, full=True) for b in list_batches(session=session, status=status)]
    if as_json:
        print_json({"batches": rows})
        return
    for row in rows:
        decided = f" by {row['decided_by']}" if row["decided_by"] else ""
        typer.echo(
            f"{row['id']:>5}  {row['trigger']:<20} {row['size']:>6}  {row['status']}{decided}"
        )


ByOption = Annotated[str, typer.Option("--by", help="Who decides (recorded in the audit trail).")]


@app.command("approve")
def approve_command(
    batch_id: int, by: ByOption, now: NowOption = None, as_json: JsonOption = False
) -> None:
    """Approve a pending batch: its people are enrolled and their first touches become due."""
    rt = runtime(now)
    try:
        payload = _approve(rt, batch_id, by)
    except BatchError as exc:
        fail(str(exc))
    if as_json:
        print_json(payload)
    else:
        enrolled = _enrolled_text(payload["enrolled"], payload["already_on_track"])
        held = payload["held_out_for_measurement"]
        if held:
            enrolled += f"; {_people(held)} held out for measurement (never messaged)"
        typer.echo(f"batch {batch_id} approved by {by}: {enrolled}")


def _approve(rt: Runtime, batch_id: int, by: str) -> dict[str, Any]:
    """Approve in one transaction (core.decisions); a refusal that expired the batch stays."""
    decision = decide_batch(
        session_factory=rt.sessions, batch_id=batch_id, approve=True, by=by,
        now=rt.clock.now(), tracks=rt.tracks, config=rt.config,
    )  # fmt: skip
    if decision.outcome != APPROVED or decision.batch is None or decision.enrolled is None:
        raise BatchError(decision.message)
    return {
        **_batch_json(decision.batch, full=True),
        "enrolled": decision.enrolled.enrolled,
        "already_in_a_sequence": decision.enrolled.already_in_a_sequence,
        "already_on_track": decision.enrolled.already_on_track,
        "held_out_for_measurement": len(decision.enrolled.held_out),
    }


@app.command("reject")
def reject_command(
    batch_id: int, by: ByOption, now: NowOption = None, as_json: JsonOption = False
) -> None:
    """Reject a pending batch; nobody in it is contacted."""
    rt = runtime(now)
    decision = decide_batch(
        session_factory=rt.sessions, batch_id=batch_id, approve=False, by=by, now=rt.clock.now()
    )
    if decision.outcome != REJECTED or decision.batch is None:
        fail(decision.message)
    payload = _batch_json(decision.batch, full=True)
    if as_json:
        print_json(payload)
    else:
        typer.echo(f"batch {batch_id} rejected by {by}")


@batch_app.command("show")
def batch_show_command(
    batch_id: int,
    everyone: Annotated[bool, typer.Option("--all", help="Every member, not the top 20.")] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """A batch before approval: why now, members and their numbers, who today's first touch
    would reach or hold and why, and a rendered sample per channel (nothing is sent)."""
    rt = runtime(now)
    sender = Sender.from_settings(rt.settings)
    try:
        with rt.sessions() as session:
            payload = batch_details(
                session=session, batch_id=batch_id, now=rt.clock.now(), config=rt.config,
                tracks=rt.tracks, sender=sender, limit=None if everyone else 20,
            ).as_json()  # fmt: skip
            session.rollback()  # a preview writes nothing
    except BatchError as exc:
        fail(str(exc))
    if as_json:
        print_json(payload)
        return
    _print_details(payload)


def _print_details(payload: dict[str, Any]) -> None:
    expires = payload["expires_at"] if payload["status"] == PENDING_APPROVAL else None
    typer.echo(
        f"batch {payload['id']}: {payload['trigger']} ({payload['segment']}), "
        f"{_people(payload['size'])}, {payload['status']}"
        + (f" (expires {_utc(expires)})" if expires else "")
    )
    for line in _why_lines(payload["why"]):
        typer.echo(line)
    members = payload["members"]
    shown = "everyone" if len(members) == payload["size"] else f"top {len(members)}"
    typer.echo(f"\nmembers ({shown} of {payload['size']:,}, largest savings first):")
    rows = [
        (m["name"], m["loan_officer"] or "-", rate_text(m["note_rate"]) if m["note_rate"] else "-",
         money_text(m["monthly_savings"]) if m["monthly_savings"] else "-",
         f"{m['break_even_months']} mo" if m["break_even_months"] is not None else "-")
        for m in members
    ]  # fmt: skip
    print_table(("name", "loan officer", "note rate", "savings/mo", "break-even"), rows, (2, 3, 4))
    typer.echo(f"\n{_today_text(payload['today'], payload['track'])}")
    for sample in payload["samples"]:
        typer.echo("")
        _print_touch(sample, heading="sample")


def _points(value: str) -> str:
    """'1.00000' -> '1.00', '0.875' -> '0.875'."""
    whole, _, decimals = f"{Decimal(value).normalize():f}".partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def _utc(moment: str) -> str:
    """'2026-09-27 15:00 UTC' from an ISO-8601 time."""
    return f"{datetime.fromisoformat(moment):%Y-%m-%d %H:%M} UTC"


def _why_lines(why: dict[str, Any]) -> list[str]:
    """'why now: offer 5.50 % (30y) of 2026-09-24, …' and the trigger's thresholds."""
    limits = why["thresholds"]
    lines = []
    if why.get("offer"):
        offer = why["offer"]
        lines.append(
            f"why now: offer {rate_text(offer['rate'])} ({offer['product']}) of {offer['as_of']}"
            f": {offer['source']}"
        )
        for product, basis in why.get("priced_on", {}).items():
            if product != offer["product"]:
                lines.append(f"         also priced on {product} {rate_text(basis['rate'])} "
                             f"of {basis['as_of']}")  # fmt: skip
    if why["trigger"] == "rate_drop":
        drops = why.get("drop_points")
        low, high = (_points(drops["min"]), _points(drops["max"])) if drops else ("", "")
        spread = (
            f" (these members: {low}" + (f" to {high})" if high != low else ")") if drops else ""
        )
        lines.append(
            f"threshold: note rate {limits['threshold_points']} point or more above the offer"
            f"{spread}; savings at least {money_text(limits['min_monthly_savings'])}/month; "
            f"break-even within {limits['max_break_even_months']} months"
        )
    else:
        settings = ", ".join(f"{key} {value}" for key, value in limits.items())
        lines.append(f"why now: {why['trigger']} ({settings})")
    return lines


def _today_text(today: dict[str, Any], track: str | None) -> str:
    """'if approved now, the first touch (sms, refinance track): 2 sent; suppressed: …'."""
    if track is None or today["channel"] is None:
        return "no enabled track for this trigger: approving enrolls nobody"
    parts = [f"{today['send']:,} would be sent"]
    for label, key in (("held", "held"), ("suppressed", "suppressed")):
        if today[key]:
            parts.append(f"{label}: " + ", ".join(f"{r} {n:,}" for r, n in today[key].items()))
    if today["render_failed"]:
        parts.append(f"render_failed {today['render_failed']:,}")
    return f"if sent now, the first touch ({today['channel']}, {track} track): " + "; ".join(parts)


def _decision_text(touch: dict[str, Any]) -> str:
    """'would be sent now', 'held now: quiet_hours_CA (until …)', 'suppressed: no_sms_consent'."""
    if touch["decision"] == "render_failed":
        return f"render_failed: {touch['render_error']}"
    if touch["decision"] == "send":
        return "would be sent now"
    if touch["decision"] == "hold":
        until = f" until {_utc(touch['until'])}" if touch["until"] else ""
        return f"held now: {touch['rule']}{until}"
    return f"suppressed: {touch['rule']}"


def _print_touch(touch: dict[str, Any], *, heading: str) -> None:
    due = _utc(touch["due_at"]) if touch["due_at"] else f"day {touch['delay_days']} after approval"
    typer.echo(
        f"{heading} {touch['channel']} to {touch['name']} ({touch['track']} track, step "
        f"{touch['step']}, {touch['template']}, due {due}): {_decision_text(touch)}"
    )
    if touch["subject"]:
        typer.echo(f"  subject: {touch['subject']}")
    for line in (touch["body"] or "").splitlines():
        typer.echo(f"  | {line}".rstrip())


@app.command("preview")
def preview_command(
    target: Annotated[
        str, typer.Argument(metavar="ENROLLMENT|PHONE|EMAIL", help="An enrollment id, or a person.")
    ],
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """The next touch exactly as it would go out now, and whether it would be sent or held."""
    rt = runtime(now)
    sender = Sender.from_settings(rt.settings)
    try:
        with rt.sessions() as session:
            touches = next_touches(
                session=session, target=target, now=rt.clock.now(), config=rt.config,
                tracks=rt.tracks, sender=sender,
            )  # fmt: skip
            payload = {"previews": [touch.as_json() for touch in touches]}
            session.rollback()  # a preview writes nothing
    except PreviewError as exc:
        fail(str(exc))
    if as_json:
        print_json(payload)
        return
    for number, touch in enumerate(payload["previews"]):
        if number:
            typer.echo("")
        _print_touch(touch, heading=f"enrollment {touch['enrollment_id']}: next")
