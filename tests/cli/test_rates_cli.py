"""`winback rates set|fetch|load|confirm|show` as a broker's operations person runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from pytest_httpserver import HTTPServer

from core.rates.parsers import load_history_file
from core.rates.service import BUNDLED_HISTORY
from tests.cli.conftest import Winback

NOW = "2026-09-25T15:00:00Z"
LATER = "2026-09-26T15:00:00Z"
SHEET = "date,rate_30y,rate_15y\n2026-09-17,6.95,6.26\n2026-09-24,6.875,6.125\n"
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head></html>\n"


@pytest.fixture
def httpserver(loopback: HTTPServer) -> Iterator[HTTPServer]:
    """The loopback server with no expectations left from other tests."""
    loopback.clear()
    yield loopback
    loopback.clear()


def error_lines(result: Result) -> list[str]:
    """The non-blank lines the command wrote to stderr."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def nothing_recorded(winback: Winback) -> bool:
    """True when `rates show` finds no market rate for either product."""
    return winback.json("rates", "show", "--now", NOW)["rates"] == {"30y": None, "15y": None}


def test_set_records_a_manual_rate_that_show_then_uses(winback: Winback) -> None:
    report = winback.json("rates", "set", "6.125%", "--now", NOW)
    assert (report["inserted"], report["updated"], report["unchanged"]) == (1, 0, 0)
    assert report["latest"] == {
        "30y": {"date": "2026-09-25", "rate": 6.125, "source": "manual"},
        "15y": None,
    }
    again = winback.json("rates", "set", "6.25", "--date", "2026-09-25", "--now", NOW)
    assert (again["inserted"], again["updated"]) == (0, 1)
    shown = winback.json("rates", "show", "--now", NOW)["rates"]
    assert shown["30y"]["offer"] == 6.25
    assert "set manually" in shown["30y"]["describe"]
    assert shown["15y"] is None


def test_set_15_year_for_a_past_date(winback: Winback) -> None:
    report = winback.json(
        "rates", "set", "5.5", "--product", "15y", "--date", "2026-09-01", "--now", NOW
    )
    assert report["latest"]["15y"] == {"date": "2026-09-01", "rate": 5.5, "source": "manual"}


@pytest.mark.parametrize(
    "args",
    [["30"], ["0"], ["six"], ["-5"], ["-6.5"], ["0.5%"], ["20.01"], ["6.5", "--product", "5/1"],
     ["6.5", "--date", "26/9/2026"], ["6.5", "--date", "2026-09-26"]],
)  # fmt: skip
def test_set_refuses_bad_input_with_one_error_line(winback: Winback, args: list[str]) -> None:
    result = winback("rates", "set", *args, "--now", NOW)
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    assert nothing_recorded(winback)


def test_load_bundled_twice_inserts_nothing_the_second_time(winback: Winback) -> None:
    expected = len(load_history_file(BUNDLED_HISTORY))
    first = winback.json("rates", "load", "bundled", "--now", NOW)
    assert (first["inserted"], first["updated"], first["unchanged"]) == (expected, 0, 0)
    assert first["latest"]["30y"] == {"date": "2026-09-24", "rate": 7.03, "source": "pmms"}
    assert first["latest"]["15y"] == {"date": "2026-09-24", "rate": 6.42, "source": "pmms"}
    second = winback.json("rates", "load", str(BUNDLED_HISTORY), "--now", LATER)
    assert (second["inserted"], second["updated"], second["unchanged"]) == (0, 0, expected)


def test_load_of_an_unreadable_file_stores_nothing(winback: Winback, tmp_path: Path) -> None:
    page = tmp_path / "rates.csv"
    page.write_text(HTML_PAGE)
    for path in (page, tmp_path / "missing.csv"):
        result = winback("rates", "load", str(path), "--now", NOW)
        assert result.exit_code == 2
        assert len(error_lines(result)) == 1 and str(path) in result.stderr
    assert nothing_recorded(winback)


