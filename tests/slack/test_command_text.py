"""Reading the text after `/winback`: every subcommand, Slack's markup, and anything at all."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.command_text import MAX_TEXT, SUBCOMMANDS, Command, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("segments", Command(name="segments")),
        ("  SEGMENTS  ", Command(name="segments")),
        ("segment refi", Command(name="segment", segment="refinance")),
        ("segment Refinance", Command(name="segment", segment="refinance")),
        (
            "segment stalled <@U0LO1|larry>",
            Command(name="segment", segment="stalled", officer="U0LO1"),
        ),
        ("segment refi <@U0LO1>", Command(name="segment", segment="refinance", officer="U0LO1")),
        ("batches", Command(name="batches")),
        ("approve 12", Command(name="approve", batch_id=12)),
        ("reject #7", Command(name="reject", batch_id=7)),
        ("approve 12 1,204", Command(name="approve", batch_id=12, size=1204)),
        ("approve 12 1204", Command(name="approve", batch_id=12, size=1204)),
        ("stats", Command(name="stats")),
        ("stats 7d", Command(name="stats", since="7d")),
        ("stats all by lo", Command(name="stats", since="all", by="lo")),
        ("stats by segment 90d", Command(name="stats", since="90d", by="segment")),
        ("stats by Trigger", Command(name="stats", by="trigger")),
        ("rate", Command(name="rate")),
        ("rates", Command(name="rate")),
        ("pause", Command(name="pause")),
        (
            "pause rates are jumping &amp; we wait",
            Command(name="pause", reason="rates are jumping & we wait"),
        ),
        ("resume", Command(name="resume")),
        ("whois +14155550123", Command(name="whois", address="+14155550123")),
        ("whois (415) 555-0123", Command(name="whois", address="(415) 555-0123")),
        (
            "whois <mailto:ana@example.com|ana@example.com>",
            Command(name="whois", address="ana@example.com"),
        ),
        (
            "optout <tel:+14155550123|+1 415 555 0123>",
            Command(name="optout", address="+14155550123"),
        ),
        ("optout ana@example.com", Command(name="optout", address="ana@example.com")),
        ("help", Command(name="help")),
        ("", Command(name="help")),
        ("   ", Command(name="help")),
    ],
)
def test_each_subcommand_is_read(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("segmnts", "`segmnts` is not a `/winback` command"),
        ("segments now", "`segments` takes nothing after it"),
        ("segment", "Which segment? Segments: refinance (or refi), "),
        ("segment nosuch", "There is no segment `nosuch`"),
        ("segment refi @larry", "with a mention"),
        ("segment refi <@U0LO1> extra", "with a mention"),
        ("approve", "`approve` needs a batch number"),
        ("approve abc", "`approve` needs a batch number"),
        ("approve 0", "`approve` needs a batch number"),
        ("approve -3", "`approve` needs a batch number"),
        ("approve 99999999999", "`approve` needs a batch number"),
        ("approve 1 2 3", "`approve` needs a batch number"),
        ("approve 1 0", "`approve` needs a batch number"),
        ("reject 1 2", "`reject` needs one batch number"),
        ("reject ٣", "`reject` needs one batch number"),
        ("stats 14d", "`stats` takes a period"),
        ("stats 7d 30d", "`stats` takes a period"),
        ("stats by", "`stats` takes a period"),
        ("stats by zip", "`stats` takes a period"),
        ("whois", "`whois` needs a phone number or an email address"),
        ("whois nobody", "(that is neither)"),
        ("optout 123", "(that is neither)"),
        ("x" * (MAX_TEXT + 1), "too long"),
    ],
)
def test_malformed_text_is_help_saying_why(text: str, problem: str) -> None:
    command = parse_command(text)
    assert command.name == "help"
    assert command.problem is not None and problem in command.problem


def test_a_quoted_word_is_short_and_without_markup() -> None:
    command = parse_command("<!channel>" + "y" * 200)
    assert command.problem is not None
    assert "<!channel>" not in command.problem and len(command.problem) < 100


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=MAX_TEXT + 50))
def test_any_text_is_a_command_or_help_and_never_raises(text: str) -> None:
    command = parse_command(text)
    assert command.name in SUBCOMMANDS
    if command.name == "help":
        return
    assert command.problem is None
    if command.name in ("approve", "reject"):
        assert command.batch_id is not None and command.batch_id > 0


_WORDS = st.sampled_from(
    [
        *SUBCOMMANDS,
        "refi",
        "7d",
        "all",
        "by",
        "lo",
        "segment",
        "12",
        "#3",
        "<@U0LO1|x>",
        "a@b.co",
        "+14155550123",
        "<mailto:a@b.co|a@b.co>",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS, max_size=6), st.sampled_from([" ", "  ", "\t", "\n"]))
def test_commandlike_text_never_raises(words: list[str], gap: str) -> None:
    command = parse_command(gap.join(words))
    assert command.name in SUBCOMMANDS
    assert (command.name == "help") == (
        command.problem is not None or not words or words[0] in ("help",)
    )
