"""Campaign commands: `segments`, `evaluate`, `batches`, `approve`, `reject`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bot.cli.common import JsonOption, NowOption, app, fail, print_json, print_table, runtime
from bot.runtime import Runtime
from core.batches.models import Batch
from core.batches.service import BatchError, BatchExpired, list_batches
from core.book.service import list_loan_officers
from core.flows import approve_batch, evaluate, reject_batch
from core.segments import counts_by_lo, counts_of, find_segments


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
            f"{batch['size']} people, {batch['status']}"
            + _reserved_text(result.reserved.get(batch["trigger"], {}))
        )
    batched = {batch["trigger"] for batch in created}
    for trigger, holders in result.reserved.items():
        if trigger not in batched:  # everyone it found is held by a higher-priority trigger
            typer.echo(f"{trigger}: no batch{_reserved_text(holders)}")


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
        typer.echo(f"batch {batch_id} approved by {by}: {enrolled}")


def _approve(rt: Runtime, batch_id: int, by: str) -> dict[str, Any]:
    """Approve in one transaction; a refusal that expired the batch is committed, then raised."""
    with rt.sessions() as session, session.begin():
        try:
            batch, enrolled = approve_batch(
                session=session, batch_id=batch_id, by=by, now=rt.clock.now(),
                tracks=rt.tracks, config=rt.config,
            )  # fmt: skip
        except BatchExpired as exc:
            refused = exc  # leaving the block normally commits the expiry and its audit event
        else:
            return {
                **_batch_json(batch, full=True),
                "enrolled": enrolled.enrolled,
                "already_in_a_sequence": enrolled.already_in_a_sequence,
                "already_on_track": enrolled.already_on_track,
            }
    raise refused


@app.command("reject")
def reject_command(
    batch_id: int, by: ByOption, now: NowOption = None, as_json: JsonOption = False
) -> None:
    """Reject a pending batch; nobody in it is contacted."""
    rt = runtime(now)
    try:
        with rt.sessions() as session, session.begin():
            payload = _batch_json(
                reject_batch(session=session, batch_id=batch_id, by=by, now=rt.clock.now()),
                full=True,
            )
    except BatchError as exc:
        fail(str(exc))
    if as_json:
        print_json(payload)
    else:
        typer.echo(f"batch {batch_id} rejected by {by}")