def test_show_adds_the_configured_offset_and_says_which_rate(
    winback: Winback, tmp_path: Path
) -> None:
    config = tmp_path / "winback.toml"
    config.write_text("[rates]\noffset_30y = 0.25\noffset_15y = -0.125\n")
    winback.json("rates", "load", "bundled", "--now", NOW)
    env = {"WINBACK_CONFIG": str(config)}
    rates = winback.json("rates", "show", "--now", NOW, env=env)["rates"]
    assert rates["30y"] == {
        "index": 7.03,
        "offset": 0.25,
        "offer": 7.28,
        "as_of": "2026-09-24",
        "source": "pmms",
        "describe": "Freddie Mac PMMS 30-year average 7.03% (2026-09-24) + 0.25 offset = 7.28%",
    }
    assert (rates["15y"]["offer"], rates["15y"]["as_of"]) == (6.295, "2026-09-24")
    # An earlier clock sees the index of that time, not a later one.
    past = winback.json("rates", "show", "--now", "2020-01-03T12:00:00Z")["rates"]["30y"]
    assert (past["as_of"], past["index"]) == ("2020-01-02", 3.72)


def test_show_for_people_names_the_source(winback: Winback) -> None:
    winback.json("rates", "set", "6.5", "--now", NOW)
    result = winback("rates", "show", "--now", NOW)
    assert result.exit_code == 0
    assert "30y: 30-year rate 6.50% set manually (2026-09-25)" in result.stdout
    assert "15y: no market rate recorded" in result.stdout


def test_fetch_records_the_rate_sheet_and_a_refetch_adds_nothing(
    winback: Winback, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/rates.csv").respond_with_data(SHEET, content_type="text/csv")
    env = {"RATE_FEED_URL": httpserver.url_for("/rates.csv")}
    report = winback.json("rates", "fetch", "--now", NOW, env=env)
    assert (report["inserted"], report["updated"], report["unchanged"]) == (4, 0, 0)
    assert report["latest"]["30y"]["rate"] == 6.875
    assert report["latest"]["15y"]["rate"] == 6.125
    again = winback.json("rates", "fetch", "--now", LATER, env=env)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 4)


def test_fetch_of_an_html_page_fails_with_one_line_and_stores_nothing(
    winback: Winback, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/rates.csv").respond_with_data(HTML_PAGE, content_type="text/html")
    env = {"RATE_FEED_URL": httpserver.url_for("/rates.csv")}
    result = winback("rates", "fetch", "--now", NOW, "--json", env=env)
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "HTML" in lines[0] and lines[0].startswith("error: ")
    assert result.stdout == ""
    assert nothing_recorded(winback)


def test_show_with_a_malformed_offset_fails_with_one_line(winback: Winback, tmp_path: Path) -> None:
    config = tmp_path / "winback.toml"
    config.write_text('[rates]\noffset_30y = "a quarter"\n')
    result = winback("rates", "show", "--now", NOW, env={"WINBACK_CONFIG": str(config)})
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "rates.offset_30y" in lines[0]


# ---------------------------------------------------------------------------------------------
# One parser: what `rates set` reads


@pytest.mark.parametrize("written", ["0.065", "6.5", "6.500%", " 6.5 % "])
def test_set_reads_every_form_of_a_rate_as_the_importer_does(
    winback: Winback, written: str
) -> None:
    report = winback.json("rates", "set", written, "--now", NOW)
    assert report["latest"]["30y"]["rate"] == 6.5


@pytest.mark.parametrize(("written", "shown"), [("-5", "'-5'"), ("25", "'25'"), ("0.5%", "'0.5%'")])
def test_set_refuses_a_rate_outside_the_band_by_name(
    winback: Winback, written: str, shown: str
) -> None:
    result = winback("rates", "set", written, "--now", NOW)
    assert result.exit_code == 2
    assert error_lines(result) == [
        f"error: RATE {shown} is not a rate from 1 to 20 % (6.5, 6.5% and 0.065 all mean 6.5 %)"
    ]


# ---------------------------------------------------------------------------------------------
# A move that looks like a typo

DEC_3 = "2026-12-03T15:00:00Z"
WEEK_AGO = ["--date", "2026-11-26", "--now", DEC_3]


def test_set_refuses_a_typo_like_move_until_confirmed(winback: Winback) -> None:
    winback.json("rates", "set", "5.95", *WEEK_AGO)

    refused = winback("rates", "set", "8.10", "--now", DEC_3)

    assert refused.exit_code == 2 and refused.stdout == ""
    assert error_lines(refused) == [
        "error: 30y rate 8.10 % is 2.15 points from the latest observation (5.95 % on "
        "2026-11-26): run again with --confirm if it is right"
    ]
    shown = winback.json("rates", "show", "--now", DEC_3)["rates"]["30y"]
    assert (shown["index"], shown["as_of"]) == (5.95, "2026-11-26")
    confirmed = winback.json("rates", "set", "8.10", "--confirm", "--now", DEC_3)
    assert confirmed["latest"]["30y"] == {"date": "2026-12-03", "rate": 8.1, "source": "manual"}


def test_the_move_limit_is_configured_and_validated(winback: Winback, tmp_path: Path) -> None:
    config = tmp_path / "winback.toml"
    config.write_text("[rates]\nmax_move_points = 2.5\n")
    winback.json("rates", "set", "5.95", *WEEK_AGO)
    env = {"WINBACK_CONFIG": str(config)}
    assert winback.json("rates", "set", "8.10", "--now", DEC_3, env=env)["inserted"] == 1

    config.write_text("[rates]\nmax_move_points = 0\n")
    result = winback("rates", "set", "6.0", "--now", DEC_3, env=env)
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: configuration rates.max_move_points: Input should be greater than 0"
    ]


