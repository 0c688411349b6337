"""Market-rate parsing and fetching, against real recorded payloads and a loopback server."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from core.rates import (
    EmptySeriesError,
    FeedError,
    FredApiFeed,
    FredGraphFeed,
    Observation,
    UrlRateSheetFeed,
    feed_from_settings,
    load_history_file,
    parse_any_csv,
    parse_fred_json,
    parse_freddie_pmms_csv,
    parse_fredgraph_csv,
    parse_history_csv,
    parse_rate_sheet,
)

DATA = Path(__file__).parent / "data"
API_KEY = "abcdefghij0123456789abcdefghij01"
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head></html>\n"
FRED_OBSERVATIONS = "/fred/series/observations"
FREDGRAPH = "/graph/fredgraph.csv"


def fixture(name: str) -> str:
    """A stored payload, exactly as recorded (line endings kept)."""
    return (DATA / name).read_bytes().decode()


def rates(observations: list[Observation], product: str = "30y") -> dict[date, Decimal]:
    """The observations of one product, by date."""
    return {item.on: item.rate for item in observations if item.product == product}


def fred_envelope(rows: list[tuple[str, str]], *, count: int | None = None, offset: int = 0) -> str:
    """The recorded FRED envelope (1a) carrying these (date, value) rows instead."""
    envelope = json.loads(fixture("fred_api_hqmcb10yr.json"))
    envelope["observations"] = [
        {"realtime_start": "2024-12-26", "realtime_end": "2024-12-26", "date": on, "value": value}
        for on, value in rows
    ]
    envelope["count"] = len(rows) if count is None else count
    envelope["offset"] = offset
    return json.dumps(envelope, separators=(",", ":"))


def mortgage30us_rows() -> list[tuple[str, str]]:
    """The real MORTGAGE30US observation objects (1c), oldest first."""
    lines = fixture("fred_api_mortgage30us_observations.jsonl").splitlines()
    objects = sorted((json.loads(line) for line in lines), key=lambda item: item["date"])
    return [(item["date"], item["value"]) for item in objects]


# ---------------------------------------------------------------------------------------------
# Parsers


def test_fred_json_recorded_answer_gives_every_observation() -> None:
    found = parse_fred_json(fixture("fred_api_hqmcb10yr.json"), product="30y", source="fred")
    assert [(item.on, item.rate) for item in found][:2] == [
        (date(2023, 1, 1), Decimal("4.98")),
        (date(2023, 2, 1), Decimal("5.13")),
    ]
    assert len(found) == 6
    assert {item.product for item in found} == {"30y"}
    assert {item.source for item in found} == {"fred"}


def test_fred_json_keeps_three_decimals() -> None:
    found = parse_fred_json(fixture("fred_api_obmmijumbo30yf.json"), product="15y", source="f")
    assert rates(found, "15y") == {
        date(2024, 6, 3): Decimal("7.159"),
        date(2024, 6, 4): Decimal("7.163"),
    }


def test_fred_json_unpadded_values_mean_the_same_rate() -> None:
    found = rates(parse_fred_json(fred_envelope(mortgage30us_rows()), product="30y", source="f"))
    assert found[date(2024, 9, 12)] == Decimal("6.20")
    assert found[date(2017, 11, 9)] == Decimal("3.90")
    assert found[date(2024, 12, 12)] == Decimal("6.60")
    assert found[date(1971, 4, 2)] == Decimal("7.33")
    assert len(found) == 12


def test_fred_json_missing_value_is_skipped_not_zero() -> None:
    rows = [("2024-12-05", "6.69"), ("2024-12-12", "."), ("2024-12-19", "6.72")]
    found = rates(parse_fred_json(fred_envelope(rows), product="30y", source="f"))
    assert found == {date(2024, 12, 5): Decimal("6.69"), date(2024, 12, 19): Decimal("6.72")}


def test_fred_json_error_code_is_reported_with_its_message() -> None:
    body = json.dumps({"error_code": 404, "error_message": "Not Found.  The series is gone."})
    with pytest.raises(FeedError, match=r"^fred: FRED error 404: Not Found\. The series is gone"):
        parse_fred_json(body, product="30y", source="fred")


@pytest.mark.parametrize(
    "body",
    [fred_envelope([]), fred_envelope([("2024-12-12", "."), ("2024-12-19", "")])],
    ids=["no-observations", "all-missing"],
)
def test_fred_json_empty_series_is_an_error(body: str) -> None:
    with pytest.raises(FeedError, match="no rates"):
        parse_fred_json(body, product="30y", source="fred")


def test_implausible_rate_is_rejected_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    rows = [("2024-12-05", "6.69"), ("2024-12-12", "30"), ("2024-12-19", "0"), ("2024-12-26", "21")]
    with caplog.at_level(logging.WARNING, logger="core.rates"):
        found = parse_fred_json(fred_envelope(rows), product="30y", source="fred")
    assert rates(found) == {date(2024, 12, 5): Decimal("6.69")}
    assert "rejected 30y rate for 2024-12-12: '30' is not a rate from 1 to 20 %" in caplog.text
    assert "rejected 30y rate for 2024-12-19: '0' is not a rate from 1 to 20 %" in caplog.text
    assert "rejected 30y rate for 2024-12-26: '21' is not a rate from 1 to 20 %" in caplog.text


@pytest.mark.parametrize("written", ["6.5", "6.500%", "0.065", " 6.5 % ", "6.50 %"], ids=repr)
def test_every_feed_format_reads_a_rate_as_the_cli_and_importer_do(written: str) -> None:
    cell = written.strip()
    texts = {
        "sheet_json": json.dumps(
            {"rates": [{"date": "2026-09-24", "product": "30y", "rate": written}]}
        ),
        "sheet_csv": f"date,product,rate\n2026-09-24,30y,{cell}\n",
        "history": f"date,rate_30y,rate_15y\n2026-09-24,{cell},\n",
        "fred_json": fred_envelope([("2026-09-24", written)]),
    }
    for kind, text in texts.items():
        (found,) = PARSERS[kind](text)
        assert found.rate == Decimal("6.5"), kind


def test_a_json_fraction_number_is_a_percentage_too() -> None:
    body = json.dumps([{"date": "2026-09-24", "product": "15y", "rate": 0.05875}])
    (found,) = parse_rate_sheet(body, content_type="application/json", source="sheet")
    assert (found.product, found.rate) == ("15y", Decimal("5.875"))


def test_fredgraph_current_format() -> None:
    text = fixture("fredgraph_mortgage30us_head.csv")
    text += fixture("fredgraph_mortgage30us_tail_rows.csv")
    text += fixture("fredgraph_mortgage30us_padded_rows.csv")
    found = rates(parse_fredgraph_csv(text, product="30y", series_id="MORTGAGE30US", source="f"))
    assert len(found) == 17
    assert found[date(1971, 4, 2)] == Decimal("7.33")
    assert found[date(2026, 5, 14)] == Decimal("6.36")
    assert found[date(2024, 9, 12)] == Decimal("6.2")


def test_fredgraph_legacy_date_header_and_trimmed_values() -> None:
    text = fixture("fredgraph_legacy_mortgage30us_head.csv")
    text += fixture("fredgraph_legacy_trimmed_rows.csv")
    found = rates(parse_fredgraph_csv(text, product="30y", series_id="MORTGAGE30US", source="f"))
    assert len(found) == 13
    assert found[date(1991, 8, 30)] == Decimal("9.15")
    assert found[date(2017, 11, 30)] == Decimal("3.90")


def test_fredgraph_empty_and_dot_values_are_skipped() -> None:
    text = fixture("fredgraph_dgs10_gap.csv") + "1962-02-15,.\n"
    found = rates(parse_fredgraph_csv(text, product="30y", series_id="DGS10", source="f"))
    assert sorted(found) == [
        date(1962, 2, 8),
        date(1962, 2, 9),
        date(1962, 2, 13),
        date(1962, 2, 14),
    ]


def test_fredgraph_wrong_series_column_is_refused() -> None:
    text = fixture("fredgraph_mortgage30us_head.csv")
    with pytest.raises(FeedError, match="expected 'MORTGAGE15US'"):
        parse_fredgraph_csv(text, product="15y", series_id="MORTGAGE15US", source="f")


def test_freddie_pmms_head_has_only_30y() -> None:
    found = parse_freddie_pmms_csv(fixture("freddie_pmms_head.csv"), source="freddie")
    assert len(found) == 10
    assert {item.product for item in found} == {"30y"}
    assert rates(found)[date(1971, 4, 2)] == Decimal("7.33")
    assert rates(found)[date(1971, 5, 28)] == Decimal("7.46")


def test_freddie_pmms_quoted_and_unquoted_rows_around_the_switch() -> None:
    text = fixture("freddie_pmms_head.csv") + fixture("freddie_pmms_switch_rows.csv")
    text += fixture("freddie_pmms_tail_rows.csv")
    # Unverified 2026 shapes: unquoted 9-field rows again, and a week published before its rates.
    text += "9/10/2026,6.76,,6.09,,,,,\r\n9/24/2026,,,,,,,,\r\n,,,,,,,,\r\n"
    found = parse_freddie_pmms_csv(text, source="freddie")
    thirty, fifteen = rates(found, "30y"), rates(found, "15y")
    assert thirty[date(2022, 11, 10)] == Decimal("7.08")
    assert fifteen[date(2022, 11, 10)] == Decimal("6.38")
    assert thirty[date(2022, 11, 17)] == Decimal("6.61")
    assert fifteen[date(2022, 11, 17)] == Decimal("5.98")
    assert fifteen[date(2022, 11, 23)] == Decimal("5.9")
    assert thirty[date(2024, 11, 27)] == Decimal("6.81")
    assert (thirty[date(2026, 9, 10)], fifteen[date(2026, 9, 10)]) == (
        Decimal("6.76"),
        Decimal("6.09"),
    )
    assert max(thirty) == date(2026, 9, 10)
    assert date(2026, 9, 24) not in fifteen


def test_history_csv_with_missing_15y_in_early_years() -> None:
    text = "date,rate_30y,rate_15y\n1971-04-02,7.33,\n1991-08-30,9.15,8.75\n2026-09-24,7.03,6.42\n"
    found = parse_history_csv(text, source="history")
    assert rates(found, "30y") == {
        date(1971, 4, 2): Decimal("7.33"),
        date(1991, 8, 30): Decimal("9.15"),
        date(2026, 9, 24): Decimal("7.03"),
    }
    assert rates(found, "15y") == {
        date(1991, 8, 30): Decimal("8.75"),
        date(2026, 9, 24): Decimal("6.42"),
    }


def test_bundled_history_file_loads() -> None:
    bundled = Path(__file__).parents[2] / "core" / "data" / "pmms_weekly.csv"
    found = load_history_file(bundled)
    assert rates(found)[date(1971, 4, 2)] == Decimal("7.33")
    assert len(rates(found)) == len(bundled.read_text().splitlines()) - 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (fixture("freddie_pmms_switch_rows.csv"), None),
        ("date,rate_30y,rate_15y\r\n2024-12-12,6.60,5.84\r\n", None),
        ("DATE,MORTGAGE15US\n2024-12-12,5.84\n", {"15y"}),
        ("date,product,rate\n2024-12-12,15y,5.84\n2024-12-12,30y,6.6\n", None),
    ],
    ids=["freddie", "history", "fredgraph", "long"],
)
def test_history_file_format_is_recognised_by_its_header(
    tmp_path: Path, text: str, expected: set[str] | None
) -> None:
    if text.startswith("2/10/2022"):
        text = fixture("freddie_pmms_head.csv").splitlines(keepends=True)[0] + text
    path = tmp_path / "history.csv"
    path.write_bytes(text.encode())
    found = load_history_file(path)
    assert {item.product for item in found} == (expected or {"30y", "15y"})
    assert {item.source for item in found} == {str(path)}


def test_history_file_problems_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("when,how_much\n2024-12-12,6.6\n")
    with pytest.raises(FeedError, match=rf"^{re.escape(str(path))}: unrecognised CSV header"):
        load_history_file(path)
    with pytest.raises(FeedError, match="cannot read the file"):
        load_history_file(tmp_path / "missing.csv")


def test_rate_sheet_json_shapes() -> None:
    entry = {"date": "2026-09-24", "product": "30y", "rate": 6.125}
    other = {"date": "2026-09-24", "product": "15y", "rate": "5.5"}
    expected = {("30y", Decimal("6.125")), ("15y", Decimal("5.5"))}
    for body in (json.dumps({"rates": [entry, other]}), json.dumps([entry, other])):
        found = parse_rate_sheet(body, content_type="application/json", source="sheet")
        assert {(item.product, item.rate) for item in found} == expected
        assert {item.on for item in found} == {date(2026, 9, 24)}
    envelope = fred_envelope([("2026-09-24", "5.50")])
    found = parse_rate_sheet(envelope, content_type="text/plain", source="sheet", product="15y")
    assert [(item.product, item.rate) for item in found] == [("15y", Decimal("5.50"))]


def test_rate_sheet_csv_shapes() -> None:
    long = "date,product,rate\n2026-09-24,30y,6.125\n2026-09-24,15y,5.5\n"
    wide = "date,rate_30y,rate_15y\n2026-09-24,6.125,5.5\n"
    graph = "observation_date,MORTGAGE30US,MORTGAGE15US\n2026-09-24,6.125,5.5\n"
    for body in (long, wide, graph):
        found = parse_rate_sheet(body, content_type="text/csv", source="sheet")
        assert {(item.product, item.rate) for item in found} == {
            ("30y", Decimal("6.125")),
            ("15y", Decimal("5.5")),
        }


def test_rate_sheet_skips_and_logs_other_products(caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps(
        [
            {"date": "2026-09-24", "product": "5/1 ARM", "rate": 5.9},
            {"date": "2026-09-24", "product": "30y", "rate": 6.125},
        ]
    )
    with caplog.at_level(logging.WARNING, logger="core.rates"):
        found = parse_rate_sheet(body, content_type=None, source="sheet")
    assert [item.product for item in found] == ["30y"]
    assert "skipped product '5/1 ARM'" in caplog.text


def test_rate_sheet_declared_html_is_refused() -> None:
    with pytest.raises(FeedError, match="HTML page"):
        parse_rate_sheet("date,rate_30y\n", content_type="text/html; charset=utf-8", source="s")


PARSERS: dict[str, Callable[[str], list[Observation]]] = {
    "fred_json": lambda text: parse_fred_json(text, product="30y", source="s"),
    "fredgraph": lambda text: parse_fredgraph_csv(
        text, product="30y", series_id="MORTGAGE30US", source="s"
    ),
    "freddie": lambda text: parse_freddie_pmms_csv(text, source="s"),
    "history": lambda text: parse_history_csv(text, source="s"),
    "any_csv": lambda text: parse_any_csv(text, source="s"),
    "sheet_json": lambda text: parse_rate_sheet(text, content_type="application/json", source="s"),
    "sheet_csv": lambda text: parse_rate_sheet(text, content_type="text/csv", source="s"),
    "sheet_unknown": lambda text: parse_rate_sheet(text, content_type=None, source="s"),
}


@pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS.keys())
def test_html_page_is_refused_by_every_parser(parse: Callable[[str], object]) -> None:
    with pytest.raises(FeedError, match="HTML page"):
        parse(HTML_PAGE)


MALFORMED = {
    "fred_json": fred_envelope([("2024-12-12", "6,60")]),
    "sheet_json": fred_envelope([("2024-12-12", "6,60")]),
    "fredgraph": "DATE,MORTGAGE30US\n2024-12-12,six\n",
    "freddie": "date,pmms30,pmms30p,pmms15\n12/12/2024,6.6.0,,5;8\n",
}


@pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS.keys())
def test_malformed_value_is_refused_not_guessed(
    parse: Callable[[str], object], caplog: pytest.LogCaptureFixture
) -> None:
    text = next((value for key, value in MALFORMED.items() if PARSERS[key] is parse), None)
    text = text or "date,rate_30y,rate_15y\n2024-12-12,6;6,5;8\n"
    with (
        caplog.at_level(logging.WARNING, logger="core.rates"),
        pytest.raises(EmptySeriesError, match="no rates"),
    ):
        parse(text)
    assert "is not a rate from 1 to 20 %" in caplog.text


@pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS.keys())
def test_a_bad_date_is_an_error(parse: Callable[[str], object]) -> None:
    text = "date,rate_30y,rate_15y\n2024-12-32,6.6,5.8\n"
    if parse in (PARSERS["fred_json"], PARSERS["sheet_json"]):
        text = fred_envelope([("2024-12-32", "6.6")])
    elif parse is PARSERS["fredgraph"]:
        text = "DATE,MORTGAGE30US\n2024-12-32,6.6\n"
    elif parse is PARSERS["freddie"]:
        text = "date,pmms30,pmms30p,pmms15\n12/32/2024,6.6,,5.8\n"
    with pytest.raises(FeedError, match="is not a date"):
        parse(text)


def _check_parse(parse: Callable[[str], list[Observation]], text: str) -> None:
    """Either plausible observations or a FeedError, never anything else."""
    try:
        found = parse(text)
    except FeedError as err:
        assert "\n" not in str(err)
        return
    assert found
    for item in found:
        assert Decimal(1) <= item.rate <= Decimal(20)
        assert item.product in ("30y", "15y")


CSV_HEADERS = [
    "observation_date,MORTGAGE30US",
    "DATE,MORTGAGE30US,MORTGAGE15US",
    "date,pmms30,pmms30p,pmms15,pmms15p,pmms51,pmms51p,pmms51m,pmms51spread",
    "date,rate_30y,rate_15y",
    "date,product,rate",
]
CSV_CELLS = st.one_of(
    st.sampled_from(["", ".", " ", "6.2", "30", "-1", "0", "24.99", "1e3", "nan", "30y", "15y"]),
    st.sampled_from(["2024-12-12", "11/17/2022", "2/30/2024", "0000-01-01", '"6.61"']),
    st.text(max_size=8),
)
CSV_TEXT = st.builds(
    lambda header, rows, ending: header + ending + ending.join(",".join(row) for row in rows),
    st.sampled_from(CSV_HEADERS),
    st.lists(st.lists(CSV_CELLS, max_size=10), max_size=6),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(["6.2", ".", "", "2024-12-12", "30y", "15y", "abc"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["rates", "observations", "date", "value", "rate", "product", "count"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
WILD_TEXT = st.one_of(st.text(), CSV_TEXT, JSON_VALUES.map(json.dumps))


@pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS.keys())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=WILD_TEXT)
def test_wild_input_gives_plausible_rates_or_feed_error(
    parse: Callable[[str], list[Observation]], text: str
) -> None:
    _check_parse(parse, text)


# ---------------------------------------------------------------------------------------------
# Feeds over HTTP (loopback only)


@pytest.fixture
def server(loopback: HTTPServer) -> Iterator[HTTPServer]:
    """The loopback server with no expectations left from other tests."""
    loopback.clear()
    yield loopback
    loopback.clear()


@pytest.fixture
def waits() -> list[float]:
    """The backoff waits a feed asked for, instead of sleeping."""
    return []


def base_url(server: HTTPServer) -> str:
    """The server's root URL, without the trailing slash."""
    return server.url_for("/").rstrip("/")


