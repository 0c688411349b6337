"""`winback backtest` as a broker runs it before going live."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.book.helpers import book_row, csv_bytes
from tests.cli.conftest import Winback

NOW = "2026-09-24T15:00:00Z"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIXTURES = Path(__file__).parent.parent / "data" / "backtest"


@pytest.fixture
def winback(tmp_path: Path) -> Winback:
    """The CLI with DATABASE_URL at a SQLite file the backtest must never create."""
    return Winback(f"sqlite:///{tmp_path / 'broker.db'}")


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """Three past borrowers at 4.9-7.5 %, funded 2019-2023."""
    rows = [
        book_row(note_rate="7.0"),  # funded 2021-03-01
        book_row(
            loan_number="L2", email="two@gmail.com", phone="(415) 867-5302", note_rate="7.5",
            funded_date="2023-11-01", first_payment_date="2024-01-01",
            application_date="2023-09-01",
        ),
        book_row(
            loan_number="L3", email="three@gmail.com", phone="(415) 867-5303", note_rate="4.9",
            funded_date="2019-01-15", first_payment_date="2019-03-01",
            application_date="2018-11-20",
        ),
    ]  # fmt: skip
    path = tmp_path / "book.csv"
    path.write_bytes(csv_bytes(rows))
    return path


def error_lines(result: object) -> list[str]:
    """The non-blank lines on stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]


def test_json_is_one_object_with_weeks_and_totals(
    winback: Winback, book: Path, tmp_path: Path
) -> None:
    report = winback.json(
        "backtest", "--book", str(book), "--from", "2024-08-01", "--to", "2024-10-31",
        "--now", NOW,
    )  # fmt: skip
    assert set(report) >= {"book", "from", "to", "weeks", "totals"}
    assert (report["book"], report["from"], report["to"]) == (str(book), "2024-08-01", "2024-10-31")
    assert len(report["weeks"]) == 14  # Thursdays 2024-08-01 .. 2024-10-31
    week = report["weeks"][0]
    assert set(week) == {
        "week", "rate_30y", "rate_15y", "offer_30y", "eligible", "fired",
        "monthly_savings_on_offer",
    }  # fmt: skip
    assert (week["week"], week["rate_30y"], week["rate_15y"]) == ("2024-08-01", 6.73, 5.99)
    assert set(week["eligible"]) == set(week["fired"]) >= {"rate_drop", "loan_age", "fha_mip"}
    # L2 (7.5 %, first payment 2024-01) is seasoned by August; the September dip brings L1
    # (7 %) in, 0.75 points under from 2024-09-12 (6.20 %) until rates rise in October.
    by_date = {w["week"]: w["eligible"]["rate_drop"] for w in report["weeks"]}
    assert by_date["2024-08-01"] == 1
    assert [day for day, count in by_date.items() if count == 2] == [
        "2024-09-12", "2024-09-19", "2024-09-26", "2024-10-03",
    ]  # fmt: skip
    assert report["weeks"][8]["monthly_savings_on_offer"] > 200
    totals = report["totals"]
    assert totals["fired"]["rate_drop"] == sum(w["fired"]["rate_drop"] for w in report["weeks"])
    assert totals["people_fired"] >= 2
    assert not (tmp_path / "broker.db").exists()  # the broker's database was never opened


def test_human_report_and_chart(winback: Winback, book: Path, tmp_path: Path) -> None:
    chart = tmp_path / "rates.png"
    result = winback(
        "backtest", "--book", str(book), "--from", "2020-01-01", "--to", "2020-12-31",
        "--chart", str(chart), "--now", NOW,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "one line per month" in result.stdout
    assert "\n2020-03 " in result.stdout and "\n2020-03-05" not in result.stdout
    assert "peak refinance-eligible:" in result.stdout
    assert f"chart: {chart}" in result.stdout
    payload = chart.read_bytes()
    assert payload.startswith(PNG_SIGNATURE) and len(payload) > 20_000


def test_short_range_prints_weeks_and_offset_applies(
    winback: Winback, book: Path, tmp_path: Path
) -> None:
    config = tmp_path / "winback.toml"
    config.write_text('[rates]\noffset_30y = "0.25"\n')
    env = {"WINBACK_CONFIG": str(config)}
    args = ["backtest", "--book", str(book), "--from", "2024-09-01", "--to", "2024-09-30"]
    report = winback.json(*args, "--trigger", "rate_drop", "--now", NOW, env=env)
    assert [w["offer_30y"] for w in report["weeks"]] == [6.60, 6.45, 6.34, 6.33]
    assert list(report["totals"]["fired"]) == ["rate_drop"]
    text = winback(*args, "--now", NOW, env=env).stdout
    assert "\n2024-09-19 " in text and "one line per month" not in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2024-13-01", "--to", "2024-12-31"], "--from"),
        (["--from", "2024-01-01", "--to", "soon"], "--to"),
        (["--from", "2024-12-01", "--to", "2024-01-01"], "after"),
        (["--from", "2024-01-01", "--to", "2024-12-31", "--trigger", "refi"], "unknown trigger"),
    ],
)
def test_bad_dates_and_names_are_one_error_line(
    winback: Winback, book: Path, args: list[str], words: str
) -> None:
    result = winback("backtest", "--book", str(book), *args, "--json", "--now", NOW)
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert result.stdout == ""