def test_an_offset_that_is_a_rate_is_refused_by_name(winback: Winback, tmp_path: Path) -> None:
    config = tmp_path / "winback.toml"
    config.write_text("[rates]\noffset_30y = 6.25\n")
    result = winback("rates", "show", "--now", NOW, env={"WINBACK_CONFIG": str(config)})
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line.startswith("error: configuration rates.offset_30y: ") and "not a rate" in line


JUMP_SHEET = "date,rate_30y,rate_15y\n2026-11-26,5.95,5.20\n2026-12-03,8.10,5.25\n"


def _fetch_a_jump(winback: Winback, httpserver: HTTPServer) -> dict[str, str]:
    """Last week's rates by hand, then a feed whose new 30y week jumped 2.15 points."""
    winback.json("rates", "set", "5.95", *WEEK_AGO)
    winback.json("rates", "set", "5.20", "--product", "15y", *WEEK_AGO)
    httpserver.expect_request("/rates.csv").respond_with_data(JUMP_SHEET, content_type="text/csv")
    return {"RATE_FEED_URL": httpserver.url_for("/rates.csv")}


def test_fetch_holds_a_jump_reports_it_and_show_keeps_the_old_offer(
    winback: Winback, httpserver: HTTPServer
) -> None:
    env = _fetch_a_jump(winback, httpserver)

    report = winback.json("rates", "fetch", "--now", DEC_3, env=env)

    assert report["inserted"] == 4
    assert report["held"] == [
        {"product": "30y", "date": "2026-12-03", "rate": 8.1, "source": env["RATE_FEED_URL"],
         "why": "2.15 points from the latest observation (5.95 % on 2026-11-26)"}
    ]  # fmt: skip
    assert report["latest"]["30y"]["rate"] == 5.95
    assert report["latest"]["15y"] == {
        "date": "2026-12-03", "rate": 5.25, "source": env["RATE_FEED_URL"]
    }  # fmt: skip
    shown = winback.json("rates", "show", "--now", DEC_3)
    assert shown["rates"]["30y"]["index"] == 5.95
    assert [item["rate"] for item in shown["held"]] == [8.1]
    text = winback("rates", "show", "--now", DEC_3).stdout
    assert "held 30y rate 8.10 % of 2026-12-03" in text
    assert "winback rates confirm --product 30y --date 2026-12-03" in text


