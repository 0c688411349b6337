"""Wild input never crashes the importer and never leaves a partial row behind."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.book.headers import GENERIC_COLUMNS as COLUMNS
from core.book.importer import ImportRefused, import_book
from core.book.models import LOAN_STATUSES, Contact, Loan
from tests.book.helpers import NOW, book_row, csv_bytes

WILD = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "yes", "no", "funded", "withdrawn", "6", "4", "2021-01-05", "1/5/21",
                     "6.5%", "0.065", "$300,000", "jane@gmail.com", "(415) 867-5309", "360",
                     "CA", "94105", "\x00", "\ufeff", '"', ",", "\n"]),
)  # fmt: skip


def check_invariants(session: Session, accepted: int) -> None:
    """Every person has a loan; every loan is whole."""
    orphans = session.scalar(select(func.count()).select_from(Contact).where(~Contact.loans.any()))
    assert orphans == 0
    assert (session.scalar(select(func.count()).select_from(Loan)) or 0) <= accepted
    for status, rate, amount, funded in session.execute(
        select(Loan.status, Loan.note_rate, Loan.loan_amount_cents, Loan.funded_date)
    ):
        assert status in LOAN_STATUSES
        if status == "funded":
            assert rate is not None and amount is not None and funded is not None


@WILD
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes(session: Session, data: bytes) -> None:
    with session.begin_nested() as savepoint:
        try:
            result = import_book(session=session, stream=io.BytesIO(data), name="x.csv", now=NOW)
        except ImportRefused as exc:
            assert "\n" not in str(exc)
        else:
            check_invariants(session, result.rows - result.rejected)
        savepoint.rollback()


@WILD
@given(rows=st.lists(st.fixed_dictionaries({column: cell for column in COLUMNS}), max_size=8),
       clean=st.integers(min_value=0, max_value=3))  # fmt: skip
def test_arbitrary_csv_rows(session: Session, rows: list[dict[str, str]], clean: int) -> None:
    good = [book_row(loan_number=f"G{i}", email=f"g{i}@gmail.com") for i in range(clean)]
    data = csv_bytes(good + rows)
    with session.begin_nested() as savepoint:
        try:
            result = import_book(session=session, stream=io.BytesIO(data), name="x.csv", now=NOW)
        except ImportRefused as exc:
            assert "\n" not in str(exc)
        else:
            assert result.rows >= clean
            assert result.loans_created >= clean
            check_invariants(session, result.rows - result.rejected)
        savepoint.rollback()


def test_a_utf16_file_cut_mid_character_is_refused_by_name(session: Session) -> None:
    with pytest.raises(ImportRefused, match="is not valid UTF-16"):
        import_book(session=session, stream=io.BytesIO(b"\xfe\xff\x00"), name="cut.csv", now=NOW)
