"""Survivor rows reach numpy as exact integers on both backends, and the planner hints change no
answer; what several read sessions find in parallel equals what one session finds."""

from __future__ import annotations

from datetime import date

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.book.models import FUNDED, Loan
from core.db import make_engine, make_sessionmaker
from core.segments import counts_by_lo, counts_of, find_segments
from core.triggers.columns import (
    date_of,
    day_number,
    day_of,
    fetch_columns,
    month_day,
    rate_units,
    unindexed,
)
from tests.triggers.factories import (
    NOW,
    QUALIFYING_LOAN,
    default_config,
    make_contact,
    make_lo,
    make_loan,
    set_rate,
)


def test_dates_rates_and_money_arrive_as_exact_integers(session: Session) -> None:
    loan = make_loan(
        session, note_rate="6.87512", amount="412345.67", funded=date(2000, 2, 29),
        first_payment=date(1969, 12, 31),
    )  # fmt: skip
    query = select(
        day_number(Loan.funded_date),
        day_number(Loan.first_payment_date),
        rate_units(Loan.note_rate),
        Loan.loan_amount_cents,
        month_day(Loan.funded_date),
    ).where(Loan.id == loan.id)
    funded, first, rate, cents, anniversary = session.execute(query).one()
    assert (date_of(funded), date_of(first)) == (date(2000, 2, 29), date(1969, 12, 31))
    assert funded == day_of(date(2000, 2, 29))
    assert rate == 687_512
    assert cents == 41_234_567
    assert anniversary == 229
    columns = fetch_columns(session, query.with_only_columns(Loan.id, rate_units(Loan.note_rate)),
                            ("id", "rate"))  # fmt: skip
    assert columns["id"].dtype == np.int64 and columns["rate"].tolist() == [687_512]


def test_unindexed_columns_filter_exactly_like_plain_ones(session: Session) -> None:
    loans = [make_loan(session, funded=date(2020 + n, 1, 1)) for n in range(4)]
    ids = [loan.id for loan in loans]
    plain = select(Loan.id).where(Loan.id.in_(ids), Loan.status == FUNDED,
                                  Loan.funded_date <= date(2021, 6, 1))  # fmt: skip
    hinted = select(Loan.id).where(Loan.id.in_(ids), unindexed(Loan.status) == FUNDED,
                                   unindexed(Loan.funded_date) <= date(2021, 6, 1))  # fmt: skip
    assert sorted(session.scalars(hinted)) == sorted(session.scalars(plain)) == ids[:2]


def test_segments_found_on_parallel_read_sessions_match_one_session(database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        set_rate(session, "6.0")
        officers = [make_lo(session), make_lo(session)]
        for index, build in enumerate(QUALIFYING_LOAN.values()):
            for copy in range(index + 1):  # a different number of people per segment
                build(session, make_contact(session, lo=officers[copy % 2]))
    with sessions() as session:
        config = default_config()
        serial = find_segments(session=session, now=NOW, config=config)
        parallel = find_segments(session=session, now=NOW, config=config, readers=sessions)
        assert (
            counts_of(parallel)
            == counts_of(serial)
            == {
                "refinance": 1,  # every other loan is at 5 %, under a 6 % market
                "repeat_purchase": 2,
                "anniversary": 3,
                "stalled": 4,
                "arm_reset": 5,
                "pmi_removal": 6,
                "fha_mip": 7,
            }
        )
        assert counts_by_lo(session, parallel) == counts_by_lo(session, serial)
        for segment, found in serial.items():
            assert sorted(parallel[segment].loan_id.tolist()) == sorted(found.loan_id.tolist())
    engine.dispose()
