"""Who every trigger leaves alone, and segments: live counts of people over the book."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from core.book.models import Contact, Loan
from core.consent.models import Suppression
from core.outreach.models import COMPLETED
from core.segments import UnknownSegment, segment_counts, segment_counts_by_lo, segment_members
from tests.triggers.factories import (
    NOW,
    QUALIFYING_LOAN,
    SEGMENT_NAMES,
    TODAY,
    default_config,
    enroll,
    make_contact,
    make_lo,
    make_loan,
    newer_funded_loan,
    qualifying,
    set_rate,
    suppress_phone,
)


def _opt_out(channel: str) -> Callable[[Session, Contact], None]:
    def apply(session: Session, contact: Contact) -> None:
        setattr(contact, f"{channel}_consent", "opted_out")
        session.flush()

    return apply


def _suppress_email(session: Session, contact: Contact) -> None:
    session.add(Suppression(kind="email", value=contact.email, reason="bounced",
                            created_by="test", created_at=NOW))  # fmt: skip
    session.flush()


def _no_channel(session: Session, contact: Contact) -> None:
    contact.sms_consent, contact.email_consent = "unknown", "denied"
    session.flush()


def _enroll(status: str) -> Callable[[Session, Contact], None]:
    def apply(session: Session, contact: Contact) -> None:
        enroll(session, contact, old_loan(session, contact), status=status)

    return apply


def old_loan(session: Session, contact: Contact) -> Loan:
    """An older, cheap loan of the person's that qualifies for nothing."""
    return make_loan(session, contact, note_rate="3.0", funded=date(2010, 1, 15),
                     first_payment=date(2010, 3, 1))  # fmt: skip


def _newer_loan(session: Session, contact: Contact) -> None:
    newer_funded_loan(session, contact)


# (why, excluded by the trigger, excluded from the segment)
EXCLUSIONS: dict[str, tuple[Callable[[Session, Contact], None], bool, bool]] = {
    "email_opt_out": (_opt_out("email"), True, True),  # any opt-out is global
    "sms_opt_out": (_opt_out("sms"), True, True),
    "suppressed_phone": (suppress_phone, True, True),
    "suppressed_email": (_suppress_email, True, True),
    "no_channel": (_no_channel, True, True),
    "active_enrollment": (_enroll("active"), True, False),
    "completed_enrollment": (_enroll(COMPLETED), False, False),
    "newer_funded_loan": (_newer_loan, True, True),
}


@pytest.mark.parametrize("exclusion", sorted(EXCLUSIONS))
@pytest.mark.parametrize("trigger", sorted(QUALIFYING_LOAN))
def test_every_trigger_leaves_these_people_alone(
    session: Session, trigger: str, exclusion: str
) -> None:
    set_rate(session, "6.0")
    control = make_contact(session)
    QUALIFYING_LOAN[trigger](session, control)
    person = make_contact(session)
    QUALIFYING_LOAN[trigger](session, person)
    apply, by_trigger, from_segment = EXCLUSIONS[exclusion]
    apply(session, person)
    found = qualifying(session, trigger)
    segment = qualifying(session, trigger, for_segment=True)
    assert control.id in found and control.id in segment
    assert (person.id not in found) is by_trigger
    assert (person.id not in segment) is from_segment


def test_email_only_people_are_reachable_unless_email_was_refused(session: Session) -> None:
    set_rate(session, "6.0")
    email_only = make_contact(session, sms_consent="unknown", email_consent="unknown")
    make_loan(session, email_only)
    no_phone = make_contact(session, phone=None)
    make_loan(session, no_phone)
    assert set(qualifying(session, "rate_drop")) == {email_only.id, no_phone.id}


def test_segment_counts_people_for_all_seven_segments(session: Session) -> None:
    set_rate(session, "6.0")
    for build in QUALIFYING_LOAN.values():
        build(session, make_contact(session))
    two_loans = make_contact(session)
    make_loan(session, two_loans)
    make_loan(session, two_loans, note_rate="7.25")
    enrolled = make_contact(session)
    make_loan(session, enrolled)
    enroll(session, enrolled, old_loan(session, enrolled))
    counts = segment_counts(session=session, now=NOW, config=default_config())
    assert set(counts) == SEGMENT_NAMES
    # One rate-drop person each, a person with two qualifying loans once, the enrolled one too.
    assert counts == {name: 1 for name in SEGMENT_NAMES} | {"refinance": 3}


def test_segments_are_live_queries(session: Session) -> None:
    person = make_contact(session)
    make_loan(session, person)
    config = default_config()
    assert segment_counts(session=session, now=NOW, config=config)["refinance"] == 0
    set_rate(session, "6.0")
    assert segment_counts(session=session, now=NOW, config=config)["refinance"] == 1
    person.email_consent = "opted_out"
    session.flush()
    assert segment_counts(session=session, now=NOW, config=config)["refinance"] == 0


def test_segment_members_best_savings_first_and_by_loan_officer(session: Session) -> None:
    set_rate(session, "6.0")
    larry, ann = make_lo(session), make_lo(session, name="Ann Officer")
    small = make_loan(session, make_contact(session, lo=larry), amount="300000")
    large = make_loan(session, make_contact(session, lo=larry), amount="600000")
    ann_person = make_loan(session, make_contact(session, lo=ann))
    config = default_config()
    members = segment_members(session=session, now=NOW, config=config, segment="refi")
    assert [m.contact_id for m in members] == [
        large.contact_id,
        ann_person.contact_id,
        small.contact_id,
    ]
    assert members[0].lo_email == larry.email
    assert float(members[0].snapshot["monthly_savings"]) > float(
        members[1].snapshot["monthly_savings"]
    )
    mine = segment_members(
        session=session, now=NOW, config=config, segment="refinance", lo_id=ann.id
    )
    assert [m.contact_id for m in mine] == [ann_person.contact_id]
    by_lo = segment_counts_by_lo(session=session, now=NOW, config=config)
    assert (by_lo[larry.email]["refinance"], by_lo[ann.email]["refinance"]) == (2, 1)


def test_unknown_segment_names_the_real_ones(session: Session) -> None:
    with pytest.raises(UnknownSegment, match="refinance, repeat_purchase"):
        segment_members(session=session, now=NOW, config=default_config(), segment="refis")


def test_only_a_loan_funded_later_and_by_today_means_the_person_came_back(
    session: Session,
) -> None:
    set_rate(session, "6.0")
    same_day = make_contact(session)
    make_loan(session, same_day)
    make_loan(session, same_day, note_rate="7.25")  # funded the same day: not newer
    fell_out = make_contact(session)
    make_loan(session, fell_out)
    make_loan(session, fell_out, status="withdrawn", fallout_date=TODAY - timedelta(days=5))
    future = make_contact(session)
    make_loan(session, future)
    make_loan(session, future, note_rate="3.0", funded=TODAY + timedelta(days=3),
              first_payment=TODAY + timedelta(days=60))  # fmt: skip
    came_back = make_contact(session)
    make_loan(session, came_back)
    newer_funded_loan(session, came_back)
    found = qualifying(session, "rate_drop")
    assert {same_day.id, fell_out.id, future.id} <= set(found)
    assert came_back.id not in found