def test_confirm_puts_the_held_rate_into_use(winback: Winback, httpserver: HTTPServer) -> None:
    env = _fetch_a_jump(winback, httpserver)
    winback.json("rates", "fetch", "--now", DEC_3, env=env)

    confirmed = winback.json(
        "rates", "confirm", "--product", "30y", "--date", "2026-12-03", "--by", "maria",
        "--now", DEC_3,
    )  # fmt: skip

    assert [(item["product"], item["rate"]) for item in confirmed["confirmed"]] == [("30y", 8.1)]
    assert confirmed["latest"]["30y"]["rate"] == 8.1
    shown = winback.json("rates", "show", "--now", DEC_3)
    assert (shown["rates"]["30y"]["index"], shown["held"]) == (8.1, [])
    again = winback("rates", "confirm", "--now", DEC_3)
    assert again.exit_code == 0 and "no held market rate to confirm" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--product", "5/1"], "--product '5/1' is not one of 30y, 15y"),
     (["--date", "yesterday"], "--date 'yesterday' is not a date (YYYY-MM-DD)")],
)  # fmt: skip
def test_confirm_refuses_bad_filters_with_one_line(
    winback: Winback, args: list[str], message: str
) -> None:
    result = winback("rates", "confirm", *args, "--now", DEC_3)
    assert result.exit_code == 2
    assert error_lines(result) == [f"error: {message}"]


def test_tick_reports_what_is_held_and_why_until_it_is_confirmed(
    winback: Winback, httpserver: HTTPServer
) -> None:
    env = _fetch_a_jump(winback, httpserver)

    first = winback.json("tick", "--now", DEC_3, env=env)["rates"]
    later = winback.json("tick", "--now", "2026-12-03T16:00:00Z", env=env)["rates"]

    held = [{"product": "30y", "date": "2026-12-03", "rate": 8.1, "source": env["RATE_FEED_URL"],
             "why": "2.15 points from the latest observation (5.95 % on 2026-11-26)"}]  # fmt: skip
    assert first == {"inserted": 4, "updated": 0, "held": held}
    assert later == {"inserted": 0, "updated": 0, "held": held}  # still waiting for a person
    winback.json("rates", "confirm", "--now", DEC_3)
    assert "held" not in winback.json("tick", "--now", "2026-12-03T17:00:00Z", env=env)["rates"]


def test_load_takes_history_as_it_is_but_nothing_after_today(
    winback: Winback, tmp_path: Path
) -> None:
    winback.json("rates", "set", "5.95", *WEEK_AGO)
    path = tmp_path / "history.csv"
    path.write_text("date,rate_30y,rate_15y\n2026-12-03,7.45,6.40\n2026-12-10,7.50,6.45\n")

    report = winback.json("rates", "load", str(path), "--now", DEC_3)

    assert (report["inserted"], report["held"], report["future"]) == (2, [], 2)
    assert report["latest"]["30y"] == {
        "date": "2026-12-03", "rate": 7.45, "source": "file:history.csv"
    }  # fmt: skip
    text = winback("rates", "load", str(path), "--now", DEC_3).stdout
    assert "refused 2 market rate(s) dated after today" in text


def test_tick_text_names_a_held_rate_and_how_to_confirm_it(
    winback: Winback, httpserver: HTTPServer
) -> None:
    env = _fetch_a_jump(winback, httpserver)

    lines = winback("tick", "--now", DEC_3, env=env).stdout.splitlines()

    assert lines[0] == "rates: 4 new observation(s), 0 corrected"
    assert lines[1] == (
        "  held, not used until confirmed: 30y 8.10 % of 2026-12-03 (2.15 points from the latest "
        "observation (5.95 % on 2026-11-26)): `winback rates confirm --product 30y --date "
        "2026-12-03` if it is right"
    )
    assert not any(line.lstrip().startswith("{") for line in lines)  # no raw JSON