def test_missing_or_unreadable_book_is_one_error_line(winback: Winback, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("call Jane back\n")
    for path in (tmp_path / "missing.csv", notes):
        result = winback(
            "backtest", "--book", str(path), "--from", "2024-01-01", "--to", "2024-02-01",
            "--now", NOW,
        )  # fmt: skip
        assert result.exit_code == 2
        lines = error_lines(result)
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]


def test_disabled_triggers_are_left_out(winback: Winback, book: Path, tmp_path: Path) -> None:
    config = tmp_path / "winback.toml"
    config.write_text("[triggers.loan_age]\nenabled = false\n")
    args = ["backtest", "--book", str(book), "--from", "2024-09-01", "--to", "2024-09-30"]
    report = winback.json(*args, "--now", NOW, env={"WINBACK_CONFIG": str(config)})
    assert "loan_age" not in report["totals"]["fired"] and "rate_drop" in report["totals"]["fired"]
    result = winback(*args, "--trigger", "loan_age", env={"WINBACK_CONFIG": str(config)})
    assert result.exit_code == 2 and "disabled" in result.stderr


def test_the_command_reports_what_the_per_week_evaluation_reported(
    winback: Winback, tmp_path: Path
) -> None:
    # The output captured from the per-week path before the columnar replay (see
    # tests/test_backtest.py, which compares it week by week and trigger by trigger).
    people = tmp_path / "people.csv"
    report = winback.json(
        "backtest", "--book", str(FIXTURES / "book.csv"), "--from", "2019-01-01",
        "--to", "2022-06-30", "--people", str(people), "--now", NOW,
    )  # fmt: skip
    expected = json.loads((FIXTURES / "default.json").read_text(encoding="utf-8"))
    assert {**report, "book": ""} == {**expected, "book": ""}

    def rows(path: Path) -> list[list[str]]:
        with path.open(encoding="utf-8") as handle:
            return sorted(csv.reader(handle))

    assert rows(people) == rows(FIXTURES / "default_people.csv")


SAMPLE_BOOK = Path(__file__).parent.parent.parent / "core" / "data" / "sample_book.csv"


def test_tune_compares_the_values_of_a_threshold_side_by_side(winback: Winback) -> None:
    span = ("--book", str(SAMPLE_BOOK), "--from", "2019-01-01", "--to", "2026-09-24")
    report = winback.json(
        "backtest", *span, "--tune", "rate_drop.threshold_points=0.5,1.0,1.5", "--now", NOW
    )
    assert report["setting"] == "rate_drop.threshold_points"
    rows = {row["value"]: row for row in report["rows"]}
    assert list(rows) == ["0.5", "1.0", "1.5"]
    # A higher threshold reaches fewer people, each with more to save.
    assert rows["0.5"]["people"] > rows["1.0"]["people"] > rows["1.5"]["people"] > 0
    assert rows["0.5"]["mean_monthly_savings"] < rows["1.5"]["mean_monthly_savings"]
    # Each row is what a plain replay at that value reports.
    config = Path(winback.database_url.removeprefix("sqlite:///")).parent / "one.toml"
    config.write_text("[triggers.rate_drop]\nthreshold_points = 1.0\n")
    plain = winback.json("backtest", *span, "--trigger", "rate_drop", "--now", NOW,
                         env={"WINBACK_CONFIG": str(config)})  # fmt: skip
    assert plain["totals"]["fired"]["rate_drop"] == rows["1.0"]["firings"]
    assert plain["totals"]["people_fired"] == rows["1.0"]["people"]
    shown = winback("backtest", *span, "--tune", "rate_drop.threshold_points=0.75,1.25",
                    "--now", NOW).stdout  # fmt: skip
    assert "rate_drop.threshold_points from 2019-01-01 to 2026-09-24" in shown
    assert "savings/mo" in shown and " 0.75 " in shown


@pytest.mark.parametrize(
    ("tune", "words"),
    [
        ("rate_drop.threshold_points", "TRIGGER.SETTING=V1,V2"),
        ("rate_dorp.threshold_points=1", "'rate_dorp' is not a trigger"),
        ("rate_drop.treshold=1", "has no setting 'treshold'"),
        ("rate_drop.threshold_points=-1", "threshold_points=-1: Input should be greater than 0"),
        ("rate_drop.threshold_points=" + ",".join(["1"] * 9), "at most 8 values"),
    ],
)
def test_a_bad_tune_is_one_error_line(winback: Winback, book: Path, tune: str, words: str) -> None:
    result = winback("backtest", "--book", str(book), "--from", "2024-08-01", "--to",
                     "2024-10-31", "--tune", tune, "--now", NOW)  # fmt: skip
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
