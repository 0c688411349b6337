"""`winback digest [--now ISO] [--week YYYY-Www] [--json]`: the weekly digest without waiting."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

import typer

from bot.cli.common import JsonOption, NowOption, app, fail, print_json, runtime

_WEEK = re.compile(r"(\d{4})-W(\d{2})")


@app.command("digest")
def digest_command(
    week: Annotated[
        str | None,
        typer.Option(
            "--week",
            metavar="YYYY-Www",
            help="A week's digest as it was posted (e.g. 2026-W40); default: the 7 days to now.",
        ),
    ] = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """The weekly digest as the approvals channel reads it (rendered as text)."""
    from bot.blocks.digest import digest_card
    from bot.blocks.text import view_text
    from core.digest import preview_digest, week_digest

    shown = week.strip().upper() if week else None
    if shown is not None and not _valid_week(shown):
        fail(f"--week must be an ISO week like 2026-W40, not {(week or '')[:40]!r}")
    rt = runtime(now)
    moment = rt.clock.now()
    with rt.sessions() as session:
        if shown is None:
            view = preview_digest(session, now=moment, config=rt.config)
        else:
            view = week_digest(session, week=shown, now=moment, config=rt.config)
    if as_json:
        print_json(view.as_json())
        return
    typer.echo(view_text(digest_card(view)))


def _valid_week(text: str) -> bool:
    match = _WEEK.fullmatch(text)
    if match is None:
        return False
    try:
        date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        return False
    return True
