"""`winback stats`: "Did outreach cause it?" (the holdout lift) and `--chart PNG`, both backends.

The hand-built scenario: one rate-drop batch approved 20 days before NOW; 100 members enrolled
(messaged), 20 of whom have a loan funded 5 days ago; 40 members held out, 2 of them funded.
By hand: 20.0 % vs 5.0 %, a lift of 15.0 points; the unpooled standard error is
sqrt(0.2·0.8/100 + 0.05·0.95/40) = 0.05280, so the 95 % interval is 15.0 ± 1.96·5.280 points:
+4.65 to +25.35 (printed to a tenth, from core's four decimals: +4.7 to +25.4).
"""

from __future__ import annotations

import io
import json
import math
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from sqlalchemy.orm import Session

from core.batches.models import APPROVED, Batch, BatchMember
from core.holdout import HeldOut
from core.outreach.models import Enrollment
from tests.cli.conftest import Winback
from tests.cli.test_stats_cli import AT, booked, errors  # noqa: F401 - the booked fixture
from tests.outreach import NOW, sessions_for
from tests.triggers.factories import make_contact, make_lo, make_loan

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
APPROVED_AT = NOW - timedelta(days=20)
FUNDED_ON = (NOW - timedelta(days=5)).date()


def hand_lift() -> tuple[float, float, float]:
    """The scenario's lift and 95 % interval, computed here from the four counts."""
    p1, p0 = 20 / 100, 2 / 40
    se = math.sqrt(p1 * (1 - p1) / 100 + p0 * (1 - p0) / 40)
    return p1 - p0, p1 - p0 - 1.959964 * se, p1 - p0 + 1.959964 * se


def build_lift_scenario(
    session: Session, *, messaged: int = 100, messaged_funded: int = 20, held: int = 40,
    held_funded: int = 2,
) -> Batch:  # fmt: skip
    """A rate-drop batch approved 20 days ago: `messaged` enrolled, `held` held out."""
    officer = make_lo(session, email="lift@broker.com", name="Lina Lift")
    batch = Batch(trigger="rate_drop", segment="refinance", status=APPROVED,
                  size=messaged + held, created_at=APPROVED_AT - timedelta(hours=1),
                  decided_at=APPROVED_AT, decided_by="manager")  # fmt: skip
    session.add(batch)
    session.flush()
    for index in range(messaged + held):
        contact = make_contact(session, lo=officer)
        loan = make_loan(session, contact)  # the 2024 loan: funded before the batch, not counted
        member = BatchMember(
            batch_id=batch.id, contact_id=contact.id, loan_id=loan.id, trigger="rate_drop",
            occasion=f"lift:{index}", live=True, snapshot={}, created_at=APPROVED_AT,
        )  # fmt: skip
        session.add(member)
        session.flush()
        if index < messaged:
            session.add(Enrollment(contact_id=contact.id, batch_member_id=member.id,
                                   track="refinance", status="active",
                                   enrolled_at=APPROVED_AT))  # fmt: skip
            funded = index < messaged_funded
        else:
            session.add(HeldOut(batch_id=batch.id, batch_member_id=member.id,
                                contact_id=contact.id, trigger="rate_drop", fraction=0.3,
                                held_at=APPROVED_AT))  # fmt: skip
            funded = index - messaged < held_funded
        if funded:
            make_loan(session, contact, funded=FUNDED_ON, application_date=APPROVED_AT.date())
    session.flush()
    return batch


@pytest.fixture
def lifted(winback: Winback) -> Winback:
    """The CLI over a committed copy of the lift scenario."""
    sessions = sessions_for(winback.database_url)
    with sessions() as session, session.begin():
        build_lift_scenario(session)
    sessions.kw["bind"].dispose()
    return winback


def numbers(text: str) -> list[float]:
    """The signed numbers of a printed lift, in order."""
    return [float(n) for n in re.findall(r"[+-]\d+\.\d", text)]


