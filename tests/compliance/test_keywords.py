"""Inbound SMS keywords and opt-out intent (COMPLIANCE.md §2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.compliance.keywords import EXACT_OPT_OUT, Intent, classify_inbound, normalize

TWILIO_CATCHES = ["STOP", "stop", "  Stop!! ", "STOPALL", "UNSUBSCRIBE", "Cancel.", "END"]
TWILIO_CATCHES += ["quit", "REVOKE", "OPTOUT", "🛑 STOP 🛑"]


@pytest.mark.parametrize("text", TWILIO_CATCHES)
def test_twilio_keywords_are_exact_opt_outs(text: str) -> None:
    intent = classify_inbound(text)
    assert intent.kind == "opt_out"
    assert intent.exact_keyword
    assert not intent.ambiguous and not intent.wrong_number


@pytest.mark.parametrize("text", ["STOP ALL", "REMOVE", "remove.", "OPT-OUT", "opt out"])
def test_exact_list_words_twilio_passes_on_are_opt_outs_we_confirm(text: str) -> None:
    intent = classify_inbound(text)
    assert intent.kind == "opt_out"
    assert not intent.exact_keyword


@pytest.mark.parametrize(
    "text",
    [
        "STOP PLEASE",
        "stop now thanks",
        "Please stop",
        "Don't text me anymore",
        "do not text this number",
        "Stop texting me",
        "please remove me from your list",
        "Take me off your list",
        "leave me alone",
        "No más",
        "no mas por favor",
        "ALTO",
        "parar",
        "Basta ya!",
        "I want to unsubscribe",
    ],
)
def test_opt_out_by_intent_reaches_us_and_is_honored(text: str) -> None:
    intent = classify_inbound(text)
    assert intent.kind == "opt_out"
    assert not intent.exact_keyword


def test_stop_please_is_a_clear_opt_out_not_an_ambiguous_one() -> None:
    assert classify_inbound("STOP PLEASE") == Intent("opt_out", matched="stop")


def test_a_keyword_inside_an_ordinary_sentence_is_an_opt_out_the_lo_hears_about() -> None:
    intent = classify_inbound("Can we talk at the end of the week?")
    assert intent.kind == "opt_out"
    assert intent.ambiguous
    assert intent.matched == "end"


@pytest.mark.parametrize(
    "text",
    [
        "stopped by the office yesterday",
        "Stopping by tomorrow at 3",
        "Yes I am interested, call me",
        "What rate could I get?",
        "Thanks!",
        "",
        "   ",
        "unstoppable",
    ],
)
def test_ordinary_replies_are_messages(text: str) -> None:
    assert classify_inbound(text) == Intent("message")


@pytest.mark.parametrize("text", ["wrong number", "Wrong number!", "You have the WRONG NUMBER"])
def test_wrong_number_opts_out_and_marks_the_number(text: str) -> None:
    intent = classify_inbound(text)
    assert intent.kind == "opt_out"
    assert intent.wrong_number


def test_wrong_number_in_spanish() -> None:
    assert classify_inbound("Número equivocado").wrong_number


@pytest.mark.parametrize(
    ("text", "keyword"), [("START", "start"), ("yes", "yes"), ("Unstop!", "unstop")]
)
def test_opt_in_keywords(text: str, keyword: str) -> None:
    assert classify_inbound(text) == Intent("opt_in", exact_keyword=True, matched=keyword)


@pytest.mark.parametrize("text", ["HELP", "info", "Help?"])
def test_help_keywords(text: str) -> None:
    intent = classify_inbound(text)
    assert intent.kind == "help"
    assert intent.exact_keyword


def test_opt_out_wins_over_help_and_opt_in_words() -> None:
    assert classify_inbound("HELP STOP").kind == "opt_out"
    assert classify_inbound("yes stop").kind == "opt_out"


def test_normalize_strips_case_punctuation_accents_and_apostrophes() -> None:
    assert normalize("  No   MÁS!!! ") == "no mas"
    assert normalize("Don’t text") == "dont text"
    assert normalize("OPT-OUT") == "opt out"


@given(
    keyword=st.sampled_from(sorted(EXACT_OPT_OUT)),
    before=st.text(alphabet=" .,!?-*", max_size=4),
    after=st.text(alphabet=" .,!?-*", max_size=4),
    upper=st.booleans(),
)
def test_any_exact_keyword_survives_case_and_punctuation(
    keyword: str, before: str, after: str, upper: bool
) -> None:
    text = before + (keyword.upper() if upper else keyword) + after
    assert classify_inbound(text).kind == "opt_out"


@given(st.text(max_size=80))
def test_every_message_gets_one_of_the_four_kinds(text: str) -> None:
    intent = classify_inbound(text)
    assert intent.kind in ("opt_out", "opt_in", "help", "message")
    if intent.wrong_number or intent.ambiguous:
        assert intent.kind == "opt_out"
