"""The holdout: a stable ~5 % of each approved batch qualifies, is recorded, and gets nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.batches.candidate import Candidate
from core.batches.models import Batch, BatchMember
from core.batches.service import create_batch
from core.book.models import FUNDED, Contact
from core.config import Config, HoldoutConfig
from core.flows import approve_batch
from core.holdout import HeldOut, holdout_score, is_held_out
from core.outreach.models import Enrollment, Message
from core.outreach.service import enroll_batch
from core.stats import holdout_lift
from core.tracks.config import load_tracks
from tests.outreach import NOW
from tests.triggers.factories import make_contact, make_loan


def test_assignment_is_stable_and_about_the_fraction() -> None:
    ids = range(1, 10_001)
    held = [i for i in ids if is_held_out("rate_drop", i, 0.05)]
    assert 450 <= len(held) <= 550  # 5 % of 10,000, well inside four standard deviations
    assert held == [i for i in ids if is_held_out("rate_drop", i, 0.05)]  # same people again
    # A larger fraction only adds people: nobody held out at 5 % is messaged at 10 %.
    assert set(held) <= {i for i in ids if is_held_out("rate_drop", i, 0.10)}
    # Each trigger has its own draw, so one unlucky person is not held out of everything.
    other = {i for i in ids if is_held_out("anniversary", i, 0.05)}
    assert len(other & set(held)) < 60
    assert all(0 <= holdout_score("rate_drop", i) < 1 for i in range(1, 200))
    assert not any(is_held_out("rate_drop", i, 0.0) for i in ids)


def test_per_trigger_fractions_and_their_validation() -> None:
    config = HoldoutConfig(fraction=0.05, triggers={"rate_drop": 0.2})
    assert (config.fraction_for("rate_drop"), config.fraction_for("anniversary")) == (0.2, 0.05)
    for bad in ({"rate_dorp": 0.1}, {"rate_drop": 0.9}):
        try:
            HoldoutConfig(triggers=bad)
        except ValueError as exc:
            assert "rate_dorp" in str(exc) or "between 0 and 0.5" in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")


def _pending_batch(session: Session, people: int) -> Batch:
    candidates = []
    for _ in range(people):
        contact = make_contact(session)
        loan = make_loan(session, contact)
        candidates.append(Candidate(contact.id, loan.id, "milestone", {}))
    batch = create_batch(session=session, trigger="loan_age", segment="repeat_purchase",
                         candidates=candidates, now=NOW, approval_required=True,
                         expiry_hours=72)  # fmt: skip
    assert batch is not None
    return batch


def test_approving_holds_out_the_hashed_people_and_messages_only_the_rest(
    session: Session,
) -> None:
    batch = _pending_batch(session, 200)
    config = Config(holdout=HoldoutConfig(fraction=0.1))
    _, result = approve_batch(session=session, batch_id=batch.id, by="U_MANAGER", now=NOW,
                              tracks=load_tracks(), config=config)  # fmt: skip
    members = session.scalars(select(HeldOut).where(HeldOut.batch_id == batch.id)).all()
    everyone = session.scalars(
        select(BatchMember.contact_id).where(BatchMember.batch_id == batch.id)
    ).all()
    expected = {c for c in everyone if is_held_out("loan_age", c, 0.1)}
    assert {m.contact_id for m in members} == expected == set(result.held_out)
    assert 5 <= len(expected) <= 40
    assert result.enrolled == 200 - len(expected)
    # Nobody held out has an enrollment or a single message, now or later.
    messaged = set(session.scalars(select(Message.contact_id)))
    enrolled = set(session.scalars(select(Enrollment.contact_id)))
    assert not (expected & messaged) and not (expected & enrolled)
    assert len(enrolled) == result.enrolled
    # And it is written down, with the fraction used.
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "batch.enrolled")).one()
    assert event.details["held_out_for_measurement"] == len(expected)
    assert event.details["holdout_fraction"] == 0.1
    assert {m.fraction for m in members} == {0.1}


def test_people_already_on_a_track_are_not_counted_as_held_out(session: Session) -> None:
    batch = _pending_batch(session, 60)
    tracks = load_tracks()
    first = enroll_batch(session=session, batch=batch, now=NOW, tracks=tracks, holdout=0.0)
    assert first.enrolled == 60 and not first.held_out
    second = enroll_batch(session=session, batch=batch, now=NOW, tracks=tracks, holdout=0.5)
    assert second.enrolled == 0 and second.already_in_a_sequence == 60
    assert not second.held_out  # busy people were never candidates for the holdout
    assert session.scalar(select(func.count()).select_from(HeldOut)) == 0


def test_a_zero_fraction_turns_the_holdout_off(session: Session) -> None:
    batch = _pending_batch(session, 50)
    config = Config(holdout=HoldoutConfig(fraction=0.05, triggers={"loan_age": 0.0}))
    _, result = approve_batch(session=session, batch_id=batch.id, by="U_MANAGER", now=NOW,
                              tracks=load_tracks(), config=config)  # fmt: skip
    assert result.enrolled == 50 and not result.held_out


def test_the_lift_compares_the_two_groups_as_assigned(session: Session) -> None:
    batch = _pending_batch(session, 400)
    config = Config(holdout=HoldoutConfig(fraction=0.25))
    _, result = approve_batch(session=session, batch_id=batch.id, by="U_MANAGER", now=NOW,
                              tracks=load_tracks(), config=config)  # fmt: skip
    held = sorted(result.held_out)
    messaged = sorted(result.people)
    # 40 messaged people and 3 held-out people refinance within the window; one more messaged
    # person funds after the window and one applied before the approval: neither counts.
    funded_on = NOW.date() + timedelta(days=30)
    for contact_id in messaged[:40] + held[:3]:
        make_loan(session, session.get_one(Contact, contact_id), status=FUNDED,
                  funded=funded_on, first_payment=funded_on + timedelta(days=45))  # fmt: skip
    make_loan(session, session.get_one(Contact, messaged[50]), status=FUNDED,
              funded=NOW.date() + timedelta(days=200), first_payment=None)  # fmt: skip
    make_loan(session, session.get_one(Contact, messaged[51]), status=FUNDED,
              funded=funded_on, application_date=NOW.date() - timedelta(days=3),
              first_payment=None)  # fmt: skip
    session.flush()
    [lift] = holdout_lift(session, since=None, now=NOW + timedelta(days=300), window_days=120)
    assert (lift.trigger, lift.messaged, lift.holdout) == ("loan_age", len(messaged), len(held))
    assert (lift.messaged_funded, lift.holdout_funded) == (40, 3)
    p1, p0 = 40 / len(messaged), 3 / len(held)
    assert lift.lift == round(p1 - p0, 4)
    se = (p1 * (1 - p1) / len(messaged) + p0 * (1 - p0) / len(held)) ** 0.5
    assert lift.low == round(p1 - p0 - 1.959964 * se, 4)
    assert lift.high == round(p1 - p0 + 1.959964 * se, 4)
    assert lift.note is None


def test_too_few_people_says_not_enough_data_yet(session: Session) -> None:
    batch = _pending_batch(session, 40)
    _, result = approve_batch(session=session, batch_id=batch.id, by="U_MANAGER", now=NOW,
                              tracks=load_tracks(), config=Config())  # fmt: skip
    [lift] = holdout_lift(session, since=None, now=NOW, window_days=120)
    assert lift.lift is None and lift.low is None
    assert lift.note is not None and lift.note.startswith("not enough data yet")
    assert lift.messaged == result.enrolled
