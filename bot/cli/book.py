"""Book commands: `winback lo add`, `winback lo list`, `winback import`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import JsonOption, NowOption, app, fail, print_json, print_table, runtime
from core.book.service import BookError, list_loan_officers, upsert_loan_officer
from core.db import transaction

lo_app = typer.Typer(help="Loan officers.", no_args_is_help=True)
app.add_typer(lo_app, name="lo")


@lo_app.command("add")
def lo_add(
    email: Annotated[str, typer.Option("--email", help="The loan officer's email.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    nmls: Annotated[str | None, typer.Option("--nmls", help="NMLS ID.")] = None,
    slack_user: Annotated[str | None, typer.Option("--slack-user", help="Slack user id.")] = None,
    slack_channel: Annotated[
        str | None, typer.Option("--slack-channel", help="Slack channel id for warm replies.")
    ] = None,
    create_channel: Annotated[
        bool, typer.Option("--create-channel", help="Create a private channel in Slack.")
    ] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a loan officer, or update one with the same email."""
    if slack_channel and create_channel:
        fail("give --slack-channel or --create-channel, not both")
    rt = runtime(now)
    if create_channel:
        from bot.slack_admin import create_lo_channel

        slack_channel = create_lo_channel(rt.settings, name=name, slack_user=slack_user)
    try:
        with transaction(rt.sessions) as session:
            officer, created = upsert_loan_officer(
                session=session,
                now=rt.clock.now(),
                email=email,
                name=name,
                nmls_id=nmls,
                slack_user_id=slack_user,
                slack_channel_id=slack_channel,
            )
            result = {
                "id": officer.id,
                "email": officer.email,
                "name": officer.name,
                "nmls_id": officer.nmls_id,
                "slack_user_id": officer.slack_user_id,
                "slack_channel_id": officer.slack_channel_id,
                "created": created,
            }
    except BookError as exc:
        fail(f"--email {exc}")
    if as_json:
        print_json(result)
    else:
        verb = "added" if created else "updated"
        typer.echo(f"{verb} loan officer {result['name']} <{result['email']}> (id {result['id']})")


@lo_app.command("list")
def lo_list(as_json: JsonOption = False) -> None:
    """Every loan officer: NMLS ID, where warm replies go, and their share of the book."""
    rt = runtime()
    with rt.sessions() as session:
        officers = list_loan_officers(session=session)
    if as_json:
        print_json({"loan_officers": [asdict(officer) for officer in officers]})
        return
    if not officers:
        typer.echo("no loan officers yet: `winback lo add --email E --name N`, or import a book")
        return
    rows = [
        (o.name, o.email, o.nmls_id or "-", o.slack_channel_id or o.slack_user_id or "-",
         f"{o.people:,}", f"{o.loans:,}")
        for o in officers
    ]  # fmt: skip
    print_table(("name", "email", "NMLS", "Slack", "people", "loans"), rows, right=(4, 5))


@app.command("import")
def import_command(
    path: Annotated[str, typer.Argument(help="The CSV export to import.")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto, generic, encompass, or a MAPPING.yml file.")
    ] = "auto",
    rejects: Annotated[
        str | None, typer.Option("--rejects", help="Write rejected rows (with line and reason).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report without writing.")] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import an LOS/CRM export: normalize, de-duplicate, keep consent; bad rows are reported."""
    from bot.cli.importing import run_import

    rt = runtime(now)
    result = run_import(rt, Path(path), fmt=fmt, rejects=rejects, dry_run=dry_run, quiet=as_json)
    if as_json:
        print_json(result.as_json())
