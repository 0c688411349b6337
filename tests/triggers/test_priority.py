"""The best track wins: triggers run by priority, and a pending batch keeps its people."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.batches.models import Batch
from core.batches.service import members
from core.book.models import Contact, Loan
from core.config import TRIGGER_NAMES, Config, ConfigError, load_config
from core.flows import Evaluation, approve_batch, evaluate, reject_batch
from core.outreach.models import ACTIVE, Enrollment
from core.outreach.service import EnrollResult
from core.triggers.base import add_years
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


def run(
    session: Session,
    now: datetime = NOW,
    config: Config | None = None,
    only: list[str] | None = None,
) -> Evaluation:
    """One evaluation with the shipped tracks."""
    return evaluate(session=session, now=now, config=config or default_config(),
                    tracks=shipped_tracks(), only=only)  # fmt: skip


def refinance_and_pmi_loan(session: Session, contact: Contact | None = None) -> Loan:
    """A 7.5 % conventional loan of 2019 that started above 80 % LTV and is now below it."""
    return make_loan(session, contact, note_rate="7.5", amount="450000", value="540000",
                     funded=date(2019, 6, 14), first_payment=date(2019, 8, 1))  # fmt: skip


def held(session: Session, result: Evaluation) -> dict[str, set[int]]:
    """Who each batch of the evaluation holds, by trigger."""
    return {
        batch.trigger: {m.contact_id for m in members(session=session, batch_id=batch.id)}
        for batch in result.batches
    }


def tracks_walked(session: Session) -> dict[int, str]:
    """The track each person walks."""
    rows = session.execute(
        select(Enrollment.contact_id, Enrollment.track).where(Enrollment.status == ACTIVE)
    )
    return {contact_id: track for contact_id, track in rows}


def approve(session: Session, batch: Batch, now: datetime = NOW) -> EnrollResult:
    """Maria approves the batch."""
    _, outcome = approve_batch(session=session, batch_id=batch.id, by="maria", now=now,
                               tracks=shipped_tracks(), config=default_config())  # fmt: skip
    return outcome


def test_a_rate_drop_awaiting_approval_keeps_its_people_from_the_auto_approved_triggers(
    session: Session,
) -> None:
    set_rate(session, "6.0")
    both = refinance_and_pmi_loan(session).contact_id
    only_pmi = make_contact(session)
    QUALIFYING_LOAN["pmi_removal"](session, only_pmi)

    result = run(session)

    assert held(session, result) == {"rate_drop": {both}, "pmi_removal": {only_pmi.id}}
    assert result.reserved == {"pmi_removal": {"rate_drop": 1}}
    assert tracks_walked(session) == {only_pmi.id: "pmi_removal"}
    (rate_batch,) = [b for b in result.batches if b.trigger == "rate_drop"]
    outcome = approve(session, rate_batch)
    assert (outcome.enrolled, outcome.already_on_track) == (1, {})
    assert tracks_walked(session) == {only_pmi.id: "pmi_removal", both: "refinance"}


def test_a_rate_drop_batch_still_pending_from_an_earlier_evaluation_keeps_its_people(
    session: Session,
) -> None:
    set_rate(session, "6.0")
    both = refinance_and_pmi_loan(session).contact_id
    (rate_batch,) = run(session, only=["rate_drop"]).batches

    result = run(session, NOW + timedelta(hours=5))

    assert held(session, result) == {}
    assert result.reserved == {"pmi_removal": {"rate_drop": 1}}
    assert approve(session, rate_batch, NOW + timedelta(hours=6)).enrolled == 1
    assert tracks_walked(session) == {both: "refinance"}


@pytest.mark.parametrize("ended", ["rejected", "past its expiry"])
def test_a_rate_drop_batch_that_can_no_longer_be_approved_keeps_nobody(
    session: Session, ended: str
) -> None:
    set_rate(session, "6.0")
    both = refinance_and_pmi_loan(session).contact_id
    (rate_batch,) = run(session, only=["rate_drop"]).batches
    later = NOW + timedelta(hours=1 if ended == "rejected" else 72)
    if ended == "rejected":
        reject_batch(session=session, batch_id=rate_batch.id, by="sam", now=later)

    result = run(session, later, only=["pmi_removal"])

    assert held(session, result) == {"pmi_removal": {both}}
    assert result.reserved == {}


def test_a_pending_batch_of_any_trigger_keeps_its_people_from_lower_priority_ones(
    session: Session,
) -> None:
    # An ARM that turned three ten days ago and adjusts in 100 days: a milestone and a reset.
    funded = add_years(TODAY - timedelta(days=10), -3)
    arm = make_loan(session, note_rate="5.0", funded=funded, first_payment=funded + timedelta(45),
                    is_arm=True, arm_first_adjustment_date=TODAY + timedelta(days=100))  # fmt: skip
    config = config_with(loan_age={"approval_required": True})

    result = run(session, config=config, only=["loan_age", "arm_reset"])

    assert held(session, result) == {"loan_age": {arm.contact_id}}
    assert result.reserved == {"arm_reset": {"loan_age": 1}}


def test_the_priority_is_the_broker_s_to_set(session: Session) -> None:
    set_rate(session, "6.0")
    both = refinance_and_pmi_loan(session).contact_id
    first = ("pmi_removal", "rate_drop")
    config = load_config(
        overrides={
            "triggers": {"priority": [*first, *(n for n in TRIGGER_NAMES if n not in first)]}
        }
    )

    result = run(session, config=config)

    # pmi_removal ran first and put them on its track; rate_drop leaves walkers alone.
    assert [batch.trigger for batch in result.batches] == ["pmi_removal"]
    assert tracks_walked(session) == {both: "pmi_removal"}


def test_the_shipped_priority_puts_rate_drops_first_and_names_every_trigger() -> None:
    priority = default_config().triggers.priority
    assert priority[0] == "rate_drop"
    assert sorted(priority) == sorted(TRIGGERS) == sorted(TRIGGER_NAMES)


@pytest.mark.parametrize(
    ("priority", "message"),
    [
        (["rate_drop", "loan_age"], "closing_anniversary, fallout_anniversary, arm_reset, "
         "pmi_removal, fha_mip missing: name every trigger once"),
        ([*TRIGGER_NAMES, "rate_drop"], "rate_drop named more than once"),
        (["refinance", *TRIGGER_NAMES], "'refinance' is not a trigger: name rate_drop, "),
    ],
)  # fmt: skip
def test_a_priority_must_name_every_trigger_once(priority: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^configuration triggers\.priority: ") as refused:
        load_config(overrides={"triggers": {"priority": priority}})
    assert message in str(refused.value)
