"""`/winback`: acknowledged at once, answered through response_url by a lazy listener.

Slack gives a slash command 3 seconds; a segment count over a big book can take longer, so the
ack carries nothing but help (which needs no database) or a "working on it" line, and the
answer follows from the lazy listener. Each subcommand is one core call and one view.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.commands import (
    batches_view,
    decision_view,
    help_view,
    members_view,
    note,
    rates_view,
    refusal_view,
    segments_view,
    whois_view,
)
from bot.blocks.common import View
from bot.blocks.stats import (
    chart_comment,
    chart_posted_view,
    chart_refused_view,
    chart_saved_view,
    stats_view,
)
from bot.charts import chart_filename, funnel_png
from bot.command_text import Command, parse_command
from core.batches.service import list_batches
from core.book.service import list_loan_officers
from core.decisions import BatchDecision, decide_batch
from core.flows import PRODUCTS, offers_on
from core.outreach.optout import OptOutError, record_opt_out, whois
from core.outreach.switches import is_paused, pause, resume
from core.privacy import mask_contact_details
from core.rates.service import held_rates
from core.segments import counts_by_lo, counts_of, find_segments, segment_members
from core.stats import Funnel, funnel, parse_since

if TYPE_CHECKING:
    from bot.slack_app import SlackDeps

logger = logging.getLogger(__name__)
SLOW = frozenset({"segments", "segment", "stats"})  # live queries over the whole book
MANAGERS_ONLY = frozenset({"approve", "reject", "pause", "resume"})
SEGMENT_TOP = 20
DEFAULT_PERIOD = "30d"
Answer = Callable[["SlackDeps", Command, str], View]


def ack_winback_command(ack: Ack, command: dict[str, Any]) -> None:
    """Within Slack's 3 seconds: help at once, else an empty ack or a 'working on it' line."""
    parsed = parse_command(command.get("text") or "")
    if parsed.name == "help":
        view = help_view(parsed.problem)
        ack(text=view.text, blocks=view.blocks, response_type="ephemeral")
    elif parsed.name in SLOW:
        ack(text="Working on it…", response_type="ephemeral")
    else:
        ack()


def handle_winback_command(
    command: dict[str, Any], respond: Respond, context: Any, client: WebClient | None = None
) -> None:
    """The answer, through response_url; a failure is logged (no PII) and told kindly."""
    parsed = parse_command(command.get("text") or "")
    if parsed.name == "help":
        return  # the ack answered
    deps: SlackDeps = context["winback"]
    user = command.get("user_id", "")
    try:
        if parsed.name in MANAGERS_ONLY and not deps.is_manager(user):
            view = _refusal(parsed.name, deps)
        elif parsed.chart:
            channel = command.get("channel_id") or ""
            view = _stats_chart(deps, parsed, user, client=client, channel=channel)
        else:
            view = ANSWERS[parsed.name](deps, parsed, user)
    except Exception as exc:  # every failure gets an answer, never a stack trace
        # The exception's text may hold a phone or email (SQL parameters): type and place only.
        logger.error("/winback %s failed: %s at %s", parsed.name, type(exc).__name__, _where(exc))
        view = note(f"Sorry, `/winback {parsed.name}` failed on our side. It is logged for the "
                    "team; please try again in a minute.")  # fmt: skip
    _send(respond, view, parsed.name)


def _where(exc: BaseException) -> str:
    """The deepest line of our own code the failure passed through (else the deepest at all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename] or frames
    return f"{ours[-1].filename}:{ours[-1].lineno}" if ours else "?"


def _send(respond: Respond, view: View, name: str) -> None:
    try:  # every answer is ephemeral: only the asker sees it (names, numbers, consent)
        answer = respond(text=view.text, blocks=view.blocks, response_type="ephemeral",
                         replace_original=False)  # fmt: skip
    except Exception as exc:  # Slack unreachable: nothing more can be told
        logger.error("/winback %s: the answer did not reach Slack: %s", name, type(exc).__name__)
        return
    if answer.status_code != 200:
        logger.error("/winback %s: Slack refused the answer (HTTP %s)", name, answer.status_code)


def _refusal(name: str, deps: SlackDeps) -> View:
    what = "decide" if name in ("approve", "reject") else name
    return refusal_view(what, deps.settings.manager_ids)


def _segments(deps: SlackDeps, command: Command, user: str) -> View:
    with deps.sessions() as session:
        found = find_segments(
            session=session, now=deps.clock.now(), config=deps.config, readers=deps.sessions
        )
        breakdown = counts_by_lo(session, found)
        names = {officer.email: officer.name for officer in list_loan_officers(session=session)}
    by_officer = sorted(
        ((names.get(email, "No loan officer"), mine) for email, mine in breakdown.items()),
        key=lambda row: (row[0] == "No loan officer", row[0].lower()),
    )
    return segments_view(counts_of(found), by_officer)


def _segment(deps: SlackDeps, command: Command, user: str) -> View:
    """A segment's best people: the mentioned LO's, else the asker's own if they are an LO."""
    assert command.segment is not None
    with deps.sessions() as session:
        officers = list_loan_officers(session=session)
        wanted = command.officer or user
        officer = next((o for o in officers if o.slack_user_id == wanted), None)
        if command.officer and officer is None:
            link = f"`winback lo add --slack-user {command.officer} …`"
            return note(f"<@{command.officer}> is not a loan officer in Winback (an operator "
                        f"links them: {link}).")  # fmt: skip
        people = segment_members(
            session=session, now=deps.clock.now(), config=deps.config, segment=command.segment,
            lo_id=officer.id if officer else None, limit=SEGMENT_TOP,
        )  # fmt: skip
    whose = None if officer is None else ("Your" if officer.slack_user_id == user else officer.name)
    names = {o.email: o.name for o in officers}
    return members_view(command.segment, people, whose=whose, officer_names=names)


