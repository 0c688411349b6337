"""SMS segment counting: GSM-7 vs UCS-2, extension characters, emoji, segment boundaries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.tracks.smslength import sms_encoding, sms_segments


def test_empty_text_costs_nothing() -> None:
    assert sms_segments("") == ("GSM-7", 0)


def test_160_gsm_characters_fit_one_segment_and_161_need_two() -> None:
    assert sms_segments("a" * 160) == ("GSM-7", 1)
    assert sms_segments("a" * 161) == ("GSM-7", 2)


def test_split_messages_carry_153_characters_each() -> None:
    assert sms_segments("a" * 306) == ("GSM-7", 2)
    assert sms_segments("a" * 307) == ("GSM-7", 3)


def test_euro_sign_is_gsm_but_counts_two() -> None:
    assert sms_segments("€" * 80) == ("GSM-7", 1)
    assert sms_segments("a" * 159 + "€") == ("GSM-7", 2)
    assert sms_segments("a" * 159 + "e") == ("GSM-7", 1)


def test_extension_character_is_never_split_across_segments() -> None:
    # 306 septets, but the euro sign cannot straddle the 153 boundary, so a third part is needed.
    assert sms_segments("a" * 152 + "€" + "a" * 152) == ("GSM-7", 3)


def test_accented_letters_in_the_gsm_table_stay_gsm_and_others_do_not() -> None:
    assert sms_encoding("José Müller, Ñoño") == "GSM-7"
    assert sms_encoding("José Müller, Ñandú") == "UCS-2"  # ú is not in GSM 03.38


def test_one_emoji_switches_to_ucs2_with_70_unit_limit() -> None:
    assert sms_segments("a" * 68 + "😀") == ("UCS-2", 1)  # 68 + a surrogate pair = 70 units
    assert sms_segments("a" * 69 + "😀") == ("UCS-2", 2)
    assert sms_segments("a" * 70 + "’") == ("UCS-2", 2)  # a curly apostrophe is not GSM


def test_ucs2_parts_are_67_units_and_surrogate_pairs_stay_whole() -> None:
    assert sms_segments("ü" * 67 * 2 + "’") == ("UCS-2", 3)
    assert sms_segments("’" * 134) == ("UCS-2", 2)
    assert sms_segments("’" * 66 + "😀" + "’" * 66) == ("UCS-2", 3)


_WILD = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("aZ 9.,€{}[]^~|\\\nñé")),
        st.sampled_from(["😀", "’", "—", "你"]),
        st.characters(),
    ),
    max_size=500,
)


@given(_WILD)
def test_segments_never_shrink_as_text_grows(text: str) -> None:
    counts = [sms_segments(text[:n])[1] for n in range(len(text) + 1)]
    assert counts == sorted(counts)


@given(_WILD.filter(bool))
def test_non_empty_text_is_at_least_one_segment(text: str) -> None:
    encoding, segments = sms_segments(text)
    assert segments >= 1
    assert encoding in ("GSM-7", "UCS-2")