def serve_fred(server: HTTPServer, series: dict[str, list[tuple[str, str]]]) -> None:
    """Answer FRED API requests from per-series rows, paging by offset/limit like FRED."""

    def answer(request: Request) -> Response:
        rows = series[request.args["series_id"]]
        start = request.args.get("observation_start", "")
        rows = [row for row in rows if row[0] >= start]
        offset, limit = int(request.args.get("offset", 0)), int(request.args.get("limit", 100000))
        body = fred_envelope(rows[offset : offset + limit], count=len(rows), offset=offset)
        return Response(body, content_type="application/json; charset=UTF-8")

    server.expect_request(FRED_OBSERVATIONS).respond_with_handler(answer)


def serve_in_turn(server: HTTPServer, path: str, *responses: Response) -> None:
    """Answer each request to `path` with the next response; the last one repeats."""
    queue = list(responses)

    def answer(request: Request) -> Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    server.expect_request(path).respond_with_handler(answer)


FIFTEEN_YEAR = [("2024-12-19", "5.92"), ("2024-12-26", "6")]


def test_fred_api_feed_fetches_both_products(server: HTTPServer, waits: list[float]) -> None:
    serve_fred(server, {"MORTGAGE30US": mortgage30us_rows(), "MORTGAGE15US": FIFTEEN_YEAR})
    feed = FredApiFeed(API_KEY, base_url=base_url(server), sleep=waits.append)
    found = feed.fetch(since=date(2024, 12, 19))
    assert [(item.on, item.product, item.rate) for item in found] == [
        (date(2024, 12, 19), "30y", Decimal("6.72")),
        (date(2024, 12, 19), "15y", Decimal("5.92")),
        (date(2024, 12, 26), "30y", Decimal("6.85")),
        (date(2024, 12, 26), "15y", Decimal("6")),
    ]
    request = server.log[0][0]
    assert request.args["api_key"] == API_KEY
    assert request.args["file_type"] == "json"
    assert request.args["observation_start"] == "2024-12-19"
    assert waits == []


