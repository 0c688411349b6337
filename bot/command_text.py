"""What someone typed after `/winback`, read into a Command: pure, and it never raises.

Slack sends the text with its own markup: mentions as `<@U123|name>` (or `<@U123>`), emails
as `<mailto:ana@example.com|ana@example.com>`, phones sometimes as `<tel:…|…>`, and `&`, `<`,
`>` as entities. Anything not understood becomes `help` with a `problem` line saying why.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from core.outreach.optout import OptOutError, address_kind
from core.stats import BY
from core.triggers.registry import SEGMENT_ALIASES, SEGMENTS, segment_named

MAX_TEXT = 1000  # longer than any real command: refused before it is read
MAX_BATCH_ID = 2**31 - 1  # the database's integer; a larger id cannot exist
MAX_REASON = 300  # what the audit trail keeps of a pause reason
PERIODS = ("7d", "30d", "90d", "all")
# Every grouping core counts by (a new one in core.stats.BY is accepted here at once), plurals.
GROUPINGS = {name: name for name in BY} | {f"{name}s": name for name in BY} | {"officer": "lo"}
SUBCOMMANDS = ("help", "segments", "segment", "batches", "approve", "reject", "stats", "rate",
               "pause", "resume", "whois", "optout")  # fmt: skip
_ALIASES = {"?": "help", "rates": "rate", "opt-out": "optout", "batch": "batches"}
_MENTION = re.compile(r"^<@([UW][A-Z0-9]{1,20})(?:\|[^>]*)?>$")
_LINK = re.compile(r"<(?:mailto|tel):([^|>]*)(?:\|[^>]*)?>")
_BATCH_ID = re.compile(r"^#?([0-9]{1,12})$")
_SIZE = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3}){0,3}$|^[0-9]{1,12}$")  # 1204 or 1,204


@dataclass(frozen=True)
class Command:
    """One subcommand with its arguments; `help` (and why, in `problem`) for anything else."""

    name: str
    segment: str | None = None  # the segment's own name (`refi` read as `refinance`)
    officer: str | None = None  # the Slack user id of a mentioned loan officer
    batch_id: int | None = None
    size: int | None = None  # the batch's size, typed in to approve a big batch
    since: str | None = None  # 7d, 30d, 90d or all; None: the default period
    by: str | None = None  # segment, trigger or lo (any of core.stats.BY)
    chart: bool = False  # `stats chart`: the funnel as a picture, posted in the channel
    address: str | None = None  # a phone or email, as typed (Slack's link markup removed)
    reason: str | None = None  # why outreach is paused (optional)
    problem: str | None = None  # why the help is shown instead


def _help(problem: str | None = None) -> Command:
    return Command(name="help", problem=problem)


def _shown(word: str) -> str:
    """A word the user typed, short and without markup, to quote back in a problem line."""
    plain = re.sub(r"[`*_~<>]", "", word)
    return plain if len(plain) <= 40 else plain[:39] + "…"


def parse_command(text: str) -> Command:
    """The Command for the text after `/winback` (help for empty, unknown or malformed text)."""
    if len(text) > MAX_TEXT:
        return _help(f"That is too long for a command ({len(text):,} characters).")
    words = text.split()
    if not words:
        return _help()
    first = words[0].lower()
    name = _ALIASES.get(first, first)
    if name not in SUBCOMMANDS:
        return _help(f"`{_shown(words[0])}` is not a `/winback` command.")
    return _READERS[name](name, words[1:])


def _bare(name: str, rest: list[str]) -> Command:
    if rest:
        return _help(f"`{name}` takes nothing after it.")
    return Command(name=name)


def _segment(name: str, rest: list[str]) -> Command:
    if not rest:
        return _help(f"Which segment? {segment_choices()}.")
    trigger = segment_named(rest[0])
    if trigger is None:
        return _help(f"There is no segment `{_shown(rest[0])}`. {segment_choices()}.")
    if len(rest) == 1:
        return Command(name=name, segment=trigger.segment)
    mention = _MENTION.match(rest[1])
    if len(rest) > 2 or mention is None:
        return _help("Name the loan officer with a mention, picked from Slack's list: "
                     "`/winback segment refi @someone`.")  # fmt: skip
    return Command(name=name, segment=trigger.segment, officer=mention.group(1))


def segment_choices() -> str:
    """'Segments: refinance (or refi), repeat_purchase, …'."""
    aliases = {segment: alias for alias, segment in SEGMENT_ALIASES.items()}
    names = [f"{s} (or {aliases[s]})" if s in aliases else s for s in SEGMENTS]
    return "Segments: " + ", ".join(names)


def _batch(name: str, rest: list[str]) -> Command:
    """`approve ID [SIZE]` (a big batch wants its size typed in too) or `reject ID`."""
    most = 2 if name == "approve" else 1
    found = _BATCH_ID.match(rest[0]) if 1 <= len(rest) <= most else None
    size = _SIZE.match(rest[1]) if found and len(rest) == 2 else None
    if (
        found is None
        or not 0 < int(found.group(1)) <= MAX_BATCH_ID
        or (len(rest) == 2 and (size is None or int(size.group(0).replace(",", "")) == 0))
    ):
        if name == "approve":
            return _help("`approve` needs a batch number, and for a big batch its size too: "
                         "`/winback approve 12` or `/winback approve 12 1204`.")  # fmt: skip
        return _help("`reject` needs one batch number, like `/winback reject 12`.")
    typed = int(size.group(0).replace(",", "")) if size else None
    return Command(name=name, batch_id=int(found.group(1)), size=typed)


def _stats(name: str, rest: list[str]) -> Command:
    """`stats [chart] [7d|30d|90d|all] [by segment|trigger|lo]`, in any order."""
    since: str | None = None
    by: str | None = None
    chart = False
    words = [word.lower() for word in rest]
    while words:
        word = words.pop(0)
        if word in PERIODS and since is None:
            since = word
        elif word == "by" and by is None and words and words[0] in GROUPINGS:
            by = GROUPINGS[words.pop(0)]
        elif word == "chart" and not chart:
            chart = True
        else:
            groupings = ", ".join(f"`by {each}`" for each in BY[:-1]) + f" or `by {BY[-1]}`"
            return _help(
                f"`stats` takes a period (`7d`, `30d`, `90d` or `all`), {groupings}, "
                "and `chart` for a picture: `/winback stats chart 30d by lo`."
            )
    return Command(name=name, since=since, by=by, chart=chart)


def _pause(name: str, rest: list[str]) -> Command:
    reason = html.unescape(" ".join(rest)).strip()[:MAX_REASON] or None
    return Command(name=name, reason=reason)


def _address(name: str, rest: list[str]) -> Command:
    typed = html.unescape(_LINK.sub(r"\1", " ".join(rest))).strip()
    if not typed:
        return _help(f"`{name}` needs a phone number or an email address.")
    try:
        address_kind(typed)
    except (OptOutError, ValueError):
        return _help(f"`{name}` needs a phone number or an email address (that is neither).")
    return Command(name=name, address=typed)


_READERS = {
    "help": lambda name, rest: _help(),
    "segments": _bare,
    "segment": _segment,
    "batches": _bare,
    "approve": _batch,
    "reject": _batch,
    "stats": _stats,
    "rate": _bare,
    "pause": _pause,
    "resume": _bare,
    "whois": _address,
    "optout": _address,
}
