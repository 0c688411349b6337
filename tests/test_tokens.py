"""Signed link tokens: round trips, tampering, purposes and lifetimes (SPEC §5)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import tokens
from core.tokens import TokenError, sign, verify

SECRET = "s3cret-key-for-tests"
ISSUED = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
URL_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


def make(subject: str | int = 4711, purpose: str = tokens.UNSUBSCRIBE) -> str:
    return sign(secret=SECRET, purpose=purpose, subject=subject, issued_at=ISSUED)


def check(token: str, *, purpose: str = tokens.UNSUBSCRIBE, **kwargs: object) -> str:
    options: dict[str, object] = {"now": ISSUED, "max_age": None}
    options.update(kwargs)
    return verify(secret=SECRET, purpose=purpose, token=token, **options)  # type: ignore[arg-type]


def test_round_trip_returns_the_subject_as_text() -> None:
    assert check(make(4711)) == "4711"
    assert check(make("enrollment:12/step:3")) == "enrollment:12/step:3"


def test_tokens_are_url_safe_and_short() -> None:
    token = make(123456)

    assert URL_SAFE.match(token)
    assert len(token) <= 40  # short enough for an SMS link


def test_unsubscribe_tokens_never_expire() -> None:
    ten_years_later = ISSUED + timedelta(days=3650)

    assert check(make(7), now=ten_years_later, max_age=tokens.max_age_for("unsubscribe")) == "7"


@pytest.mark.parametrize("purpose", [tokens.SAVINGS, tokens.CLICK])
def test_savings_and_click_tokens_live_at_least_ninety_days(purpose: str) -> None:
    max_age = tokens.max_age_for(purpose)
    assert max_age is not None and max_age >= timedelta(days=90)
    token = make(7, purpose)

    assert check(token, purpose=purpose, now=ISSUED + timedelta(days=90), max_age=max_age) == "7"
    with pytest.raises(TokenError, match="expired"):
        check(token, purpose=purpose, now=ISSUED + max_age + timedelta(seconds=1), max_age=max_age)


def test_expiry_edge_is_inclusive() -> None:
    token = make(7, tokens.CLICK)
    age = timedelta(days=90)

    assert check(token, purpose=tokens.CLICK, now=ISSUED + age, max_age=age) == "7"
    with pytest.raises(TokenError):
        check(token, purpose=tokens.CLICK, now=ISSUED + age + timedelta(seconds=1), max_age=age)


def test_a_token_for_one_purpose_is_refused_for_another() -> None:
    with pytest.raises(TokenError):
        check(make(7, tokens.CLICK), purpose=tokens.UNSUBSCRIBE)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forged = sign(secret="other", purpose=tokens.UNSUBSCRIBE, subject=7, issued_at=ISSUED)

    with pytest.raises(TokenError):
        check(forged)


def test_swapping_the_subject_between_tokens_is_refused() -> None:
    mine, theirs = make(1).split("."), make(2).split(".")

    with pytest.raises(TokenError):
        check(".".join([theirs[0], mine[1], mine[2]]))


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "....", "é.é.é"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenError):
        check(token)


def test_naive_times_are_read_as_utc() -> None:
    naive = sign(
        secret=SECRET, purpose=tokens.CLICK, subject=1, issued_at=ISSUED.replace(tzinfo=None)
    )

    assert naive == make(1, tokens.CLICK)


def test_an_empty_secret_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        sign(secret="", purpose=tokens.CLICK, subject=1, issued_at=ISSUED)


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/%"


@given(
    subject=st.one_of(st.integers(min_value=0, max_value=10**12), st.text(min_size=1)),
    position=st.integers(min_value=0),
    replacement=st.sampled_from(ALPHABET),
)
def test_any_single_character_change_is_rejected(
    subject: int | str, position: int, replacement: str
) -> None:
    token = make(subject)
    index = position % len(token)
    tampered = token[:index] + replacement + token[index + 1 :]
    if tampered == token:
        return

    with pytest.raises(TokenError):
        check(tampered)


@given(subject=st.text(min_size=1), purpose=st.sampled_from(sorted(tokens.MAX_AGE)))
def test_any_subject_round_trips(subject: str, purpose: str) -> None:
    token = make(subject, purpose)

    assert URL_SAFE.match(token)
    assert check(token, purpose=purpose) == subject
