"""Properties of how an inbound text is read (COMPLIANCE.md §2), whatever the borrower types.

Core only, no HTTP: `_intent` is exactly what POST /twilio/sms acts on, `classify_reply` what the
loan officer sees for a warm reply.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.compliance.keywords import (
    EXACT_OPT_OUT,
    OPT_OUT,
    OPT_OUT_WORDS,
    classify_inbound,
    normalize,
)
from core.inbound.replies import classify_reply
from core.inbound.sms import _intent

KINDS = {"opt_out", "opt_in", "help", "message"}
CLASSIFICATIONS = {"interested", "question", "not_now", "unknown"}
OPT_OUT_TYPES = st.sampled_from(["", "STOP", "START", "HELP", " stop ", "help", "bogus"])

# Around a keyword: punctuation, symbols and emoji, spaces of every kind, control characters.
NOT_LETTERS = st.characters(categories=("P", "S", "Z", "Cc"))
AROUND = st.text(NOT_LETTERS, max_size=6)
# Any character a phone can send, letters in every script and unpaired marks included.
ANYTHING = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


@st.composite
def any_case(draw: st.DrawFn, word: str) -> str:
    """`word` with each letter upper- or lower-case at random."""
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(ch.upper() if up else ch.lower() for ch, up in zip(word, flips, strict=True))


@st.composite
def standalone_keyword(draw: st.DrawFn) -> str:
    """A §2 opt-out keyword as the whole message: any case, anything but letters around it,
    and anything but letters between the words of "STOP ALL" / "OPT OUT"."""
    words = draw(st.sampled_from(sorted(EXACT_OPT_OUT))).split()
    cased = [draw(any_case(word)) for word in words]
    gaps = [draw(st.text(NOT_LETTERS, min_size=1, max_size=3)) for _ in cased[1:]]
    body = cased[0] + "".join(gap + word for gap, word in zip(gaps, cased[1:], strict=True))
    return draw(AROUND) + body + draw(AROUND)


@settings(max_examples=400)
@given(text=standalone_keyword(), opt_out_type=OPT_OUT_TYPES)
def test_a_standalone_opt_out_keyword_is_always_an_opt_out(text: str, opt_out_type: str) -> None:
    # Whatever Twilio's OptOutType says: an opt-out is never read as less.
    intent = _intent(text, opt_out_type)
    assert intent.kind == OPT_OUT, (text, intent)
    assert not intent.ambiguous  # the whole message is the keyword: nothing for the LO to read


@settings(max_examples=200)
@given(
    before=st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=6),
    keyword=st.sampled_from(sorted(OPT_OUT_WORDS)),
    after=st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), max_size=6),
    upper=st.booleans(),
)
def test_an_opt_out_word_standing_anywhere_in_a_message_is_an_opt_out(
    before: list[str], keyword: str, after: list[str], upper: bool
) -> None:
    text = " ".join([*before, keyword.upper() if upper else keyword, *after])
    assert classify_inbound(text).kind == OPT_OUT, text


@settings(max_examples=300)
@given(text=ANYTHING, opt_out_type=st.one_of(OPT_OUT_TYPES, st.text(max_size=10)))
def test_any_text_is_read_without_raising_into_known_kinds(text: str, opt_out_type: str) -> None:
    intent = _intent(text, opt_out_type)
    assert intent.kind in KINDS
    if intent.wrong_number or intent.ambiguous:
        assert intent.kind == OPT_OUT
    assert classify_reply(text) in CLASSIFICATIONS


@settings(max_examples=200)
@given(
    reaction=st.sampled_from(["Liked", "Loved", "Disliked", "Laughed at", "Emphasized"]),
    quoted=st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters='“”"'), max_size=160
    ),
)
def test_a_tapback_is_read_by_its_reaction_not_by_our_quoted_words(
    reaction: str, quoted: str
) -> None:
    # Our texts say "Reply STOP to opt out"; an iPhone quotes them back in every reaction.
    text = f"{reaction} “{quoted} Reply STOP to opt out.”"
    assert classify_inbound(text).kind == "message"
    assert classify_reply(text) in CLASSIFICATIONS


@given(ANYTHING)
def test_normalizing_twice_changes_nothing(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip() and "  " not in once
