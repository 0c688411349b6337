"""Batches: one per trigger per evaluation, idempotent, expiring, decided with an audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.audit.models import AuditEvent
from core.batches.models import Batch
from core.batches.service import BatchError, BatchExpired, expire_pending, get_batch, members
from core.book.models import Contact
from core.config import Config, load_config
from core.flows import Evaluation, approve_batch, evaluate, reject_batch
from core.outreach.models import ACTIVE, COMPLETED, Enrollment, Message
from core.rates.models import MarketRate
from core.triggers.registry import TRIGGERS
from tests.triggers.factories import (
    NOW,
    QUALIFYING_LOAN,
    TODAY,
    config_with,
    default_config,
    make_contact,
    make_loan,
    set_rate,
    shipped_tracks,
)

RATE_DROP_WHY = {
    "note_rate",
    "offer_rate",
    "rate_as_of",
    "rate_source",
    "drop_points",
    "current_payment",
    "new_payment",
    "monthly_savings",
    "closing_costs",
    "break_even_months",
    "payments_made",
    "closing_date",
}


def run(session: Session, now: datetime = NOW, only: list[str] | None = None) -> Evaluation:
    """One evaluation with the shipped configuration and tracks."""
    return evaluate(
        session=session, now=now, config=default_config(), tracks=shipped_tracks(), only=only
    )


def rate_drop_batch(session: Session, people: int = 1) -> tuple[Batch, list[int]]:
    """A pending rate-drop batch of `people` new people, created on NOW; their contact ids."""
    set_rate(session, "6.0")
    ids = [make_loan(session).contact_id for _ in range(people)]
    (batch,) = run(session, only=["rate_drop"]).batches
    return batch, ids


def audit(session: Session, action: str) -> list[AuditEvent]:
    """The audit events of one action."""
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_one_batch_per_trigger_with_why_each_person_qualified(session: Session) -> None:
    set_rate(session, "6.0")
    for build in QUALIFYING_LOAN.values():
        build(session, make_contact(session))
    both = make_contact(session)  # two qualifying loans: one member, the bigger savings
    make_loan(session, both, note_rate="7.0")
    better = make_loan(session, both, note_rate="7.5")
    result = run(session)
    by_trigger = {batch.trigger: batch for batch in result.batches}
    assert len(result.batches) == len(by_trigger) == len(QUALIFYING_LOAN)
    assert {t: (b.size, b.status) for t, b in by_trigger.items()} == {
        t: (1, "approved") for t in QUALIFYING_LOAN
    } | {"rate_drop": (2, "pending_approval")}
    rate_batch = by_trigger["rate_drop"]
    assert (rate_batch.rate, rate_batch.rate_product) == (Decimal("6.0"), "30y")
    assert rate_batch.expires_at == NOW + timedelta(hours=72)
    assert "set manually" in (rate_batch.rate_source or "")
    rate_members = {m.contact_id: m for m in members(session=session, batch_id=rate_batch.id)}
    assert rate_members[both.id].loan_id == better.id
    for member in rate_members.values():
        assert set(member.snapshot) >= RATE_DROP_WHY
        assert member.offer_rate == Decimal("6.0")
        savings = Decimal(member.snapshot["monthly_savings"])
        assert member.monthly_savings_cents == int(savings * 100) > 0
    for trigger, batch in by_trigger.items():
        assert batch.segment == {"rate_drop": "refinance"}.get(trigger, batch.segment)
        assert all(m.snapshot for m in members(session=session, batch_id=batch.id))
    # The auto-approved ones are enrolled at once; the rate-drop one waits for a manager.
    assert set(result.enrolled) == {b.id for t, b in by_trigger.items() if t != "rate_drop"}
    assert all(outcome.enrolled == 1 for outcome in result.enrolled.values())


def test_evaluating_twice_on_the_same_data_creates_nothing(session: Session) -> None:
    set_rate(session, "6.0")
    for build in QUALIFYING_LOAN.values():
        build(session, make_contact(session))
    assert len(run(session).batches) == len(QUALIFYING_LOAN)
    assert run(session).batches == []
    assert run(session, NOW + timedelta(hours=1)).batches == []
    newcomer = make_loan(session)
    (batch,) = run(session, NOW + timedelta(hours=2)).batches
    assert batch.trigger == "rate_drop"
    assert [m.contact_id for m in members(session=session, batch_id=batch.id)] == [
        newcomer.contact_id
    ]


@pytest.mark.parametrize("trigger", sorted(set(QUALIFYING_LOAN) - {"rate_drop"}))
def test_an_occasion_is_batched_once_even_after_the_track_ends(
    session: Session, trigger: str
) -> None:
    QUALIFYING_LOAN[trigger](session, make_contact(session))
    (batch,) = run(session, only=[trigger]).batches
    session.execute(update(Enrollment).values(status=COMPLETED))
    assert run(session, NOW + timedelta(days=1), only=[trigger]).batches == []
    assert batch.size == 1


def test_a_pending_rate_drop_is_not_batched_twice_even_without_a_cooldown(
    session: Session,
) -> None:
    set_rate(session, "6.0")
    make_loan(session)
    config = config_with(rate_drop={"cooldown_days": 0})
    tracks = shipped_tracks()
    first = evaluate(session=session, now=NOW, config=config, tracks=tracks).batches
    assert [b.trigger for b in first] == ["rate_drop"]
    assert evaluate(session=session, now=NOW, config=config, tracks=tracks).batches == []


@pytest.mark.parametrize(
    ("after", "status"),
    [(timedelta(hours=72) - timedelta(microseconds=1), "pending_approval"),
     (timedelta(hours=72), "expired")],
)  # fmt: skip
def test_pending_batches_expire_after_exactly_72_hours(
    session: Session, after: timedelta, status: str
) -> None:
    batch, _ = rate_drop_batch(session)
    expired = expire_pending(session=session, now=NOW + after)
    assert [b.id for b in expired] == ([batch.id] if status == "expired" else [])
    assert get_batch(session=session, batch_id=batch.id).status == status
    assert len(audit(session, "batch.expired")) == (status == "expired")


def test_an_expired_batch_members_can_qualify_again(session: Session) -> None:
    batch, (person,) = rate_drop_batch(session)
    later = NOW + timedelta(hours=72)
    assert run(session, later, only=["rate_drop"]).batches == []  # still pending until expired
    expire_pending(session=session, now=later)
    assert not any(m.live for m in members(session=session, batch_id=batch.id))
    (again,) = run(session, later, only=["rate_drop"]).batches
    assert again.id != batch.id
    assert [m.contact_id for m in members(session=session, batch_id=again.id)] == [person]


def test_approving_after_the_expiry_is_refused(session: Session) -> None:
    batch, _ = rate_drop_batch(session)
    with pytest.raises(BatchError, match=f"batch {batch.id} expired at .*evaluate again"):
        approve_batch(session=session, batch_id=batch.id, by="maria",
                      now=NOW + timedelta(hours=72), tracks=shipped_tracks())  # fmt: skip
    # Once the scheduler has recorded the expiry, the refusal names it.
    expire_pending(session=session, now=NOW + timedelta(hours=72))
    with pytest.raises(BatchError, match=f"batch {batch.id} is already expired"):
        approve_batch(session=session, batch_id=batch.id, by="maria",
                      now=NOW + timedelta(hours=73), tracks=shipped_tracks())  # fmt: skip


def test_approve_enrolls_everyone_and_schedules_every_track_step(session: Session) -> None:
    batch, people = rate_drop_batch(session, people=2)
    decided_at = NOW + timedelta(hours=3)
    approved, outcome = approve_batch(
        session=session, batch_id=batch.id, by="maria", now=decided_at, tracks=shipped_tracks()
    )
    assert (approved.status, approved.decided_by, approved.decided_at) == (
        "approved", "maria", decided_at)  # fmt: skip
    steps = shipped_tracks()["refinance"].steps
    assert (outcome.enrolled, outcome.already_in_a_sequence) == (2, 0)
    assert outcome.messages_scheduled == 2 * len(steps)
    enrollments = list(session.scalars(select(Enrollment)))
    assert sorted(e.contact_id for e in enrollments) == sorted(people)
    assert {(e.track, e.status) for e in enrollments} == {("refinance", ACTIVE)}
    for enrollment in enrollments:
        scheduled = session.scalars(
            select(Message).where(Message.enrollment_id == enrollment.id).order_by(Message.step)
        ).all()
        assert [(m.step, m.channel, m.status, m.due_at) for m in scheduled] == [
            (s.number, s.channel, "scheduled", decided_at + timedelta(days=s.delay_days))
            for s in steps
        ]
    (event,) = audit(session, "batch.approved")
    assert (event.actor, event.subject_id) == ("maria", str(batch.id))


def test_approving_twice_names_the_first_approver(session: Session) -> None:
    batch, _ = rate_drop_batch(session)
    approve_batch(session=session, batch_id=batch.id, by="maria", now=NOW, tracks=shipped_tracks())
    with pytest.raises(BatchError, match=f"batch {batch.id} is already approved by maria"):
        approve_batch(session=session, batch_id=batch.id, by="sam", now=NOW,
                      tracks=shipped_tracks())  # fmt: skip
    with pytest.raises(BatchError, match="already approved by maria"):
        reject_batch(session=session, batch_id=batch.id, by="sam", now=NOW)
    assert len(list(session.scalars(select(Enrollment)))) == 1
    assert [e.actor for e in audit(session, "batch.approved")] == ["maria"]


def test_reject_records_who_and_releases_the_members(session: Session) -> None:
    batch, (person,) = rate_drop_batch(session)
    rejected = reject_batch(session=session, batch_id=batch.id, by="sam", now=NOW)
    assert (rejected.status, rejected.decided_by) == ("rejected", "sam")
    (event,) = audit(session, "batch.rejected")
    assert (event.actor, event.subject_id) == ("sam", str(batch.id))
    assert not any(m.live for m in members(session=session, batch_id=batch.id))
    assert list(session.scalars(select(Enrollment))) == []
    (again,) = run(session, NOW + timedelta(days=1), only=["rate_drop"]).batches
    assert [m.contact_id for m in members(session=session, batch_id=again.id)] == [person]


def test_deciding_a_batch_that_does_not_exist(session: Session) -> None:
    with pytest.raises(BatchError, match="there is no batch 999999"):
        reject_batch(session=session, batch_id=999999, by="sam", now=NOW)


def test_a_member_already_in_a_sequence_is_not_enrolled_twice(session: Session) -> None:
    batch, (person,) = rate_drop_batch(session)
    # Between the evaluation and the approval, a stalled application of theirs was picked up by
    # a trigger this broker ranks above rate drops.
    first = ("fallout_anniversary", "rate_drop")
    stalled_first = load_config(
        overrides={"triggers": {"priority": [*first, *(n for n in TRIGGERS if n not in first)]}}
    )
    QUALIFYING_LOAN["fallout_anniversary"](session, session.get_one(Contact, person))
    (stalled,) = evaluate(session=session, now=NOW, config=stalled_first, tracks=shipped_tracks(),
                          only=["fallout_anniversary"]).batches  # fmt: skip
    assert stalled.status == "approved"
    _, outcome = approve_batch(
        session=session, batch_id=batch.id, by="maria", now=NOW, tracks=shipped_tracks()
    )
    assert (outcome.enrolled, outcome.already_in_a_sequence) == (0, 1)
    assert outcome.already_on_track == {"stalled": 1}
    assert [e.track for e in session.scalars(select(Enrollment))] == ["stalled"]
    (event,) = audit(session, "batch.enrolled")[-1:]
    assert event.details["already_on_track"] == {"stalled": 1}


def test_a_person_put_on_a_track_by_one_trigger_is_left_out_of_the_next(
    session: Session,
) -> None:
    """Two auto-approved triggers in one evaluation: the person walks one track, not two."""
    person = make_contact(session)
    QUALIFYING_LOAN["pmi_removal"](session, person)
    QUALIFYING_LOAN["fha_mip"](session, person)
    other = make_contact(session)
    QUALIFYING_LOAN["fha_mip"](session, other)

    result = run(session, only=["pmi_removal", "fha_mip"])

    held = {
        batch.trigger: {m.contact_id for m in members(session=session, batch_id=batch.id)}
        for batch in result.batches
    }
    assert held == {"pmi_removal": {person.id}, "fha_mip": {other.id}}
    walking = session.scalars(
        select(Enrollment.contact_id).where(Enrollment.status == ACTIVE)
    ).all()
    assert sorted(walking) == sorted([person.id, other.id])


def test_a_trigger_without_a_track_leaves_its_people_free_for_the_next(session: Session) -> None:
    """Nobody walks a disabled track, so the next trigger may still batch them."""
    person = make_contact(session)
    QUALIFYING_LOAN["pmi_removal"](session, person)
    QUALIFYING_LOAN["fha_mip"](session, person)
    tracks = {
        name: track for name, track in shipped_tracks().items() if track.trigger != "pmi_removal"
    }
    result = evaluate(
        session=session, now=NOW, config=default_config(), tracks=tracks,
        only=["pmi_removal", "fha_mip"],
    )  # fmt: skip
    held = {
        batch.trigger: {m.contact_id for m in members(session=session, batch_id=batch.id)}
        for batch in result.batches
    }
    assert held == {"pmi_removal": {person.id}, "fha_mip": {person.id}}


# An approval never sends figures from a rate that has moved.

LATER = NOW + timedelta(days=1)


def approve(session: Session, batch: Batch, config: Config | None = None) -> None:
    """Maria approves the batch a day after it was made."""
    approve_batch(session=session, batch_id=batch.id, by="maria", now=LATER,
                  tracks=shipped_tracks(), config=config or default_config())  # fmt: skip


def refused_and_expired(session: Session, batch: Batch, message: str) -> None:
    """The approval was refused with `message`; the batch expired, nobody enrolled."""
    with pytest.raises(BatchExpired) as refused:
        approve(session, batch)
    assert str(refused.value) == message
    assert (batch.status, batch.decided_by, batch.decided_at) == ("expired", "expiry", LATER)
    (event,) = audit(session, "batch.expired")
    assert (event.actor, event.subject_id, event.reason) == ("maria", str(batch.id), message)
    assert audit(session, "batch.approved") == []
    assert list(session.scalars(select(Enrollment))) == []
    assert not any(m.live for m in members(session=session, batch_id=batch.id))


def test_approving_after_the_offer_moved_past_the_tolerance_is_refused_and_expires(
    session: Session,
) -> None:
    batch, (person,) = rate_drop_batch(session)
    set_rate(session, "6.5", on=LATER.date())
    refused_and_expired(
        session,
        batch,
        f"rates moved from 6.00 % to 6.50 % since batch {batch.id} was made: "
        "run `winback evaluate` for a fresh batch",
    )
    # Its people are free again: the next evaluation batches them at today's rate, if they
    # still qualify.
    set_rate(session, "5.9", on=LATER.date())
    (fresh,) = run(session, LATER, only=["rate_drop"]).batches
    assert [m.contact_id for m in members(session=session, batch_id=fresh.id)] == [person]
    assert fresh.rate == Decimal("5.9")


@pytest.mark.parametrize(
    ("revised", "moved"), [("6.125", False), ("5.875", False), ("6.126", True), ("5.87", True)]
)
def test_a_revision_of_the_same_observation_is_judged_by_the_tolerance(
    session: Session, revised: str, moved: bool
) -> None:
    """0.125 point either way is still the batch's rate; a hair more is a move."""
    batch, _ = rate_drop_batch(session)
    set_rate(session, revised)  # the same day's manual rate, corrected in place
    if not moved:
        approve(session, batch)
        assert batch.status == "approved"
        return
    refused_and_expired(
        session,
        batch,
        f"rates moved from 6.00 % to {revised.ljust(4, '0')} % since batch {batch.id} was made: "
        "run `winback evaluate` for a fresh batch",
    )