def test_the_lift_section_matches_the_hand_computation(lifted: Winback) -> None:
    result = lifted("stats", "--by", "trigger", *AT)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index(
        "Did outreach cause it? Funded rate of the messaged people vs the held-out ones:"
    )
    (line,) = [each for each in lines[start + 1 :] if each.strip()]
    assert line.startswith("  rate_drop  messaged 100 (20.0 % funded), held out 40 (5.0 % funded)")
    lift, low, high = hand_lift()
    printed = line.split(": lift ")[1]
    assert re.fullmatch(r"[+-]\d+\.\d points \(95 % interval [+-]\d+\.\d to [+-]\d+\.\d\)", printed)
    shown = numbers(printed)
    # A tenth of a point, plus core's four-decimal rounding of the interval's ends.
    for value, expected in zip(shown, (lift * 100, low * 100, high * 100), strict=True):
        assert abs(value - expected) <= 0.051 + 0.005, (printed, expected)
    assert shown[0] == 15.0 and shown[1] == 4.7


def test_json_gains_the_lift_and_keeps_the_spec_keys(lifted: Winback) -> None:
    payload = lifted.json("stats", "--by", "trigger", *AT)

    assert list(payload)[:4] == ["since", "by", "rows", "totals"]
    (lift,) = payload["lift"]
    assert (lift["trigger"], lift["messaged"], lift["messaged_funded"]) == ("rate_drop", 100, 20)
    assert (lift["holdout"], lift["holdout_funded"], lift["note"]) == (40, 2, None)
    expected = hand_lift()
    assert lift["lift"] == pytest.approx(expected[0], abs=1e-4)
    assert lift["ci95"] == pytest.approx(list(expected[1:]), abs=1e-4)
    (row,) = payload["rows"]
    assert (row["group"], row["enrolled"]) == ("rate_drop", 100)


def test_a_small_book_says_not_enough_data_yet(booked: Winback) -> None:  # noqa: F811
    result = booked("stats", "--since", "all", "--by", "trigger", *AT)

    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Did outreach cause it?" in text
    lines = [line for line in text.splitlines() if line.startswith("  rate_drop  messaged")]
    assert lines and "held out 0: not enough data yet (needs 30 people" in lines[0]
    assert "points" not in text.split("Did outreach cause it?")[1]
    # The book's one credited funding, money-formatted, in the footer.
    assert "Funded volume: $400,000" in text


def test_a_period_without_approvals_says_there_is_nothing_to_compare(
    booked: Winback,  # noqa: F811
) -> None:
    result = booked("stats", *AT)  # the book's batches were approved 300 days ago

    assert "Did outreach cause it? No batch was approved in this period" in result.stdout
    assert booked.json("stats", *AT)["lift"] == []


def read_png(path: Path) -> Any:
    """The PNG decoded by matplotlib (height × width × RGBA)."""
    return matplotlib.image.imread(io.BytesIO(path.read_bytes()), format="png")


def test_chart_writes_a_readable_png(lifted: Winback, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = lifted("stats", "--by", "trigger", "--chart", str(out), *AT)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"Chart saved to {out}"
    assert "Did outreach cause it?" in result.stdout  # the table is printed as well
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000
    height, width, _ = read_png(out).shape
    assert width >= 1200 and height >= 300


def test_chart_with_json_keeps_stdout_one_object(lifted: Winback, tmp_path: Path) -> None:
    out = tmp_path / "funnel.png"
    result = lifted("stats", "--since", "all", "--chart", str(out), "--json", *AT)

    assert result.exit_code == 0, result.output
    (line,) = [each for each in result.stdout.splitlines() if each.strip()]
    assert json.loads(line)["lift"][0]["trigger"] == "rate_drop"
    assert f"Chart saved to {out}" in result.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_chart_of_an_empty_book_still_draws(winback: Winback, tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    result = winback("stats", "--chart", str(out), *AT)

    assert result.exit_code == 0, result.output
    assert "Nothing happened in this period." in result.stdout
    assert read_png(out).shape[1] >= 1200


@pytest.mark.parametrize("where", ["missing/dir/out.png", "."])
def test_a_bad_chart_path_is_one_line_and_exit_2(
    winback: Winback, tmp_path: Path, where: str
) -> None:
    path = tmp_path / where
    result = winback("stats", "--chart", str(path), *AT)

    assert result.exit_code == 2
    (line,) = errors(result)
    assert line.startswith(f"error: --chart {path}")
    assert "does not exist" in line or "is a directory" in line
    assert result.stdout == ""
    assert not (tmp_path / "missing").exists()
