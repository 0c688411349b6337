"""Date triggers at their edges: loan age, closing and fallout anniversaries, ARM resets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core.triggers.base import add_years
from tests.triggers.factories import TODAY, config_with, make_loan, qualifying


def on(day: date) -> datetime:
    """Mid-afternoon UTC on `day`."""
    return datetime(day.year, day.month, day.day, 15, 0, tzinfo=UTC)


def funded_loan(session: Session, funded: date, **fields: object) -> int:
    """A 5 % loan funded on `funded` (too cheap for a rate drop); its contact id."""
    loan = make_loan(session, note_rate="5.0", funded=funded,
                     first_payment=funded + timedelta(days=45), **fields)  # fmt: skip
    return loan.contact_id


# loan_age


@pytest.mark.parametrize("years", [3, 5, 7])
def test_loan_age_on_the_milestone_day(session: Session, years: int) -> None:
    person = funded_loan(session, add_years(TODAY, -years))
    found = qualifying(session, "loan_age")
    assert set(found) == {person}
    assert found[person].snapshot["loan_age_years"] == years


def test_loan_age_outside_the_milestones_and_the_window(session: Session) -> None:
    tomorrow = funded_loan(session, add_years(TODAY + timedelta(days=1), -3))
    four_years = funded_loan(session, add_years(TODAY, -4))
    window_end = funded_loan(session, add_years(TODAY - timedelta(days=29), -5))
    past_window = funded_loan(session, add_years(TODAY - timedelta(days=30), -5))
    found = qualifying(session, "loan_age")
    assert window_end in found
    assert not {tomorrow, four_years, past_window} & set(found)


def test_loan_age_ignores_applications_that_never_funded(session: Session) -> None:
    make_loan(session, status="withdrawn", fallout_date=add_years(TODAY, -3))
    assert not qualifying(session, "loan_age")


# closing_anniversary


def test_closing_anniversary_30_days_ahead_but_not_31(session: Session) -> None:
    in_30 = funded_loan(session, add_years(TODAY + timedelta(days=30), -2))
    in_31 = funded_loan(session, add_years(TODAY + timedelta(days=31), -2))
    today = funded_loan(session, add_years(TODAY, -1))
    found = qualifying(session, "closing_anniversary")
    assert set(found) == {in_30, today}
    assert in_31 not in found
    assert found[in_30].snapshot["anniversary_date"] == (TODAY + timedelta(days=30)).isoformat()
    assert found[in_30].snapshot["anniversary_years"] == 2
    assert found[today].snapshot["anniversary_years"] == 1


def test_a_closing_less_than_a_year_ago_has_no_anniversary_yet(session: Session) -> None:
    funded_loan(session, TODAY)  # closed today: the "anniversary" is today, year zero
    funded_loan(session, TODAY - timedelta(days=5))
    first = funded_loan(session, TODAY + timedelta(days=30) - timedelta(days=365))
    assert set(qualifying(session, "closing_anniversary")) == {first}


@pytest.mark.parametrize(
    ("today", "anniversary"),
    [
        (date(2027, 1, 29), "2027-02-28"),  # a common year: celebrated on Feb 28, 30 days ahead
        (date(2028, 1, 30), "2028-02-29"),  # a leap year: on Feb 29 itself, 30 days ahead
        (date(2027, 1, 28), None),  # Feb 28, 2027 is 31 days ahead
        (date(2028, 1, 29), None),  # Feb 29, 2028 is 31 days ahead
    ],
)
def test_a_feb_29_closing(session: Session, today: date, anniversary: str | None) -> None:
    person = funded_loan(session, date(2024, 2, 29))
    found = qualifying(session, "closing_anniversary", now=on(today))
    if anniversary is None:
        assert person not in found
    else:
        assert found[person].snapshot["anniversary_date"] == anniversary


# fallout_anniversary


def fallout(session: Session, days_ago: int, status: str = "withdrawn", today: date = TODAY) -> int:
    """An application that fell out `days_ago` days before `today`; its contact id."""
    loan = make_loan(session, status=status, fallout_date=today - timedelta(days=days_ago))
    return loan.contact_id


@pytest.mark.parametrize(
    ("days_ago", "qualifies"),
    [
        (89, False),
        (90, True),
        (103, True),  # the last day of the two-week window
        (104, False),
        (181, False),
        (182, True),  # six months
        (364, False),
        (365, True),  # a year
    ],
)
def test_fallout_anniversary_offsets(session: Session, days_ago: int, qualifies: bool) -> None:
    person = fallout(session, days_ago)
    found = qualifying(session, "fallout_anniversary")
    assert (person in found) is qualifies
    if qualifies:
        assert found[person].snapshot["fallout_days"] == days_ago


@pytest.mark.parametrize("status", ["withdrawn", "incomplete", "approved_not_accepted"])
def test_every_kind_of_fallout_counts(session: Session, status: str) -> None:
    person = fallout(session, 90, status)
    assert set(qualifying(session, "fallout_anniversary")) == {person}


def test_active_applications_are_not_fallouts(session: Session) -> None:
    make_loan(session, status="active", fallout_date=TODAY - timedelta(days=90))
    assert not qualifying(session, "fallout_anniversary")


def test_denied_only_after_the_cooling_period(session: Session) -> None:
    inside = fallout(session, 90, "denied")
    after = fallout(session, 182, "denied")
    found = qualifying(session, "fallout_anniversary")
    assert after in found
    assert inside not in found


@pytest.mark.parametrize(("cooling_days", "qualifies"), [(182, True), (183, False)])
def test_denied_cooling_period_edge(session: Session, cooling_days: int, qualifies: bool) -> None:
    person = fallout(session, 182, "denied")
    config = config_with(fallout_anniversary={"denied_cooling_days": cooling_days})
    assert (person in qualifying(session, "fallout_anniversary", config=config)) is qualifies


def test_stalled_segment_counts_every_stalled_application(session: Session) -> None:
    between_offsets = fallout(session, 120)
    cooling = fallout(session, 120, "denied")
    segment = qualifying(session, "fallout_anniversary", for_segment=True)
    assert between_offsets in segment
    assert cooling not in segment
    assert between_offsets not in qualifying(session, "fallout_anniversary")


# arm_reset


@pytest.mark.parametrize(
    ("days_ahead", "qualifies"), [(-1, False), (0, True), (180, True), (181, False)]
)
def test_arm_reset_within_180_days(session: Session, days_ahead: int, qualifies: bool) -> None:
    reset = TODAY + timedelta(days=days_ahead)
    person = funded_loan(session, date(2021, 6, 14), is_arm=True, arm_first_adjustment_date=reset)
    found = qualifying(session, "arm_reset")
    assert (person in found) is qualifies
    if qualifies:
        assert found[person].snapshot["days_to_reset"] == days_ahead


def test_a_fixed_rate_loan_has_no_reset(session: Session) -> None:
    funded_loan(session, date(2021, 6, 14), arm_first_adjustment_date=TODAY + timedelta(days=10))
    assert not qualifying(session, "arm_reset")