def test_the_tolerance_is_configurable(session: Session) -> None:
    batch, _ = rate_drop_batch(session)
    set_rate(session, "6.25")
    wide = load_config(overrides={"batches": {"rate_tolerance_points": 0.25}})
    approve(session, batch, wide)
    assert batch.status == "approved"


def test_a_newer_observation_within_the_tolerance_still_makes_the_batch_stale(
    session: Session,
) -> None:
    batch, _ = rate_drop_batch(session)
    set_rate(session, "6.05", on=LATER.date())
    refused_and_expired(
        session,
        batch,
        f"the 30y rate batch {batch.id} was made on (6.00 % of 2026-09-24) is no longer the "
        "latest (6.05 % of 2026-09-25 is): run `winback evaluate` for a fresh batch",
    )


def test_a_manual_rate_replacing_the_feed_observation_of_the_same_day_is_a_new_observation(
    session: Session,
) -> None:
    session.add(MarketRate(on=TODAY, product="30y", rate=Decimal("6.0"), source="pmms",
                           recorded_at=NOW))  # fmt: skip
    ids = [make_loan(session).contact_id]
    (batch,) = run(session, only=["rate_drop"]).batches
    assert batch.priced_on == {
        "30y": {"rate": "6.00000", "index_rate": "6.00000", "offset": "0.0",
                "as_of": "2026-09-24", "source": "pmms"}
    }  # fmt: skip
    assert [m.contact_id for m in members(session=session, batch_id=batch.id)] == ids
    set_rate(session, "6.0")  # typed in: a manual rate wins the day, even at the same value
    refused_and_expired(
        session,
        batch,
        f"the 30y rate batch {batch.id} was made on (6.00 % of 2026-09-24) is no longer the "
        "latest (6.00 % of 2026-09-24 is): run `winback evaluate` for a fresh batch",
    )