def _batches(deps: SlackDeps, command: Command, user: str) -> View:
    with deps.sessions() as session:
        return batches_view(list_batches(session=session, limit=50),
                            can_decide=deps.is_manager(user))  # fmt: skip


def _approve(deps: SlackDeps, command: Command, user: str) -> View:
    """As `winback approve`, one transaction; a big batch wants its size typed in too."""
    return decision_view(_decide(deps, command, user, approve=True), typed=command.size)


def _reject(deps: SlackDeps, command: Command, user: str) -> View:
    return decision_view(_decide(deps, command, user, approve=False))


def _decide(deps: SlackDeps, command: Command, user: str, *, approve: bool) -> BatchDecision:
    assert command.batch_id is not None
    return decide_batch(
        session_factory=deps.sessions, batch_id=command.batch_id, approve=approve, by=user,
        now=deps.clock.now(), tracks=deps.track_map() if approve else None, config=deps.config,
        confirm_above=deps.config.replies.confirm_batch_size_above, typed_size=command.size,
        posting=deps.posting,
    )  # fmt: skip


def _stats(deps: SlackDeps, command: Command, user: str) -> View:
    return stats_view(_funnel(deps, command), command.since or DEFAULT_PERIOD)


def _funnel(deps: SlackDeps, command: Command) -> Funnel:
    period, now = command.since or DEFAULT_PERIOD, deps.clock.now()
    with deps.sessions() as session:
        return funnel(session, since=parse_since(period, now), by=command.by or "segment",
                      now=now, period=period,
                      window_days=deps.config.attribution.window_days)  # fmt: skip


def _stats_chart(
    deps: SlackDeps, command: Command, user: str, *, client: WebClient | None, channel: str
) -> View:
    """The funnel's PNG posted in the channel asked from; saved to a file without Slack."""
    report = _funnel(deps, command)
    picture, filename = funnel_png(report), chart_filename(report)
    if client is None or not deps.settings.slack_enabled or not channel:
        path = Path.cwd() / filename  # the sandbox: beside the process, where the operator is
        path.write_bytes(picture)
        return chart_saved_view(path)
    period = command.since or DEFAULT_PERIOD
    try:
        client.files_upload_v2(
            channel=channel, content=picture, filename=filename, title=filename,
            initial_comment=chart_comment(report, period, user),
        )  # fmt: skip
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "unknown_error")
        logger.warning("/winback stats chart: Slack refused the upload: %s", error)
        return chart_refused_view(error)
    return chart_posted_view(channel, filename)


def _rate(deps: SlackDeps, command: Command, user: str) -> View:
    now = deps.clock.now()
    with deps.sessions() as session:
        offers = offers_on(session=session, now=now, config=deps.config)
        held = held_rates(session=session)
    return rates_view({p: offers.get(p) for p in PRODUCTS}, held, now.date())


def _pause(deps: SlackDeps, command: Command, user: str) -> View:
    with deps.sessions() as session, session.begin():
        was = is_paused(session)
        pause(session=session, by=user, reason=command.reason, now=deps.clock.now())
    why = f" ({command.reason})" if command.reason else ""
    again = " (it was already paused)" if was else ""
    return note(f":double_vertical_bar: Outreach paused by <@{user}>{why}{again}: no text or "
                "email goes out until `/winback resume`.")  # fmt: skip


def _resume(deps: SlackDeps, command: Command, user: str) -> View:
    with deps.sessions() as session, session.begin():
        was = is_paused(session)
        resume(session=session, by=user, now=deps.clock.now())
    if not was:
        return note(f"Outreach was not paused; <@{user}> resumed it anyway: it keeps flowing.")
    return note(f":arrow_forward: Outreach resumed by <@{user}>: held messages go out at the "
                "next dispatch, inside each person's allowed hours.")  # fmt: skip


def _whois(deps: SlackDeps, command: Command, user: str) -> View:
    assert command.address is not None
    try:
        with deps.sessions() as session:
            return whois_view(whois(session=session, address=command.address))
    except OptOutError:
        return note("That is not a phone number or an email address.")


def _optout(deps: SlackDeps, command: Command, user: str) -> View:
    assert command.address is not None
    shown = mask_contact_details(command.address)
    try:
        with deps.sessions() as session, session.begin():
            result = record_opt_out(
                session=session, address=command.address, channel=None, source="slack", by=user,
                now=deps.clock.now(), evidence=f"recorded by {user} in Slack",
            )  # fmt: skip
    except OptOutError:
        return note("That is not a phone number or an email address: nobody was opted out.")
    if not result.contact_ids:
        return note(f"Nobody in the book has {shown}; it is on the suppression list now, so "
                    "nothing will ever be sent to it.")  # fmt: skip
    people = len(result.contact_ids)
    who = f"{people} contact{'s' if people != 1 else ''}"
    return note(f":no_entry: Opted out {who} with {shown} (by <@{user}>): no more texts or "
                f"emails, {result.cancelled} queued message(s) cancelled.")  # fmt: skip


ANSWERS: dict[str, Answer] = {
    "segments": _segments,
    "segment": _segment,
    "batches": _batches,
    "approve": _approve,
    "reject": _reject,
    "stats": _stats,
    "rate": _rate,
    "pause": _pause,
    "resume": _resume,
    "whois": _whois,
    "optout": _optout,
}


def register(app: App) -> None:
    """Listen to `/winback`: the ack at once, the answer lazily."""
    app.command("/winback")(ack=ack_winback_command, lazy=[handle_winback_command])