def test_fred_api_feed_follows_pages(server: HTTPServer) -> None:
    serve_fred(server, {"MORTGAGE30US": mortgage30us_rows(), "MORTGAGE15US": FIFTEEN_YEAR})
    feed = FredApiFeed(API_KEY, base_url=base_url(server), page_size=5)
    found = feed.fetch()
    assert len(rates(found, "30y")) == 12
    assert len(rates(found, "15y")) == 2
    offsets = [
        req.args["offset"] for req, _ in server.log if req.args["series_id"] == "MORTGAGE30US"
    ]
    assert offsets == ["0", "5", "10"]


def test_fred_api_feed_skips_missing_and_rejects_implausible(
    server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    thirty = [("2024-12-05", "6.69"), ("2024-12-12", "."), ("2024-12-19", "30")]
    serve_fred(server, {"MORTGAGE30US": thirty, "MORTGAGE15US": FIFTEEN_YEAR})
    with caplog.at_level(logging.WARNING, logger="core.rates"):
        found = FredApiFeed(API_KEY, base_url=base_url(server)).fetch()
    assert rates(found, "30y") == {date(2024, 12, 5): Decimal("6.69")}
    assert "rejected 30y rate for 2024-12-19: '30' is not a rate from 1 to 20 %" in caplog.text


def test_fred_api_feed_empty_series(server: HTTPServer) -> None:
    serve_fred(server, {"MORTGAGE30US": [], "MORTGAGE15US": FIFTEEN_YEAR})
    feed = FredApiFeed(API_KEY, base_url=base_url(server))
    with pytest.raises(EmptySeriesError, match="no rates in MORTGAGE30US"):
        feed.fetch()
    # Asking only for weeks after the last published one is not a failure: nothing is new.
    assert feed.fetch(since=date(2025, 1, 1)) == []


def test_fred_api_error_answer_is_reported_without_retry(
    server: HTTPServer, waits: list[float]
) -> None:
    message = (
        "Bad Request.  The value for variable api_key is not a 32 character alpha-numeric "
        "lower-case string.  Read https://research.stlouisfed.org/docs/api/api_key.html"
    )
    body = json.dumps({"error_code": 400, "error_message": message})
    server.expect_request(FRED_OBSERVATIONS).respond_with_data(
        body, status=400, content_type="application/json"
    )
    feed = FredApiFeed(API_KEY, base_url=base_url(server), sleep=waits.append)
    with pytest.raises(FeedError, match=r"HTTP 400 BAD REQUEST: Bad Request\. The value") as caught:
        feed.fetch()
    assert "api_key=***" in str(caught.value)
    assert len(server.log) == 1
    assert waits == []


def test_fred_error_code_in_a_200_answer(server: HTTPServer) -> None:
    body = json.dumps({"error_code": 404, "error_message": "Not Found.  No such series."})
    server.expect_request(FRED_OBSERVATIONS).respond_with_data(
        body, content_type="application/json"
    )
    with pytest.raises(FeedError, match=r"FRED error 404: Not Found\. No such series"):
        FredApiFeed(API_KEY, base_url=base_url(server)).fetch()


def test_api_key_never_reaches_logs_or_errors(
    server: HTTPServer, caplog: pytest.LogCaptureFixture, waits: list[float]
) -> None:
    serve_fred(server, {"MORTGAGE30US": mortgage30us_rows(), "MORTGAGE15US": FIFTEEN_YEAR})
    feed = FredApiFeed(API_KEY, base_url=base_url(server), sleep=waits.append)
    with caplog.at_level(logging.DEBUG):
        feed.fetch()
        server.clear()
        server.expect_request(FRED_OBSERVATIONS).respond_with_data("down", status=503)
        with pytest.raises(FeedError) as caught:
            feed.fetch()
    # The loopback server's own access log (werkzeug) stands in for FRED's side; skip it.
    ours = "\n".join(record.getMessage() for record in caplog.records if record.name != "werkzeug")
    assert "api_key=***" in ours  # the URL was logged, masked
    assert API_KEY not in ours
    assert API_KEY not in str(caught.value)
    assert API_KEY not in repr(feed)


def test_fredgraph_feed_fetches_both_products(server: HTTPServer) -> None:
    thirty = fixture("fredgraph_mortgage30us_head.csv")
    fifteen = "DATE,MORTGAGE15US\n1991-08-30,8.77\n1991-09-06,.\n"
    server.expect_request(FREDGRAPH, query_string={"id": "MORTGAGE30US"}).respond_with_data(
        thirty, content_type="text/csv"
    )
    server.expect_request(FREDGRAPH, query_string={"id": "MORTGAGE15US"}).respond_with_data(
        fifteen, content_type="text/csv"
    )
    found = FredGraphFeed(base_url=base_url(server)).fetch()
    assert len(rates(found, "30y")) == 10
    assert rates(found, "15y") == {date(1991, 8, 30): Decimal("8.77")}


def test_fredgraph_feed_sends_start_date_and_filters(server: HTTPServer) -> None:
    body = {
        "MORTGAGE30US": fixture("fredgraph_mortgage30us_head.csv"),
        "MORTGAGE15US": "observation_date,MORTGAGE15US\n",
    }
    server.expect_request(FREDGRAPH).respond_with_handler(
        lambda request: Response(body[request.args["id"]], content_type="text/csv")
    )
    found = FredGraphFeed(base_url=base_url(server)).fetch(since=date(1971, 5, 28))
    assert sorted(rates(found)) == [date(1971, 5, 28), date(1971, 6, 4)]
    assert {req.args["cosd"] for req, _ in server.log} == {"1971-05-28"}


def test_fredgraph_feed_wrong_series_is_refused(server: HTTPServer) -> None:
    server.expect_request(FREDGRAPH).respond_with_data(
        fixture("fredgraph_dgs10_gap.csv"), content_type="text/csv"
    )
    with pytest.raises(FeedError, match=r"fredgraph\.csv\?id=MORTGAGE30US: series column"):
        FredGraphFeed(base_url=base_url(server)).fetch()


def test_rate_sheet_feed_json_and_since(server: HTTPServer) -> None:
    sheet = {
        "rates": [
            {"date": "2026-09-23", "product": "30y", "rate": 6.25},
            {"date": "2026-09-24", "product": "30y", "rate": 6.125},
            {"date": "2026-09-24", "product": "15y", "rate": 5.5},
        ]
    }
    server.expect_request("/rates.json").respond_with_json(sheet)
    feed = UrlRateSheetFeed(server.url_for("/rates.json"))
    found = feed.fetch(since=date(2026, 9, 24))
    assert [(item.product, item.rate) for item in found] == [
        ("30y", Decimal("6.125")),
        ("15y", Decimal("5.5")),
    ]
    assert {item.source for item in found} == {server.url_for("/rates.json")}


def test_rate_sheet_feed_csv(server: HTTPServer) -> None:
    server.expect_request("/today").respond_with_data(
        "date,product,rate\r\n2026-09-24,30y,6.125\r\n", content_type="text/plain"
    )
    found = UrlRateSheetFeed(server.url_for("/today")).fetch()
    assert [(item.on, item.product, item.rate) for item in found] == [
        (date(2026, 9, 24), "30y", Decimal("6.125"))
    ]


def test_html_page_from_the_feed_is_refused(server: HTTPServer) -> None:
    server.expect_request("/rates.csv").respond_with_data(HTML_PAGE, content_type="text/csv")
    url = server.url_for("/rates.csv")
    with pytest.raises(FeedError, match=rf"^{re.escape(url)}: got an HTML page"):
        UrlRateSheetFeed(url).fetch()


def test_server_error_then_success_is_retried(server: HTTPServer, waits: list[float]) -> None:
    serve_in_turn(
        server,
        "/rates.csv",
        Response("oops", status=500),
        Response("date,rate_30y,rate_15y\n2026-09-24,6.125,5.5\n", content_type="text/csv"),
    )
    feed = UrlRateSheetFeed(server.url_for("/rates.csv"), backoff=0.25, sleep=waits.append)
    assert len(feed.fetch()) == 2
    assert len(server.log) == 2
    assert waits == [0.25]


def test_too_many_requests_is_retried_then_given_up(server: HTTPServer, waits: list[float]) -> None:
    serve_in_turn(server, "/rates.csv", Response("slow down", status=429))
    feed = UrlRateSheetFeed(server.url_for("/rates.csv"), backoff=0.25, sleep=waits.append)
    with pytest.raises(FeedError, match=r"HTTP 429 \(gave up after 3 attempts"):
        feed.fetch()
    assert len(server.log) == 3
    assert waits == [0.25, 0.5]  # exponential backoff


def test_too_many_requests_then_success(server: HTTPServer, waits: list[float]) -> None:
    serve_in_turn(
        server,
        "/rates.json",
        Response("slow down", status=429, headers={"Retry-After": "2"}),
        Response(json.dumps([{"date": "2026-09-24", "product": "30y", "rate": "6.1"}])),
    )
    feed = UrlRateSheetFeed(server.url_for("/rates.json"), backoff=0.25, sleep=waits.append)
    assert [item.rate for item in feed.fetch()] == [Decimal("6.1")]
    assert waits == [2.0]  # the server's Retry-After beats our shorter backoff


def test_not_found_is_not_retried(server: HTTPServer, waits: list[float]) -> None:
    server.expect_request("/gone.csv").respond_with_data("no such file", status=404)
    url = server.url_for("/gone.csv")
    with pytest.raises(FeedError, match=rf"^{re.escape(url)}: HTTP 404 NOT FOUND: no such file$"):
        UrlRateSheetFeed(url, sleep=waits.append).fetch()
    assert len(server.log) == 1
    assert waits == []


def test_slow_answer_times_out_after_retries(server: HTTPServer, waits: list[float]) -> None:
    def dawdle(request: Request) -> Response:
        time.sleep(0.5)
        return Response("date,rate_30y,rate_15y\n2026-09-24,6.125,5.5\n")

    server.expect_request("/slow.csv").respond_with_handler(dawdle)
    feed = UrlRateSheetFeed(
        server.url_for("/slow.csv"), timeout=httpx.Timeout(0.1), attempts=2, sleep=waits.append
    )
    with pytest.raises(FeedError, match=r"ReadTimeout.*gave up after 2 attempts"):
        feed.fetch()
    assert len(waits) == 1


def test_nothing_listening_is_retried_then_reported(waits: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    feed = UrlRateSheetFeed(f"http://127.0.0.1:{port}/rates.csv", sleep=waits.append)
    with pytest.raises(FeedError, match=r"ConnectError.*gave up after 3 attempts"):
        feed.fetch()
    assert len(waits) == 2


def test_feed_from_settings_prefers_rate_feed_url_then_fred_key() -> None:
    sheet = feed_from_settings(
        rate_feed_url="https://rates.example/today.csv", fred_api_key=API_KEY
    )
    assert isinstance(sheet, UrlRateSheetFeed)
    api = feed_from_settings(rate_feed_url=" ", fred_api_key=API_KEY)
    assert isinstance(api, FredApiFeed)
    assert api.url == "https://api.stlouisfed.org/fred/series/observations"
    keyless = feed_from_settings(rate_feed_url=None, fred_api_key=None)
    assert isinstance(keyless, FredGraphFeed)
    assert keyless.url == "https://fred.stlouisfed.org/graph/fredgraph.csv"
    with pytest.raises(FeedError, match=r"^RATE_FEED_URL: must be an http"):
        feed_from_settings(rate_feed_url="ftp://rates.example/x", fred_api_key=None)