def test_every_product_the_members_were_priced_on_is_checked(session: Session) -> None:
    """A 15-year borrower's figures come from the 15-year rate: its move refuses the batch."""
    set_rate(session, "6.0")
    set_rate(session, "5.5", product="15y")
    make_loan(session, note_rate="7.0", term_months=180)
    (batch,) = run(session, only=["rate_drop"]).batches
    assert (batch.rate_product, set(batch.priced_on or {})) == ("30y", {"15y"})
    set_rate(session, "7.0", on=LATER.date())  # nobody here was priced on the 30-year rate
    set_rate(session, "5.75", product="15y", on=LATER.date())
    refused_and_expired(
        session,
        batch,
        f"15y rates moved from 5.50 % to 5.75 % since batch {batch.id} was made: "
        "run `winback evaluate` for a fresh batch",
    )


def test_a_batch_of_a_trigger_without_rates_is_approved_whatever_the_rates_do(
    session: Session,
) -> None:
    set_rate(session, "6.0")
    QUALIFYING_LOAN["loan_age"](session, make_contact(session))
    held = config_with(loan_age={"approval_required": True})
    (batch,) = evaluate(session=session, now=NOW, config=held, tracks=shipped_tracks(),
                        only=["loan_age"]).batches  # fmt: skip
    assert batch.priced_on is None
    set_rate(session, "7.0", on=LATER.date())
    approve(session, batch)
    assert batch.status == "approved"


def test_without_a_configuration_the_batch_offsets_are_used(session: Session) -> None:
    """Callers that pass no configuration compare like with like: index plus the batch's offset."""
    session.add(MarketRate(on=TODAY, product="30y", rate=Decimal("6.25"), source="pmms",
                           recorded_at=NOW))  # fmt: skip
    make_loan(session)
    discount = load_config(overrides={"rates": {"offset_30y": -0.25}})
    (batch,) = evaluate(session=session, now=NOW, config=discount, tracks=shipped_tracks(),
                        only=["rate_drop"]).batches  # fmt: skip
    assert batch.rate == Decimal("6.0")
    _, outcome = approve_batch(session=session, batch_id=batch.id, by="maria", now=LATER,
                               tracks=shipped_tracks())  # fmt: skip
    assert (batch.status, outcome.enrolled) == ("approved", 1)
