"""The one rate parser (SPEC §4): 6.5, 6.500% and 0.065 all mean 6.5 %; outside 1-20 % refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.book.normalize import parse_rate as parse_note_rate
from core.rates.parsers import RateError, parse_rate

# Rates a market can have, to the thousandth of a point.
PLAUSIBLE = st.decimals(min_value="1", max_value="20", places=3)
TOO_HIGH = st.decimals(min_value="20.001", max_value="100000", places=3)
TOO_LOW_PERCENT = st.decimals(min_value="-1000", max_value="0.999", places=3)


def written(rate: Decimal) -> st.SearchStrategy[str]:
    """The ways a person, a rate sheet or an LOS export writes this rate."""
    fraction = f"{rate / 100:f}"
    return st.sampled_from(
        [f"{rate:f}", f"{rate:.3f}%", f" {rate:f} % ", f"{rate:f}%", f"{rate:.4f}", fraction]
    )


@pytest.mark.parametrize("text", ["6.5", "6.500%", "0.065", " 6.5 % ", "6.5 %", "0.0650"])
def test_the_forms_of_six_and_a_half(text: str) -> None:
    assert parse_rate(text) == Decimal("6.5")


@pytest.mark.parametrize(
    "text", ["-5", "0", "25", "20.01", "0.5%", "0.065%", "0.99", "0.005", "", " ", "six", "6,5",
             "6.5.1", "NaN", "inf", "1e1", "$6.5", "%"],
)  # fmt: skip
def test_what_is_not_a_plausible_rate_is_refused_by_the_band(text: str) -> None:
    with pytest.raises(RateError, match="is not a rate from 1 to 20 %"):
        parse_rate(text)


def test_the_band_ends_are_inside() -> None:
    assert (parse_rate("1"), parse_rate("20"), parse_rate("0.2")) == (1, 20, 20)


@given(rate=PLAUSIBLE, data=st.data())
def test_every_way_of_writing_a_plausible_rate_means_it(rate: Decimal, data: st.DataObject) -> None:
    text = data.draw(written(rate))
    # A rate of 1 % written as the fraction 0.01 is still 1 %: the fraction rule covers < 1.
    assert parse_rate(text) == rate


@given(rate=st.one_of(TOO_HIGH, TOO_LOW_PERCENT))
def test_a_rate_outside_the_band_is_refused_however_written(rate: Decimal) -> None:
    for text in (f"{rate:f}%", f" {rate:f} % "):
        with pytest.raises(RateError):
            parse_rate(text)


@given(text=st.text(max_size=30))
def test_no_input_crashes_and_it_means_what_the_importer_reads(text: str) -> None:
    try:
        rate = parse_rate(text)
    except RateError as exc:
        assert "\n" not in str(exc)
        return
    assert Decimal(1) <= rate <= Decimal(20)
    # One parser: whatever the rates side accepts, the importer reads as the same rate.
    assert parse_note_rate(text) == rate
