"""`winback demo [--keep] [--json]`: the worked example (SPEC §7) on its own SQLite file, in
sandbox mode, ending with the stats table."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.common import JsonOption, NowOption, app, print_json, runtime

if TYPE_CHECKING:
    from bot.demo_web import CardScreen, DemoRuntime
    from core.demo import DemoResult, Story, StoryClock


@app.command("demo")
def demo_command(
    database: Annotated[
        Path, typer.Option("--database", help="The demo's own SQLite file (recreated).")
    ] = Path("winback-demo.db"),
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the demo's database behind, to explore it.")
    ] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """The worked example: a book, a rate dip, an approved batch, replies, claims, the funnel."""
    # Imported here: the CLI imports every command module at start, and these are heavy.
    from bot.demo_web import CardScreen, DemoRuntime, demo_settings
    from core.demo import Story, StoryClock

    base = runtime(now)
    _remove(database)
    clock = StoryClock(base.clock.now())
    screen = CardScreen()
    settings = demo_settings(base.settings, f"sqlite:///{database}")
    rt = DemoRuntime(settings=settings, clock=clock, echo=screen.echo)
    story = Story(say=(lambda line: None) if as_json else typer.echo)
    try:
        result = _tell(rt, clock, screen, story)
        if not as_json:
            _funnel(rt, clock, replies=result.replies)
    finally:
        router = rt.__dict__.get("reply_router")
        if router is not None:
            router.close()
        if "engine" in rt.__dict__:
            rt.engine.dispose()
        if not keep:
            _remove(database)
    if as_json:
        print_json(result.as_json())
    elif keep:
        typer.echo(
            f"\nThe demo's database is kept in {database}; explore it with "
            f"DATABASE_URL=sqlite:///{database} winback replies | whois | stats --since all"
        )
    else:
        typer.echo("\nThe demo's database was removed (`winback demo --keep` leaves it behind).")


def _tell(rt: DemoRuntime, clock: StoryClock, screen: CardScreen, story: Story) -> DemoResult:
    """The whole story, its numbers from what the database holds at the end."""
    from bot.demo_replies import claims, tell_the_rest, texts_back
    from core.demo import run_demo
    from core.demo.replies import SCRIPT

    result = run_demo(
        sessions=rt.sessions, clock=clock, config=rt.config, tracks=rt.tracks,
        dispatch=_worker_pass(rt, clock), story=story, texts_wanted=len(SCRIPT),
    )  # fmt: skip
    warm = texts_back(rt, clock, screen, story)
    claims(rt, clock, screen, story, warm)
    counts = tell_the_rest(rt, story)
    result.replies, result.cards, result.claimed = counts.replies, counts.cards, counts.claimed
    result.extra.update(
        opt_outs=counts.opt_outs, confirmations=counts.confirmations,
        pending_cards=counts.pending_cards, unrouted_replies=counts.unrouted,
        still_scheduled=counts.still_scheduled,
    )  # fmt: skip
    return result


def _worker_pass(rt: DemoRuntime, clock: StoryClock) -> Any:
    """One dispatch pass at a given time, with sandbox senders whatever the environment says."""
    from core.channels.email import SandboxEmailSender
    from core.channels.sms import SandboxSmsSender
    from core.outreach.dispatcher import DispatchOptions, dispatch

    options = DispatchOptions(
        settings=rt.settings, config=rt.config, tracks=rt.tracks, sms=SandboxSmsSender(),
        email=SandboxEmailSender(clock=clock), worker_id="demo", limit=100_000,
    )  # fmt: skip

    def one_pass(at: datetime) -> dict[str, Any]:
        return dispatch(session_factory=rt.sessions, now=at, options=options).as_json()

    return one_pass


def _funnel(rt: DemoRuntime, clock: StoryClock, *, replies: int) -> None:
    """The stats table, exactly as `winback stats --since all --by lo` prints it."""
    from bot.cli.stats import print_funnel
    from core.stats import funnel

    typer.echo("")
    with rt.sessions() as session:
        result = funnel(session, since=None, by="lo", now=clock.now(), period="all")
    print_funnel(result)
    counted = result.as_json()["totals"]["replied"]
    if counted != replies:
        typer.echo(
            f"The funnel counts the {counted} people of the batch who replied; of the {replies} "
            "warm replies stored, the rest came from numbers no enrollment holds."
        )


def _remove(database: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
