"""`winback demo`: the worked example on a fresh SQLite file, in sandbox mode."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import JsonOption, NowOption, app, print_json, runtime
from bot.runtime import Runtime
from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade


@app.command("demo")
def demo_command(
    database: Annotated[
        Path, typer.Option("--database", help="The demo's own SQLite file (recreated).")
    ] = Path("winback-demo.db"),
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """The worked example: a book, a rate dip, an approved batch, one compliant worker pass."""
    # Imported here: the CLI imports every command module at start, and these are heavy.
    from core.channels.email import SandboxEmailSender
    from core.channels.sms import SandboxSmsSender
    from core.demo import run_demo
    from core.outreach.dispatcher import DispatchOptions, dispatch

    rt = runtime(now)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    # The demo never sends: sandbox senders whatever the environment says.
    sms, email = SandboxSmsSender(), SandboxEmailSender()

    def one_worker_pass(at: datetime) -> dict[str, Any]:
        options = DispatchOptions(
            settings=rt.settings, config=rt.config, tracks=rt.tracks, sms=sms, email=email,
            worker_id="demo", limit=100_000,
        )  # fmt: skip
        report = dispatch(session_factory=sessions, now=at, options=options)
        return report.as_json()

    say = (lambda line: None) if as_json else typer.echo
    result = run_demo(
        sessions=sessions,
        now=rt.clock.now(),
        config=rt.config,
        tracks=rt.tracks,
        dispatch=one_worker_pass,
        say=say,
    )
    engine.dispose()
    if as_json:
        print_json(result.as_json())
    else:
        _table(result.as_json(), database, rt)


def _table(payload: dict[str, Any], database: Path, rt: Runtime) -> None:
    typer.echo("\nOutbox after the pass:")
    for status, count in sorted(payload.get("outbox", {}).items()):
        typer.echo(f"  {status:<14} {count:>6}")
    typer.echo(
        f"\nThe demo's database is {database}; explore it with "
        f"DATABASE_URL=sqlite:///{database} winback batches | segments | whois …"
    )
